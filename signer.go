package asymjwt

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/asymjwt/asymjwt/internal/jsonscan"
	"github.com/asymjwt/asymjwt/internal/jws"
	"github.com/asymjwt/asymjwt/internal/sigconv"
	"golang.org/x/crypto/ssh"
)

// Signer makes the tokens of one user. Every call to [Signer.Sign] returns a
// new token with a fresh random nonce, so no two are alike. Its key can be
// replaced while it is in use ([Signer.SetKey]), to rotate keys without a
// restart. A Signer is safe for concurrent use by multiple goroutines.
type Signer struct {
	username string
	alg      Algorithm // chosen with WithAlgorithm; "" for each key's default
	now      func() time.Time
	bind     bool
	noCert   bool // WithoutCertificate

	// Precomputed once: the start of the claims up to the time value, and
	// any extra claims.
	claimsHead []byte
	extra      []byte

	key atomic.Pointer[signingKey]
}

// signingKey is what a Signer signs with; SetKey swaps one for another.
type signingKey struct {
	key    Key
	spec   *algSpec
	kid    string
	cert   *ssh.Certificate // sent in the header; nil for none
	prefix string           // the encoded JOSE header and its dot

	// For keys this package loaded itself, the private key, so a token is
	// signed without the Key interface and built on the stack.
	ed ed25519.PrivateKey
	ec *ecdsa.PrivateKey
}

type signerConfig struct {
	alg    Algorithm
	now    func() time.Time
	extra  map[string]any
	nobind bool
	noCert bool
}

// WithAlgorithm chooses the signing algorithm instead of the key's default
// (see [DefaultAlgorithm]). For RSA keys any of RS256, RS384, RS512, PS256,
// PS384 and PS512; ECDSA and Ed25519 keys have exactly one algorithm each.
// Note that the original Python library accepts only RS512 unless configured.
func WithAlgorithm(alg Algorithm) SignerOption {
	return signerOptionFunc(func(c *signerConfig) error {
		if alg.spec() == nil {
			return errorf("WithAlgorithm: %w: %w: %q", ErrInvalidOption, ErrUnsupportedAlgorithm, truncate(string(alg)))
		}
		c.alg = alg
		return nil
	})
}

// WithClaims adds claims to every token. They are encoded once, when the
// Signer is made. The claims the Signer sets itself (username, time, nonce,
// htm, htu) cannot be overridden, in any letter case, and no two names may
// differ only in case: verifiers refuse such tokens, because Go's
// encoding/json matches names without case. Avoid "aud": the original Python
// library rejects tokens with an audience it was not told to expect.
func WithClaims(claims map[string]any) SignerOption {
	return signerOptionFunc(func(c *signerConfig) error {
		if len(claims) == 0 {
			return optionError("WithClaims", "no claims")
		}
		for name := range claims {
			if isReservedClaim(name) {
				return optionError("WithClaims", fmt.Sprintf("claim %q is set by the Signer", name))
			}
		}
		c.extra = claims
		return nil
	})
}

// WithoutBinding leaves out the "htm" and "htu" claims that bind a token to
// one request's method and URL.
func WithoutBinding() SignerOption {
	return signerOptionFunc(func(c *signerConfig) error { c.nobind = true; return nil })
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
		return nil, errorf("NewSigner: %w", ErrInvalidUsername)
	}
	cfg := signerConfig{now: time.Now}
	for _, opt := range opts {
		if err := opt.applySigner(&cfg); err != nil {
			return nil, err
		}
	}
	s := &Signer{username: username, alg: cfg.alg, now: cfg.now, bind: !cfg.nobind, noCert: cfg.noCert}
	s.claimsHead = append(s.claimsHead, `{"username":`...)
	s.claimsHead = jsonscan.AppendString(s.claimsHead, username)
	s.claimsHead = append(s.claimsHead, `,"time":`...)
	if len(cfg.extra) > 0 {
		var err error
		if s.extra, err = encodeExtraClaims(cfg.extra); err != nil {
			return nil, err
		}
	}
	if err := s.SetKey(key); err != nil {
		return nil, err
	}
	return s, nil
}

