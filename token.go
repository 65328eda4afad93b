package asymjwt

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/asymjwt/asymjwt/internal/jsonscan"
	"github.com/asymjwt/asymjwt/internal/jws"
)

// DefaultMaxTokenSize is the largest Authorization header value, in bytes,
// that a Verifier looks at unless told otherwise (see [WithMaxTokenSize]).
// An RS512 token from a 4096-bit key with a long URL fits easily.
const DefaultMaxTokenSize = 8 << 10

// maxNonceLen bounds the nonce claim, so every entry in a nonce store has a
// bounded size.
const maxNonceLen = 256

// token is a compact JWS, split, decoded and read once, strictly. Nothing in
// it is trusted until the signature has been verified.
type token struct {
	signingInput []byte // "<header>.<claims>", as signed
	signature    []byte
	claimsJSON   []byte

	// Views into the decoded header and claims, compared without copying.
	alg  []byte
	kid  []byte
	cert []byte // the sshcert header parameter, base64; nil when absent

	username string
	time     float64
	nonce    string // the store key: the string, or a number's JSON text

	htm, htu, htq          []byte
	hasHTM, hasHTU, hasHTQ bool
	hcd                    string
	hasHCD                 bool

	exp, nbf, iat          float64
	hasExp, hasNbf, hasIat bool
	aud                    []string
	hasAud                 bool
}

// parseToken splits and decodes a compact JWS (RFC 7515 §7.1) and reads its
// header and claims. The size was checked by the caller.
func parseToken(s string, t *token) error {
	p, err := jws.Decode(s)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	t.signingInput = p.SigningInput
	t.claimsJSON = p.Claims
	t.signature = p.Signature
	if err := t.readHeader(p.Header); err != nil {
		return err
	}
	return t.readClaims(p.Claims)
}

func (t *token) readHeader(data []byte) error {
	var h joseHeader
	if err := h.read(data); err != nil {
		return err
	}
	if h.hasTyp && !bytes.EqualFold(h.typ, []byte("JWT")) {
		return fmt.Errorf("%w: typ is not JWT", ErrBadHeader)
	}
	if !h.hasAlg {
		return fmt.Errorf("%w: no alg", ErrBadAlgorithm)
	}
	t.alg, t.kid, t.cert = h.alg, h.kid, h.cert
	return nil
}

// joseHeader is what this package reads of a JOSE header: request tokens,
// assertions and access tokens alike.
type joseHeader struct {
	alg, kid, typ  []byte
	cert           []byte // the sshcert header parameter, base64; nil when absent
	hasAlg, hasTyp bool
}

// read scans a JOSE header, refusing keys from elsewhere and extensions.
func (h *joseHeader) read(data []byte) error {
	err := jsonscan.ScanObject(data, func(name, value []byte) error {
		switch string(name) {
		case "alg":
			if !jsonscan.IsString(value) {
				return fmt.Errorf("%w: alg is not a string", ErrBadAlgorithm)
			}
			h.alg, h.hasAlg = jsonscan.Unquote(value), true
		case "typ":
			if !jsonscan.IsString(value) {
				return fmt.Errorf("%w: typ is not a string", ErrBadHeader)
			}
			h.typ, h.hasTyp = jsonscan.Unquote(value), true
		case "kid":
			if !jsonscan.IsString(value) {
				return fmt.Errorf("%w: kid is not a string", ErrMalformed)
			}
			h.kid = jsonscan.Unquote(value)
		case certHeaderParam:
			if !jsonscan.IsString(value) {
				return fmt.Errorf("%w: %s is not a string", ErrMalformed, certHeaderParam)
			}
			h.cert = jsonscan.Unquote(value)
			if len(h.cert) == 0 {
				return fmt.Errorf("%w: %s is empty", ErrMalformed, certHeaderParam)
			}
		case "crit", "jku", "jwk", "x5u", "x5c":
			// Keys from elsewhere are never fetched or trusted (RFC 8725
			// §3.10), and no extension is understood (RFC 7515 §4.1.11).
			return fmt.Errorf("%w: %s present", ErrBadHeader, name)
		}
		return nil
	})
	if err != nil {
		return headerError(err)
	}
	return nil
}

