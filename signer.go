package asymjwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Signer makes the tokens of one user with one key. Every call to
// [Signer.Sign] returns a new token with a fresh random nonce, so no two are
// alike. A Signer is safe for concurrent use by multiple goroutines.
type Signer struct {
	key      Key
	alg      Algorithm
	username string
	kid      string

	// Precomputed once: the encoded header with its dot, the start of the
	// claims up to the time value, and any extra claims.
	prefix     string
	claimsHead []byte
	extra      []byte
	maxSigLen  int

	now    func() time.Time
	bind   bool
	offset atomic.Int64 // learned clock skew in nanoseconds, added to now()

	// For keys this package loaded itself, the private key, so Sign can
	// sign without the Key interface and build the token on the stack.
	edKey ed25519.PrivateKey
	ecKey *ecdsa.PrivateKey
}

// SignerOption configures a [Signer].
type SignerOption func(*signerConfig) error

type signerConfig struct {
	alg    Algorithm
	now    func() time.Time
	extra  map[string]any
	nobind bool
}

// WithAlgorithm chooses the signing algorithm instead of the key's default
// (see [DefaultAlgorithm]). For RSA keys any of RS256, RS384, RS512, PS256,
// PS384 and PS512; ECDSA and Ed25519 keys have exactly one algorithm each.
// Note that the original Python library accepts only RS512 unless configured.
func WithAlgorithm(alg Algorithm) SignerOption {
	return func(c *signerConfig) error { c.alg = alg; return nil }
}

// WithClock sets the clock the "time" claim is read from. The default is
// time.Now.
func WithClock(now func() time.Time) SignerOption {
	return func(c *signerConfig) error {
		if now == nil {
			return errors.New("asymjwt: WithClock(nil)")
		}
		c.now = now
		return nil
	}
}

// WithClaims adds claims to every token. They are encoded once, when the
// Signer is made. The claims the Signer sets itself (username, time, nonce,
// htm, htu) cannot be overridden, in any letter case, and no two names may
// differ only in case: verifiers refuse such tokens, because Go's
// encoding/json matches names without case. Avoid "aud": the original Python
// library rejects tokens with an audience it was not told to expect.
func WithClaims(claims map[string]any) SignerOption {
	return func(c *signerConfig) error {
		for name := range claims {
			if isReservedClaim(name) {
				return fmt.Errorf("asymjwt: WithClaims: claim %q is set by the Signer", name)
			}
		}
		c.extra = claims
		return nil
	}
}

// WithoutBinding leaves out the "htm" and "htu" claims that bind a token to
// one request's method and URL.
func WithoutBinding() SignerOption {
	return func(c *signerConfig) error { c.nobind = true; return nil }
}

func isReservedClaim(name string) bool {
	for _, r := range [...]string{"username", "time", "nonce", "htm", "htu"} {
		if strings.EqualFold(name, r) {
			return true
		}
	}
	return false
}

// maxUsernameLen bounds the username, on both sides.
const maxUsernameLen = 256

