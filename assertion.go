package asymjwt

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/asymjwt/asymjwt/internal/jws"
)

// A token endpoint's assertions (RFC 7523 §2.1) come in two forms, told
// apart by their claims:
//
//   - this package's own request token ("username", "time", "nonce"),
//     checked exactly as a request is: ±skew window, nonce used once, and
//     when bound ("htm", "htu"), bound to a POST to the token URL;
//   - an RFC 7523 §3 assertion, as golang.org/x/oauth2/jwt sends it ("iss",
//     "sub", "aud", "exp", "iat", optional "jti" and "scope"), checked below.
//
// Either way the key and algorithm come from the user's stored keys (or an
// OpenSSH certificate from a trusted CA, with every check a request gets:
// the key's expiry-time and from=, revocation), and the assertion is
// recorded in the verifier's nonce store only after its signature
// verified.

// assertionGrant is what a verified assertion grants.
type assertionGrant struct {
	username string
	keyID    string           // fingerprint of the user's key that signed it
	cert     *CertificateInfo // the certificate that key was trusted through, if any
	scope    string           // the "scope" claim, if any
}

// verifyAssertion checks the assertion of a jwt-bearer grant, sent from
// addr. Its errors wrap the verifier's sentinels, unprefixed.
func (e *TokenEndpoint) verifyAssertion(ctx context.Context, raw string, addr netip.Addr) (*assertionGrant, error) {
	v := e.verifier
	p, err := decodeCompact(raw, v.maxSize)
	if err != nil {
		return nil, err
	}
	var t token
	if err := t.readHeader(p.Header); err != nil {
		return nil, err
	}
	var c jwtClaims
	if err := c.read(p.Claims); err != nil {
		return nil, err
	}
	if c.hasUsername {
		// One user, named once: "iss" and "sub" may repeat it, no more.
		if (c.hasIss && c.iss != c.username) || (c.hasSub && c.sub != c.username) {
			return nil, fmt.Errorf("%w: iss or sub differs from username", ErrBadClaims)
		}
		want := expected{method: http.MethodPost, htu: []byte(e.tokenHTU)}
		id, err := v.verify(ctx, raw, &want, addr)
		if err != nil {
			return nil, err
		}
		return &assertionGrant{username: id.Username, keyID: id.Key.Fingerprint, cert: id.Certificate, scope: c.scope}, nil
	}

	// RFC 7523 §3.
	username := c.sub
	switch {
	case c.hasSub && c.hasIss && c.sub != c.iss:
		return nil, fmt.Errorf("%w: sub differs from iss (no delegation)", ErrBadClaims)
	case !c.hasSub:
		username = c.iss
	}
	switch {
	case !validUsername(username):
		return nil, fmt.Errorf("%w: no valid iss or sub", ErrBadClaims)
	case !c.hasExp:
		return nil, fmt.Errorf("%w: no exp", ErrBadClaims)
	case len(c.aud) == 0:
		return nil, fmt.Errorf("%w: no aud", ErrBadClaims)
	}
	spec := v.algorithm(t.alg)
	if spec == nil {
		return nil, fmt.Errorf("%w: %q", ErrBadAlgorithm, truncate(string(t.alg)))
	}
	now := v.now()
	secs := float64(now.UnixNano()) / 1e9
	// The request token's route to the key: stored keys with their
	// options, or a certificate, whose validity is judged at "iat".
	t.signingInput, t.signature, t.username, t.time = p.SigningInput, p.Signature, username, secs
	if c.hasIat {
		t.time = c.iat
	}
	key, cert, err := v.authenticate(ctx, &t, spec, addr, now)
	if err != nil {
		return nil, err
	}

	skew := v.maxSkew.Seconds()
	switch {
	case secs >= c.exp+skew:
		return nil, fmt.Errorf("%w: assertion expired %.0fs ago", ErrStale, secs-c.exp)
	case c.exp-secs > (e.maxAssertion + v.maxSkew).Seconds():
		return nil, fmt.Errorf("%w: assertion expires in %.0fs, more than %v ahead", ErrStale, c.exp-secs, e.maxAssertion)
	case c.hasIat && c.iat > secs+skew:
		return nil, fmt.Errorf("%w: assertion issued %.0fs in the future", ErrStale, c.iat-secs)
	case c.hasNbf && c.nbf > secs+skew:
		return nil, fmt.Errorf("%w: assertion not valid before nbf", ErrStale)
	}
	if !e.isAudience(c.aud) {
		return nil, fmt.Errorf("%w: aud names neither this token endpoint nor its issuer", ErrBadClaims)
	}

	// Used once until it expires: by its jti, else its nonce, else the
	// hash of what it signs. Not the signature's bytes: an ECDSA signature
	// (r, s) has a twin (r, n-s) that verifies as well, and would pass as
	// another assertion.
	replayKey := c.jti
	switch {
	case replayKey != "":
		replayKey = "jti:" + replayKey
	case c.nonce != "":
		replayKey = c.nonce
	default:
		sum := sha256.Sum256(p.SigningInput)
		replayKey = "sha256:" + string(jws.AppendSegment(nil, sum[:]))
	}
	ttl := time.Duration((c.exp-secs)*1e9) + v.maxSkew + time.Second
	if err := v.nonces.Use(ctx, username, replayKey, ttl); err != nil {
		if errors.Is(err, ErrReplay) {
			return nil, fmt.Errorf("%w: assertion used before (user %q)", ErrReplay, username)
		}
		return nil, errorf("%w: nonce store: %w", ErrUnavailable, err)
	}
	return &assertionGrant{username: username, keyID: key.Fingerprint, cert: cert, scope: c.scope}, nil
}

// isAudience reports whether aud names this endpoint: its token URL (as
// given, or the same URL normalised) or its issuer identifier.
func (e *TokenEndpoint) isAudience(aud []string) bool {
	for _, a := range aud {
		if a == e.tokenURL || a == e.issuer.Issuer() {
			return true
		}
		if n, ok := normalizeHTU(a); ok && n == e.tokenHTU {
			return true
		}
	}
	return false
}