// headerError keeps this package's sentinels and reports JSON faults as
// malformed.
func headerError(err error) error {
	if isSentinel(err) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}

func isSentinel(err error) bool {
	for _, s := range []error{ErrMalformed, ErrBadHeader, ErrBadAlgorithm, ErrBadClaims} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func (t *token) readClaims(data []byte) error {
	var hasUser, hasTime, hasNonce bool
	err := jsonscan.ScanObject(data, func(name, value []byte) error {
		var ok bool
		switch string(name) {
		case "username":
			t.username, ok = jsonscan.String(value)
			if !ok || !validUsername(t.username) {
				return fmt.Errorf("%w: username is not a valid name", ErrBadClaims)
			}
			hasUser = true
		case "time":
			if t.time, ok = jsonscan.Number(value); !ok {
				return fmt.Errorf("%w: time is not a number", ErrBadClaims)
			}
			hasTime = true
		case "nonce":
			switch {
			case len(value) > 0 && value[0] == '"':
				t.nonce, _ = jsonscan.String(value)
			case len(value) > 0 && (value[0] == '-' || ('0' <= value[0] && value[0] <= '9')):
				// The original's client sends random.random(): key it by
				// its JSON text.
				t.nonce = string(value)
			default:
				return fmt.Errorf("%w: nonce is not a string or number", ErrBadClaims)
			}
			if t.nonce == "" || len(t.nonce) > maxNonceLen {
				return fmt.Errorf("%w: nonce is empty or longer than %d bytes", ErrBadClaims, maxNonceLen)
			}
			hasNonce = true
		case "htm":
			if !jsonscan.IsString(value) {
				return fmt.Errorf("%w: htm is not a string", ErrBadClaims)
			}
			t.htm, t.hasHTM = jsonscan.Unquote(value), true
		case "htu":
			if !jsonscan.IsString(value) {
				return fmt.Errorf("%w: htu is not a string", ErrBadClaims)
			}
			t.htu, t.hasHTU = jsonscan.Unquote(value), true
		case "htq":
			if !jsonscan.IsString(value) {
				return fmt.Errorf("%w: htq is not a string", ErrBadClaims)
			}
			t.htq, t.hasHTQ = jsonscan.Unquote(value), true
		case "hcd":
			if t.hcd, ok = jsonscan.String(value); !ok {
				return fmt.Errorf("%w: hcd is not a string", ErrBadClaims)
			}
			t.hasHCD = true
		case "exp", "nbf", "iat":
			f, ok := jsonscan.Number(value)
			if !ok {
				return fmt.Errorf("%w: %s is not a number", ErrBadClaims, name)
			}
			switch name[0] {
			case 'e':
				t.exp, t.hasExp = f, true
			case 'n':
				t.nbf, t.hasNbf = f, true
			default:
				t.iat, t.hasIat = f, true
			}
		case "aud":
			t.hasAud = true
			if s, ok := jsonscan.String(value); ok {
				t.aud = []string{s}
				return nil
			}
			aud, ok := jsonscan.StringArray(value)
			if !ok {
				return fmt.Errorf("%w: aud is not a string or an array of strings", ErrBadClaims)
			}
			t.aud = aud
			return nil
		}
		return nil
	})
	if err != nil {
		return headerError(err)
	}
	switch {
	case !hasUser:
		return fmt.Errorf("%w: no username", ErrBadClaims)
	case !hasTime:
		return fmt.Errorf("%w: no time", ErrBadClaims)
	case !hasNonce:
		return fmt.Errorf("%w: no nonce", ErrBadClaims)
	}
	return nil
}
