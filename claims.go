package asymjwt

import (
	"fmt"

	"github.com/asymjwt/asymjwt/internal/jsonscan"
	"github.com/asymjwt/asymjwt/internal/jws"
)

// jwtClaims are the claims of access tokens and RFC 7523 assertions that
// this package reads (RFC 7519 §4.1, and "scope", "nonce", "username"),
// read once, strictly; any others are ignored. What each kind of token
// requires, its caller checks.
type jwtClaims struct {
	iss, sub, jti, nonce, scope, username string
	hasIss, hasSub, hasScope, hasUsername bool
	exp, iat, nbf                         float64
	hasExp, hasIat, hasNbf, hasAud        bool
	aud                                   []string
}

func (c *jwtClaims) read(data []byte) error {
	err := jsonscan.ScanObject(data, func(name, value []byte) error {
		ok := true
		switch string(name) {
		case "username":
			c.username, _ = jsonscan.String(value) // the request token's check judges it
			c.hasUsername = true
		case "iss":
			c.iss, ok = jsonscan.String(value)
			c.hasIss = true
		case "sub":
			c.sub, ok = jsonscan.String(value)
			c.hasSub = true
		case "jti":
			c.jti, ok = jsonscan.String(value)
			ok = ok && c.jti != "" && len(c.jti) <= maxNonceLen
		case "nonce":
			if c.nonce, ok = jsonscan.String(value); !ok && len(value) > 0 && (value[0] == '-' || ('0' <= value[0] && value[0] <= '9')) {
				c.nonce, ok = string(value), true // a number, keyed by its text
			}
			ok = ok && c.nonce != "" && len(c.nonce) <= maxNonceLen
		case "scope":
			c.scope, ok = jsonscan.String(value)
			ok = ok && validScope(c.scope)
			c.hasScope = true
		case "exp":
			c.exp, ok = jsonscan.Number(value)
			c.hasExp = true
		case "iat":
			c.iat, ok = jsonscan.Number(value)
			c.hasIat = true
		case "nbf":
			c.nbf, ok = jsonscan.Number(value)
			c.hasNbf = true
		case "aud":
			c.hasAud = true
			var s string
			if s, ok = jsonscan.String(value); ok {
				c.aud = []string{s}
			} else {
				c.aud, ok = jsonscan.StringArray(value)
			}
		}
		if !ok {
			return fmt.Errorf("%w: %s is not valid", ErrBadClaims, name)
		}
		return nil
	})
	if err != nil {
		return headerError(err)
	}
	return nil
}

// decodeCompact bounds and splits a compact JWS that is not a request
// token (those go through parseToken): over maxSize bytes it is
// ErrTokenTooLarge, unparsed.
func decodeCompact(raw string, maxSize int) (jws.Parts, error) {
	if len(raw) > maxSize {
		return jws.Parts{}, fmt.Errorf("%w: %d bytes", ErrTokenTooLarge, len(raw))
	}
	p, err := jws.Decode(raw)
	if err != nil {
		return jws.Parts{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return p, nil
}
