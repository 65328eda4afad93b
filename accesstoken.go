package asymjwt

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/asymjwt/asymjwt/internal/jsonscan"
	"github.com/asymjwt/asymjwt/internal/jws"
)

// Access tokens are JWTs (RFC 9068 shape, "typ": "at+jwt") that a
// [TokenEndpoint] issues and that a [Verifier] accepts as
// "Authorization: Bearer" from the issuers it was told to trust. They are
// read with this package's own strict reader rather than a general JWT
// library: the same size bound, one parse with exact claim names (no
// duplicate or case-variant names, SECURITY.md V4), the algorithm table,
// and no allocation beyond the token's decoding.

// TokenKind says which kind of token a caller presented.
type TokenKind uint8

const (
	// RequestToken is a per-request token, "Authorization: JWT", signed by
	// the caller's own key for one request. It is the zero value.
	RequestToken TokenKind = iota
	// AccessToken is an access token, "Authorization: Bearer", signed by a
	// trusted issuer and reusable until it expires.
	AccessToken
)

// String returns "request token" or "access token".
func (k TokenKind) String() string {
	if k == AccessToken {
		return "access token"
	}
	return "request token"
}

// trustedIssuer is an issuer a Verifier accepts access tokens from.
type trustedIssuer struct {
	name string
	keys IssuerKeySet
}

// WithTrustedIssuer makes the Verifier accept "Authorization: Bearer"
// access tokens issued by keys.Issuer() and signed by one of its keys:
// an [*Issuer] in this process, a [*KeySet] given up front, or a
// [*RemoteKeySet] fetching the issuer's JWKS URL. It may be given once per
// issuer. A Bearer token is verified against the key set of the issuer
// its "iss" names and nothing else, never against the users' keys; a
// per-request token is never accepted as Bearer, nor an access token as
// "JWT". Without this option, "Bearer" is not a scheme the Verifier
// reads. keys must not be nil.
func WithTrustedIssuer(keys IssuerKeySet) VerifierOption {
	return verifierOptionFunc(func(v *Verifier) error {
		if keys == nil {
			return optionError("WithTrustedIssuer", "nil key set")
		}
		name := keys.Issuer()
		if !validIssuer(name) {
			return optionError("WithTrustedIssuer", fmt.Sprintf("issuer %q is not 1 to 256 bytes of text", truncate(name)))
		}
		for _, t := range v.issuers {
			if t.name == name {
				return optionError("WithTrustedIssuer", fmt.Sprintf("issuer %q given twice", truncate(name)))
			}
		}
		v.issuers = append(v.issuers, trustedIssuer{name, keys})
		return nil
	})
}

// checkAccess checks that an access token's claims have what one must.
func (c *jwtClaims) checkAccess() error {
	switch {
	case c.iss == "":
		return fmt.Errorf("%w: no iss", ErrBadClaims)
	case !validUsername(c.sub):
		return fmt.Errorf("%w: no valid sub", ErrBadClaims)
	case !c.hasExp || !c.hasIat:
		return fmt.Errorf("%w: exp and iat are required", ErrBadClaims)
	case c.jti == "":
		return fmt.Errorf("%w: no jti", ErrBadClaims)
	}
	return nil
}