// SetKey makes the Signer sign with key from now on, to rotate keys without
// a restart: give the server the new public key (users may have several),
// call SetKey, and once no token signed with the old key can still be in
// flight (seconds), remove the old public key from the server. Tokens being
// signed while SetKey runs use the old key or the new one, never a mix.
// The algorithm is the one [WithAlgorithm] chose, or else the new key's
// default; on an error the Signer keeps its old key. A key that carries an
// OpenSSH certificate ([CertifiedKey]) sends it in every token's header,
// unless the Signer was made [WithoutCertificate]; the header is encoded
// here, once per key.
func (s *Signer) SetKey(key Key) error {
	k, err := newSigningKey(key, s.alg, s.noCert)
	if err != nil {
		return err
	}
	s.key.Store(k)
	return nil
}

func newSigningKey(key Key, alg Algorithm, noCert bool) (*signingKey, error) {
	if key == nil {
		return nil, errorf("signing key: %w: nil key", ErrUnsupportedKey)
	}
	pub := key.Public()
	if err := checkPublicKey(pub); err != nil {
		return nil, errorf("signing key: %w", err)
	}
	if alg == "" {
		alg = defaultAlgorithm(pub)
	}
	spec := alg.spec()
	if !spec.fits(pub) {
		return nil, errorf("signing key: %w: %s", ErrUnsupportedAlgorithm, alg)
	}
	// Some keys sign fewer algorithms than their type allows (an ssh-agent
	// RSA key: RS256 and RS512); say so now rather than on every request.
	if k, ok := key.(interface{ canSign(*algSpec) bool }); ok && !k.canSign(spec) {
		return nil, errorf("signing key: %w: %s with this key", ErrUnsupportedAlgorithm, alg)
	}
	kid, err := fingerprint(pub)
	if err != nil {
		return nil, errorf("signing key: %w", err)
	}
	var cert *ssh.Certificate
	if ck, ok := key.(CertifiedKey); ok && !noCert {
		if cert = ck.Certificate(); cert != nil {
			if err := checkCertificateFor(pub, cert); err != nil {
				return nil, errorf("signing key: %w", err)
			}
		}
	}
	var certParam string
	if cert != nil {
		certParam = base64.StdEncoding.EncodeToString(cert.Marshal())
	}
	header, err := json.Marshal(struct {
		Alg  Algorithm `json:"alg"`
		Typ  string    `json:"typ"`
		Kid  string    `json:"kid"`
		Cert string    `json:"sshcert,omitempty"` // certHeaderParam
	}{alg, "JWT", kid, certParam})
	if err != nil {
		return nil, errorf("signing key: %w", err)
	}
	k := &signingKey{
		key:    key,
		spec:   spec,
		kid:    kid,
		cert:   cert,
		prefix: string(jws.AppendSegment(nil, header)) + ".",
	}
	if sk, ok := key.(*signerKey); ok {
		switch priv := sk.signer.(type) {
		case ed25519.PrivateKey:
			k.ed = priv
		case *ecdsa.PrivateKey:
			k.ec = priv
		}
	}
	return k, nil
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
				return nil, optionError("WithClaims", fmt.Sprintf("claims %q and %q differ only in case", other, name))
			}
		}
		v, err := json.Marshal(claims[name])
		if err != nil {
			return nil, optionError("WithClaims", fmt.Sprintf("claim %q: %v", name, err))
		}
		out = append(out, ',')
		out = jsonscan.AppendString(out, name)
		out = append(out, ':')
		out = append(out, v...)
	}
	return out, nil
}

// Username returns the user the Signer signs for.
func (s *Signer) Username() string { return s.username }

// Algorithm returns the JWS algorithm the Signer signs with now.
func (s *Signer) Algorithm() Algorithm { return s.key.Load().spec.alg }

// KeyID returns the "kid" of the Signer's tokens now: the key's SHA-256
// fingerprint (see [Fingerprint]).
func (s *Signer) KeyID() string { return s.key.Load().kid }

