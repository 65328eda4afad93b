package asymjwt

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
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
	signingInput string // "<header>.<claims>", as signed
	signature    []byte
	claimsJSON   []byte

	// Views into the decoded header and claims, compared without copying.
	alg []byte
	kid []byte

	username string
	time     float64
	nonce    string // the store key: the string, or a number's JSON text

	htm, htu       []byte
	hasHTM, hasHTU bool

	exp, nbf, iat          float64
	hasExp, hasNbf, hasIat bool
	aud                    []string
	hasAud                 bool
}

var b64 = base64.RawURLEncoding.Strict()

// parseToken splits and decodes a compact JWS (RFC 7515 §7.1) and reads its
// header and claims. The size was checked by the caller.
func parseToken(s string, t *token) error {
	i := strings.IndexByte(s, '.')
	j := -1
	if i > 0 {
		if k := strings.IndexByte(s[i+1:], '.'); k > 0 {
			j = i + 1 + k
		}
	}
	if j < 0 || j == len(s)-1 || strings.IndexByte(s[j+1:], '.') >= 0 {
		return fmt.Errorf("%w: not three non-empty segments", ErrMalformed)
	}
	// encoding/base64 skips CR and LF even in strict mode; a compact JWS
	// has neither.
	if strings.IndexByte(s, '\n') >= 0 || strings.IndexByte(s, '\r') >= 0 {
		return fmt.Errorf("%w: line break in token", ErrMalformed)
	}
	// One allocation holds the encoded token and, after it, the decoded
	// segments.
	buf := make([]byte, len(s)+b64.DecodedLen(len(s)))
	raw := buf[:copy(buf, s)]
	hdr, cl, sig := raw[:i], raw[i+1:j], raw[j+1:]
	buf = buf[len(s):]
	hn, err := b64.Decode(buf, hdr)
	if err != nil {
		return fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	cn, err := b64.Decode(buf[hn:], cl)
	if err != nil {
		return fmt.Errorf("%w: claims are not base64url", ErrMalformed)
	}
	sn, err := b64.Decode(buf[hn+cn:], sig)
	if err != nil {
		return fmt.Errorf("%w: signature is not base64url", ErrMalformed)
	}
	t.signingInput = s[:j]
	t.claimsJSON = buf[hn : hn+cn : hn+cn]
	t.signature = buf[hn+cn : hn+cn+sn : hn+cn+sn]
	if err := t.readHeader(buf[:hn]); err != nil {
		return err
	}
	return t.readClaims(t.claimsJSON)
}

func (t *token) readHeader(data []byte) error {
	hasAlg := false
	err := scanObject(data, func(name, value []byte) error {
		switch string(name) {
		case "alg":
			if !isJSONString(value) {
				return fmt.Errorf("%w: alg is not a string", ErrBadAlgorithm)
			}
			t.alg, hasAlg = unquote(value), true
		case "typ":
			typ, ok := jsonString(value)
			if !ok || !strings.EqualFold(typ, "JWT") {
				return fmt.Errorf("%w: typ is not JWT", ErrBadHeader)
			}
		case "kid":
			if !isJSONString(value) {
				return fmt.Errorf("%w: kid is not a string", ErrMalformed)
			}
			t.kid = unquote(value)
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
	if !hasAlg {
		return fmt.Errorf("%w: no alg", ErrBadAlgorithm)
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
	err := scanObject(data, func(name, value []byte) error {
		var ok bool
		switch string(name) {
		case "username":
			t.username, ok = jsonString(value)
			if !ok || !validUsername(t.username) {
				return fmt.Errorf("%w: username is not a valid name", ErrBadClaims)
			}
			hasUser = true
		case "time":
			if t.time, ok = jsonNumber(value); !ok {
				return fmt.Errorf("%w: time is not a number", ErrBadClaims)
			}
			hasTime = true
		case "nonce":
			switch {
			case len(value) > 0 && value[0] == '"':
				t.nonce, _ = jsonString(value)
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
			if !isJSONString(value) {
				return fmt.Errorf("%w: htm is not a string", ErrBadClaims)
			}
			t.htm, t.hasHTM = unquote(value), true
		case "htu":
			if !isJSONString(value) {
				return fmt.Errorf("%w: htu is not a string", ErrBadClaims)
			}
			t.htu, t.hasHTU = unquote(value), true
		case "exp", "nbf", "iat":
			f, ok := jsonNumber(value)
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
			if s, ok := jsonString(value); ok {
				t.aud = []string{s}
				return nil
			}
			return readStringArray(value, &t.aud)
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

// readStringArray reads a JSON array of strings (an "aud" claim).
func readStringArray(value []byte, out *[]string) error {
	bad := fmt.Errorf("%w: aud is not a string or an array of strings", ErrBadClaims)
	if len(value) < 2 || value[0] != '[' {
		return bad
	}
	i := skipSpace(value, 1)
	if value[i] == ']' {
		return nil
	}
	for {
		if value[i] != '"' {
			return bad
		}
		end, err := scanString(value, i)
		if err != nil {
			return bad
		}
		s, _ := jsonString(value[i:end])
		*out = append(*out, s)
		i = skipSpace(value, end)
		if value[i] == ']' {
			return nil
		}
		if value[i] != ',' {
			return bad
		}
		i = skipSpace(value, i+1)
	}
}