// verifyAccessToken checks a Bearer token: strictly parsed, typed
// "at+jwt", from a trusted issuer, signed by the key of that issuer its
// kid names with an algorithm that fits it, within its lifetime, and for
// this service when it names an audience. Errors are not yet prefixed.
func (v *Verifier) verifyAccessToken(ctx context.Context, raw string) (*Identity, error) {
	p, err := decodeCompact(raw, v.maxSize)
	if err != nil {
		return nil, err
	}
	var h joseHeader
	if err := h.read(p.Header); err != nil {
		return nil, err
	}
	switch {
	case !h.hasTyp || !isAccessTokenType(h.typ):
		return nil, fmt.Errorf("%w: typ is not %s: not an access token", ErrBadHeader, accessTokenType)
	case !h.hasAlg:
		return nil, fmt.Errorf("%w: no alg", ErrBadAlgorithm)
	case len(h.kid) == 0:
		return nil, fmt.Errorf("%w: no kid", ErrBadHeader)
	}
	var c jwtClaims
	if err := c.read(p.Claims); err != nil {
		return nil, err
	}
	if err := c.checkAccess(); err != nil {
		return nil, err
	}
	spec := v.algorithm(h.alg)
	if spec == nil {
		return nil, fmt.Errorf("%w: %q", ErrBadAlgorithm, truncate(string(h.alg)))
	}
	var keys IssuerKeySet
	for _, t := range v.issuers {
		if t.name == c.iss {
			keys = t.keys
		}
	}
	if keys == nil {
		return nil, fmt.Errorf("%w: issuer %q is not trusted", ErrBadClaims, truncate(c.iss))
	}
	k, found, err := keys.IssuerKey(ctx, string(h.kid))
	if err != nil {
		return nil, errorf("%w: key set of issuer %q: %w", ErrUnavailable, truncate(c.iss), err)
	}
	if !found {
		return nil, fmt.Errorf("%w: issuer %q has no key %q", ErrBadSignature, truncate(c.iss), truncate(string(h.kid)))
	}
	if (k.Algorithm != "" && k.Algorithm != spec.alg) || !spec.fits(k.Key) {
		return nil, fmt.Errorf("%w: %s does not fit issuer key %q", ErrBadAlgorithm, spec.alg, k.KeyID)
	}
	if !spec.verify(&v.ed, k.Key, p.SigningInput, p.Signature) {
		return nil, fmt.Errorf("%w (access token of %q from %q)", ErrBadSignature, c.sub, truncate(c.iss))
	}

	now := float64(v.now().UnixNano()) / 1e9
	leeway := v.maxSkew.Seconds()
	switch {
	case now >= c.exp+leeway:
		return nil, fmt.Errorf("%w: access token expired %.0fs ago", ErrStale, now-c.exp)
	case c.iat > now+leeway:
		return nil, fmt.Errorf("%w: access token issued %.0fs in the future", ErrStale, c.iat-now)
	case c.hasNbf && c.nbf > now+leeway:
		return nil, fmt.Errorf("%w: access token not valid before nbf", ErrStale)
	}
	if err := v.checkAudience(&token{aud: c.aud, hasAud: c.hasAud}); err != nil {
		return nil, err
	}
	sec, frac := math.Modf(c.iat)
	return &Identity{
		Username:  c.sub,
		Key:       PublicKey{Key: k.Key, Fingerprint: k.KeyID, Comment: c.iss},
		Algorithm: spec.alg,
		Time:      time.Unix(int64(sec), int64(frac*1e9)),
		Nonce:     c.jti,
		Claims:    p.Claims,
		Kind:      AccessToken,
		Issuer:    c.iss,
		Scope:     c.scope,
	}, nil
}

// isAccessTokenType accepts "at+jwt" and its full media type, without
// case (RFC 7515 §4.1.9, RFC 9068 §2.1).
func isAccessTokenType(typ []byte) bool {
	return bytes.EqualFold(typ, []byte(accessTokenType)) || bytes.EqualFold(typ, []byte("application/"+accessTokenType))
}

// isBearer reports whether an Authorization header value uses the Bearer
// scheme.
func isBearer(value string) bool {
	scheme, _, _ := strings.Cut(value, " ")
	return strings.EqualFold(scheme, "Bearer")
}

// bearerChallenge is the RFC 6750 §3 challenge a Verifier that takes
// Bearer tokens adds to a refusal: with error="invalid_token" when a
// Bearer token was refused, bare otherwise.
func bearerChallenge(r *http.Request, err error) string {
	if errors.Is(err, ErrNoToken) || !isBearer(r.Header.Get("Authorization")) {
		return "Bearer"
	}
	return `Bearer error="invalid_token"`
}

// accessTokenClaims builds the claims of an access token.
func accessTokenClaims(iss, sub, aud, scope string, iat, exp time.Time) []byte {
	var jti [16]byte
	rand.Read(jti[:])
	c := make([]byte, 0, 256)
	c = append(c, `{"iss":`...)
	c = jsonscan.AppendString(c, iss)
	c = append(c, `,"sub":`...)
	c = jsonscan.AppendString(c, sub)
	c = append(c, `,"client_id":`...)
	c = jsonscan.AppendString(c, sub)
	if aud != "" {
		c = append(c, `,"aud":`...)
		c = jsonscan.AppendString(c, aud)
	}
	c = append(c, `,"iat":`...)
	c = strconv.AppendInt(c, iat.Unix(), 10)
	c = append(c, `,"exp":`...)
	c = strconv.AppendInt(c, exp.Unix(), 10)
	c = append(c, `,"jti":"`...)
	c = jws.AppendSegment(c, jti[:])
	c = append(c, '"')
	if scope != "" {
		c = append(c, `,"scope":`...)
		c = jsonscan.AppendString(c, scope)
	}
	return append(c, '}')
}

// validScope reports whether s is a scope as RFC 6749 §3.3 defines it:
// space-separated tokens of printable ASCII without '"' and '\', at most
// 1024 bytes; empty is no scope.
func validScope(s string) bool {
	if len(s) > 1024 {
		return false
	}
	for _, tok := range strings.Split(s, " ") {
		if tok == "" && s != "" {
			return false
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
				return false
			}
		}
	}
	return true
}