// Certificate returns the OpenSSH certificate the Signer's tokens carry now,
// or nil. The caller must not modify it.
func (s *Signer) Certificate() *ssh.Certificate { return s.key.Load().cert }

// nonceBytes is the size of the random nonce: 128 bits.
const nonceBytes = 16

// tokenBufSize fits the usual token on the stack; longer ones spill to the
// heap through append.
const tokenBufSize = 768

// Sign returns a new token. When r is not nil, and binding was not switched
// off with [WithoutBinding], the token is bound to r's method and URL (the
// "htm" and "htu" claims); r is only read. The key is asked to sign with ctx,
// so a remote key (ssh-agent) gives up when ctx is done.
func (s *Signer) Sign(ctx context.Context, r *http.Request) (string, error) {
	v, err := s.authorization(ctx, r, 0)
	if err != nil {
		return "", err
	}
	return v[len(authScheme):], nil
}

// authScheme starts the Authorization header value; the token follows.
const authScheme = "JWT "

// authorization returns "JWT <token>", the Authorization header value, in
// one allocation, with the clock moved by offset: a Transport's correction
// for the clock of the server it sends to.
func (s *Signer) authorization(ctx context.Context, r *http.Request, offset time.Duration) (string, error) {
	// A Key need not look at ctx; a cancelled request must not be signed.
	if err := ctx.Err(); err != nil {
		return "", s.signError(err)
	}
	k := s.key.Load()
	var nonce [nonceBytes]byte
	rand.Read(nonce[:]) // never fails (crypto/rand, Go 1.24+)

	var claimsBuf [256]byte
	c := append(claimsBuf[:0], s.claimsHead...)
	c = strconv.AppendInt(c, s.now().Add(offset).Unix(), 10)
	c = append(c, `,"nonce":"`...)
	c = jws.AppendSegment(c, nonce[:])
	c = append(c, '"')
	if r != nil && s.bind && r.URL != nil {
		method := r.Method
		if method == "" {
			method = http.MethodGet
		}
		c = append(c, `,"htm":`...)
		c = jsonscan.AppendString(c, method)
		c = append(c, `,"htu":`...)
		c = appendRequestHTU(c, r)
	}
	c = append(c, s.extra...)
	c = append(c, '}')

	var buf [tokenBufSize]byte
	tok := append(buf[:0], authScheme...)
	tok = append(tok, k.prefix...)
	tok = jws.AppendSegment(tok, c)
	var sigBuf [2 * 66]byte
	sig, err := k.signature(ctx, tok[len(authScheme):], &sigBuf)
	if err != nil {
		return "", s.signError(err)
	}
	tok = append(tok, '.')
	tok = jws.AppendSegment(tok, sig)
	return string(tok), nil
}

// signature signs the signing input in; in-process Ed25519 and ECDSA keys
// sign it where it lies, other keys get a copy they may keep.
func (k *signingKey) signature(ctx context.Context, in []byte, buf *[2 * 66]byte) ([]byte, error) {
	switch {
	case k.ed != nil:
		// Copied out, so ed25519.Sign's result stays on the stack.
		sig := buf[:ed25519.SignatureSize]
		copy(sig, ed25519.Sign(k.ed, in))
		return sig, nil
	case k.ec != nil:
		var d [64]byte
		der, err := ecdsa.SignASN1(rand.Reader, k.ec, k.spec.digest(in, &d))
		if err != nil {
			return nil, fmt.Errorf("signing with %s: %w", k.spec.alg, err)
		}
		jws := buf[:2*k.spec.size]
		if !sigconv.PutDERAsJWS(jws, der) {
			return nil, fmt.Errorf("signing with %s: %w", k.spec.alg, sigconv.ErrMalformed)
		}
		return jws, nil
	}
	return k.key.SignJWS(ctx, k.spec.alg, bytes.Clone(in))
}

func (s *Signer) signError(err error) error {
	return wrapOp("signing token for "+strconv.Quote(s.username), err)
}