// validUsername reports whether name is a username this package signs or
// accepts: 1 to 256 bytes of UTF-8 without control characters.
func validUsername(name string) bool {
	if name == "" || len(name) > maxUsernameLen || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// NewSigner returns a Signer for username with key.
func NewSigner(username string, key Key, opts ...SignerOption) (*Signer, error) {
	if !validUsername(username) {
		return nil, ErrInvalidUsername
	}
	if key == nil {
		return nil, fmt.Errorf("%w: nil key", ErrUnsupportedKey)
	}
	cfg := signerConfig{now: time.Now}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	pub := key.Public()
	alg := cfg.alg
	if alg == "" {
		var err error
		if alg, err = DefaultAlgorithm(pub); err != nil {
			return nil, err
		}
	} else if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	if !fitsKey(alg, pub) {
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedAlgorithm, alg)
	}
	// Some keys sign fewer algorithms than their type allows (an ssh-agent
	// RSA key: RS256 and RS512); say so now rather than on every request.
	if k, ok := key.(interface{ canSign(Algorithm) bool }); ok && !k.canSign(alg) {
		return nil, fmt.Errorf("%w: %s with this key", ErrUnsupportedAlgorithm, alg)
	}
	kid, err := Fingerprint(pub)
	if err != nil {
		return nil, err
	}

	header, err := json.Marshal(struct {
		Alg Algorithm `json:"alg"`
		Typ string    `json:"typ"`
		Kid string    `json:"kid"`
	}{alg, "JWT", kid})
	if err != nil {
		return nil, err
	}
	s := &Signer{
		key:       key,
		alg:       alg,
		username:  username,
		kid:       kid,
		prefix:    base64.RawURLEncoding.EncodeToString(header) + ".",
		now:       cfg.now,
		bind:      !cfg.nobind,
		maxSigLen: maxSignatureLen(pub),
	}
	if sk, ok := key.(*signerKey); ok {
		switch k := sk.signer.(type) {
		case ed25519.PrivateKey:
			s.edKey = k
		case *ecdsa.PrivateKey:
			s.ecKey = k
		}
	}
	s.claimsHead = append(s.claimsHead, `{"username":`...)
	s.claimsHead = appendJSONString(s.claimsHead, username)
	s.claimsHead = append(s.claimsHead, `,"time":`...)
	if len(cfg.extra) > 0 {
		if s.extra, err = encodeExtraClaims(cfg.extra); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// encodeExtraClaims encodes claims as `,"a":1,"b":2` in sorted order.
func encodeExtraClaims(claims map[string]any) ([]byte, error) {
	names := make([]string, 0, len(claims))
	for name := range claims {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []byte
	for i, name := range names {
		for _, other := range names[:i] {
			if strings.EqualFold(name, other) {
				return nil, fmt.Errorf("asymjwt: WithClaims: claims %q and %q differ only in case", other, name)
			}
		}
		v, err := json.Marshal(claims[name])
		if err != nil {
			return nil, fmt.Errorf("asymjwt: WithClaims: claim %q: %w", name, err)
		}
		out = append(out, ',')
		out = appendJSONString(out, name)
		out = append(out, ':')
		out = append(out, v...)
	}
	return out, nil
}

func maxSignatureLen(pub any) int {
	if n := rsaModulusBytes(pub); n > 0 {
		return n
	}
	return 132 // ES512; ES256 is 64, EdDSA 64
}

// Username returns the user the Signer signs for.
func (s *Signer) Username() string { return s.username }

// Algorithm returns the JWS algorithm the Signer uses.
func (s *Signer) Algorithm() Algorithm { return s.alg }

// KeyID returns the "kid" of the Signer's tokens: the key's SHA-256
// fingerprint (see [Fingerprint]).
func (s *Signer) KeyID() string { return s.kid }

// ClockOffset returns the correction added to the Signer's clock, as learned
// from a server (see [Signer.SetClockOffset]).
func (s *Signer) ClockOffset() time.Duration { return time.Duration(s.offset.Load()) }

// SetClockOffset sets a correction added to the Signer's clock for every
// later token: positive when the server's clock is ahead of ours. It is safe
// to call while other goroutines sign.
func (s *Signer) SetClockOffset(d time.Duration) { s.offset.Store(int64(d)) }

// nonceBytes is the size of the random nonce: 128 bits.
const nonceBytes = 16

// Sign returns a new token. When r is not nil, and binding was not switched
// off with [WithoutBinding], the token is bound to r's method and URL (the
// "htm" and "htu" claims); r is only read. The key is asked to sign with ctx,
// so a remote key (ssh-agent) gives up when ctx is done.
func (s *Signer) Sign(ctx context.Context, r *http.Request) (string, error) {
	return s.sign(ctx, r, 0)
}

// sign is Sign with a further clock correction, which a Transport learns for
// each host.
func (s *Signer) sign(ctx context.Context, r *http.Request, skew time.Duration) (string, error) {
	// A Key need not look at ctx; a cancelled request must not be signed.
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("asymjwt: signing token for %q: %w", s.username, err)
	}
	var nonce [nonceBytes]byte
	rand.Read(nonce[:]) // never fails (crypto/rand, Go 1.24+)

	var claimsBuf [256]byte
	c := append(claimsBuf[:0], s.claimsHead...)
	c = strconv.AppendInt(c, s.now().Add(s.ClockOffset()+skew).Unix(), 10)
	c = append(c, `,"nonce":"`...)
	c = base64.RawURLEncoding.AppendEncode(c, nonce[:])
	c = append(c, '"')
	if r != nil && s.bind && r.URL != nil {
		method := r.Method
		if method == "" {
			method = http.MethodGet
		}
		c = append(c, `,"htm":`...)
		c = appendJSONString(c, method)
		c = append(c, `,"htu":`...)
		c = appendRequestHTU(c, r)
	}
	c = append(c, s.extra...)
	c = append(c, '}')

	switch {
	case s.edKey != nil:
		return s.signEd25519(c), nil
	case s.ecKey != nil:
		return s.signECDSA(c)
	}
	enc := base64.RawURLEncoding
	tok := make([]byte, 0, len(s.prefix)+enc.EncodedLen(len(c))+1+enc.EncodedLen(s.maxSigLen))
	tok = append(tok, s.prefix...)
	tok = enc.AppendEncode(tok, c)
	// Capped, so a Key that appends to its input cannot write into tok.
	sig, err := s.key.SignJWS(ctx, s.alg, tok[:len(tok):len(tok)])
	if err != nil {
		return "", fmt.Errorf("asymjwt: signing token for %q: %w", s.username, err)
	}
	tok = append(tok, '.')
	tok = enc.AppendEncode(tok, sig)
	return string(tok), nil
}

// tokenBufSize fits the usual token on the stack; longer ones spill to the
// heap through append.
const tokenBufSize = 768

// signEd25519 finishes a token for an in-process Ed25519 key: the same
// signature [signerKey.SignJWS] makes, without its allocations.
func (s *Signer) signEd25519(claims []byte) string {
	enc := base64.RawURLEncoding
	var buf [tokenBufSize]byte
	tok := append(buf[:0], s.prefix...)
	tok = enc.AppendEncode(tok, claims)
	sig := ed25519.Sign(s.edKey, tok)
	tok = append(tok, '.')
	tok = enc.AppendEncode(tok, sig)
	return string(tok)
}

// signECDSA finishes a token for an in-process ECDSA key, as
// [signerKey.SignJWS] would.
func (s *Signer) signECDSA(claims []byte) (string, error) {
	enc := base64.RawURLEncoding
	var buf [tokenBufSize]byte
	tok := append(buf[:0], s.prefix...)
	tok = enc.AppendEncode(tok, claims)
	var d [64]byte
	der, err := ecdsa.SignASN1(rand.Reader, s.ecKey, digest(s.alg, tok, &d))
	if err != nil {
		return "", fmt.Errorf("asymjwt: signing token for %q: asymjwt: signing with %s: %w", s.username, s.alg, err)
	}
	var sig [2 * 66]byte
	jws := sig[:2*ecdsaSize(s.alg)]
	if !putDERAsJWS(jws, der) {
		return "", fmt.Errorf("asymjwt: signing token for %q: %w", s.username, errMalformedECDSA)
	}
	tok = append(tok, '.')
	tok = enc.AppendEncode(tok, jws)
	return string(tok), nil
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendJSONChars(dst, s)
	return append(dst, '"')
}

// appendJSONChars appends s escaped for the inside of a JSON string.
func appendJSONChars(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\':
				dst = append(dst, '\\', b)
			case b < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			default:
				dst = append(dst, b)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}
