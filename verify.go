package asymjwt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultMaxSkew is the largest accepted distance between a token's "time"
// claim and the verifier's clock, as in the original Python library.
const DefaultMaxSkew = 20 * time.Second

// Verifier checks the tokens of incoming requests against the users' public
// keys, the time window and a nonce store. It is safe for concurrent use by
// multiple goroutines.
type Verifier struct {
	keys       KeyStore
	nonces     NonceStore
	now        func() time.Time
	maxSkew    time.Duration
	maxSize    int
	algs       map[Algorithm]bool
	requireBnd bool
	publicURL  *url.URL
	hosts      []string // canonical; nil: the request's Host is believed
	audience   string
	logger     *slog.Logger
	onError    func(*http.Request, error)
	onKeyUsed  func(username string, key PublicKey, at time.Time)
}

// VerifierOption configures a [Verifier].
type VerifierOption func(*Verifier) error

// WithNonceStore sets where used nonces are remembered. The default is a
// [MemoryNonceStore] of its own, which is right for a single verifying
// process; a fleet shares one (see the redisnonce package).
func WithNonceStore(s NonceStore) VerifierOption {
	return func(v *Verifier) error {
		if s == nil {
			return errors.New("asymjwt: WithNonceStore(nil)")
		}
		v.nonces = s
		return nil
	}
}

// WithTimeFunc sets the verifier's clock. The default is time.Now.
func WithTimeFunc(now func() time.Time) VerifierOption {
	return func(v *Verifier) error {
		if now == nil {
			return errors.New("asymjwt: WithTimeFunc(nil)")
		}
		v.now = now
		return nil
	}
}

// WithMaxSkew sets the largest accepted distance between a token's "time"
// and the verifier's clock, in either direction. The default is
// [DefaultMaxSkew], 20 seconds.
func WithMaxSkew(d time.Duration) VerifierOption {
	return func(v *Verifier) error {
		if d <= 0 {
			return fmt.Errorf("asymjwt: WithMaxSkew(%v): must be positive", d)
		}
		v.maxSkew = d
		return nil
	}
}

// WithMaxTokenSize sets the largest Authorization header value, in bytes,
// that is parsed at all. The default is [DefaultMaxTokenSize].
func WithMaxTokenSize(n int) VerifierOption {
	return func(v *Verifier) error {
		if n < 64 {
			return fmt.Errorf("asymjwt: WithMaxTokenSize(%d): too small", n)
		}
		v.maxSize = n
		return nil
	}
}

// WithAlgorithms sets which algorithms are accepted at all. A token's
// algorithm must also fit the stored key it is checked with: RSA keys take
// RS* and PS*, ECDSA keys only the ES algorithm of their curve, Ed25519 keys
// only EdDSA. The default accepts all of them.
func WithAlgorithms(algs ...Algorithm) VerifierOption {
	return func(v *Verifier) error {
		v.algs = make(map[Algorithm]bool, len(algs))
		for _, alg := range algs {
			if alg.hash() == 0 && alg != EdDSA {
				return fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, alg)
			}
			v.algs[alg] = true
		}
		return nil
	}
}

// WithRequireBinding makes the "htm" and "htu" claims mandatory. Without it
// they are checked when present.
func WithRequireBinding() VerifierOption {
	return func(v *Verifier) error { v.requireBnd = true; return nil }
}

// WithPublicURL sets the scheme and host that clients use to reach this
// server, such as "https://api.example.com", for checking "htu" behind a
// proxy or load balancer that terminates TLS. By default they come from the
// request (TLS or not, and its Host).
func WithPublicURL(base string) VerifierOption {
	return func(v *Verifier) error {
		u, err := url.Parse(base)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return fmt.Errorf("asymjwt: WithPublicURL(%q): want an absolute http or https URL", base)
		}
		v.publicURL = u
		return nil
	}
}

// WithHosts names the hosts this server answers to ("api.example.com", or
// with a port), for checking "htu". Without it (or [WithPublicURL]), the
// host a token must be bound to is taken from the request's Host header,
// which the sender chooses: a service that receives a client's tokens could
// then present them here, within their seconds of life, with its own name
// in Host. Set it, or WithPublicURL, wherever one client key is trusted by
// more than one service. A bound token presented under another Host fails
// with ErrBinding.
func WithHosts(hosts ...string) VerifierOption {
	return func(v *Verifier) error {
		for _, h := range hosts {
			if h == "" || strings.ContainsAny(h, "/ ") {
				return fmt.Errorf("asymjwt: WithHosts(%q): want a host or host:port", h)
			}
			v.hosts = append(v.hosts, strings.ToLower(h))
		}
		return nil
	}
}

// WithAudience makes tokens that carry an "aud" claim acceptable only if it
// names aud. Tokens without "aud" are unaffected. Without this option, a
// token with an "aud" claim is refused, as PyJWT (and so the original
// library) refuses it.
func WithAudience(aud string) VerifierOption {
	return func(v *Verifier) error { v.audience = aud; return nil }
}

// WithLogger sends a line for every refused request to l, at level Info
// (Warn for an unavailable store). The line names the error kind and cause;
// it never holds the token, the Authorization header or key material. nil,
// the default, logs nothing.
func WithLogger(l *slog.Logger) VerifierOption {
	return func(v *Verifier) error { v.logger = l; return nil }
}

// WithErrorHook calls f with every refused request and the error (which
// wraps one of the ErrX sentinels), for metrics or audit. f must not keep r.
func WithErrorHook(f func(r *http.Request, err error)) VerifierOption {
	return func(v *Verifier) error { v.onError = f; return nil }
}

// WithKeyUsed calls f after each successful verification with the user and
// the key that verified, as the original records last_used_on. f runs on
// the request's goroutine: keep it fast, or hand off.
func WithKeyUsed(f func(username string, key PublicKey, at time.Time)) VerifierOption {
	return func(v *Verifier) error { v.onKeyUsed = f; return nil }
}

// NewVerifier returns a Verifier that looks keys up in keys.
func NewVerifier(keys KeyStore, opts ...VerifierOption) (*Verifier, error) {
	if keys == nil {
		return nil, errors.New("asymjwt: NewVerifier: nil KeyStore")
	}
	v := &Verifier{
		keys:    keys,
		now:     time.Now,
		maxSkew: DefaultMaxSkew,
		maxSize: DefaultMaxTokenSize,
	}
	for _, opt := range opts {
		if err := opt(v); err != nil {
			return nil, err
		}
	}
	if v.nonces == nil {
		v.nonces = NewMemoryNonceStore()
	}
	return v, nil
}

// Identity is what a verified token tells about the caller.
type Identity struct {
	// Username is the verified "username" claim.
	Username string
	// Key is the stored key that verified the signature.
	Key PublicKey
	// Algorithm is the token's signature algorithm.
	Algorithm Algorithm
	// Time is the token's "time" claim.
	Time time.Time
	// Nonce is the token's nonce (a number's JSON text for the original's
	// numeric nonces).
	Nonce string
	// Claims is the token's whole claims set as JSON, for claims this
	// package does not interpret.
	Claims []byte
}

// Verify checks the "Authorization: JWT <token>" header of r and returns the
// caller's identity. The error wraps exactly one of ErrNoToken,
// ErrTokenTooLarge, ErrMalformed, ErrBadHeader, ErrBadAlgorithm,
// ErrBadClaims, ErrUnknownUser, ErrBadSignature, ErrStale, ErrReplay,
// ErrBinding and ErrUnavailable. A successful Verify uses up the token's
// nonce: the same token verifies only once.
func (v *Verifier) Verify(r *http.Request) (*Identity, error) {
	raw, err := v.tokenFromHeader(r.Header)
	if err != nil {
		return nil, err
	}
	return v.verify(r.Context(), raw, r.Method, v.requestHTU(r), false)
}

// VerifyToken verifies a token presented outside an HTTP request (from a
// file, a queue or the command line), with or without the "JWT " prefix.
// method and target (an absolute URL) are the request the token must be
// bound to: when not empty, the token must carry a matching "htm" or "htu"
// claim; when empty, that claim is not checked ([WithRequireBinding] still
// requires it to be present). The nonce is used up as in [Verifier.Verify].
func (v *Verifier) VerifyToken(ctx context.Context, tok, method, target string) (*Identity, error) {
	// The same bound as a header's, before any other work.
	if len(tok) > v.maxSize+len("JWT ") {
		return nil, fmt.Errorf("%w: %d bytes", ErrTokenTooLarge, len(tok))
	}
	tok = strings.TrimSpace(tok)
	if scheme, rest, ok := strings.Cut(tok, " "); ok && strings.EqualFold(scheme, "JWT") {
		tok = strings.TrimSpace(rest)
	}
	if len(tok) > v.maxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTokenTooLarge, len(tok))
	}
	htu := ""
	if target != "" {
		var ok bool
		if htu, ok = normalizeHTU(target); !ok {
			return nil, fmt.Errorf("%w: target %q is not an absolute http(s) URL", ErrBinding, target)
		}
	}
	return v.verify(ctx, tok, method, htu, true)
}

// tokenFromHeader finds the token in the Authorization header, checking its
// size before anything else.
func (v *Verifier) tokenFromHeader(h http.Header) (string, error) {
	values := h["Authorization"]
	switch {
	case len(values) == 0:
		return "", ErrNoToken
	case len(values) > 1:
		return "", fmt.Errorf("%w: %d Authorization headers", ErrMalformed, len(values))
	}
	value := values[0]
	if len(value) > v.maxSize+len("JWT ") {
		return "", fmt.Errorf("%w: %d bytes", ErrTokenTooLarge, len(value))
	}
	scheme, tok, _ := strings.Cut(value, " ")
	if !strings.EqualFold(scheme, "JWT") {
		return "", ErrNoToken
	}
	return trimOWS(tok), nil
}

// trimOWS trims spaces and tabs (RFC 9110 OWS) from both ends of s.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// requestHTU is the htu a token for r must carry, or "\x00" (which no
// token's htu equals) when r's Host is not one of WithHosts.
func (v *Verifier) requestHTU(r *http.Request) string {
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if v.publicURL != nil {
		scheme, host = v.publicURL.Scheme, v.publicURL.Host
	} else if v.hosts != nil && !v.knownHost(scheme, host) {
		return unknownHost
	}
	return buildHTU(scheme, host, r.URL.EscapedPath())
}

const unknownHost = "\x00"

func (v *Verifier) knownHost(scheme, host string) bool {
	host = canonicalHost(scheme, host)
	for _, h := range v.hosts {
		if canonicalHost(scheme, h) == host {
			return true
		}
	}
	return false
}

// verify runs the checks in DESIGN.md's order: parse once, look up keys,
// algorithm from the stored key, signature, time, binding, and last the
// nonce, so only signed tokens reach the nonce store.
func (v *Verifier) verify(ctx context.Context, raw, method, htu string, strictBinding bool) (*Identity, error) {
	var t token
	if err := parseToken(raw, &t); err != nil {
		return nil, err
	}
	alg, ok := v.algorithm(t.alg)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrBadAlgorithm, truncate(string(t.alg)))
	}
	keys, err := v.keys.PublicKeys(ctx, t.username)
	if err != nil {
		return nil, fmt.Errorf("%w: key store: %w", ErrUnavailable, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrUnknownUser, t.username)
	}
	key, err := verifySignature(&t, alg, keys)
	if err != nil {
		return nil, fmt.Errorf("%w (user %q)", err, t.username)
	}

	now := v.now()
	if err := v.checkTime(&t, now); err != nil {
		return nil, err
	}
	if err := v.checkAudience(&t); err != nil {
		return nil, err
	}
	if err := v.checkBinding(&t, method, htu, strictBinding); err != nil {
		return nil, err
	}
	// Remember the nonce until the token can no longer pass checkTime here,
	// and as long again for the other verifiers of a fleet, whose clocks may
	// differ from this one's by up to the window.
	ttl := time.Duration((t.time-float64(now.UnixNano())/1e9)*1e9) + 2*v.maxSkew + time.Second
	if err := v.nonces.Use(ctx, t.username, t.nonce, ttl); err != nil {
		if errors.Is(err, ErrReplay) {
			return nil, fmt.Errorf("%w (user %q)", ErrReplay, t.username)
		}
		return nil, fmt.Errorf("%w: nonce store: %w", ErrUnavailable, err)
	}
	if v.onKeyUsed != nil {
		v.onKeyUsed(t.username, key, now)
	}
	sec, frac := math.Modf(t.time)
	return &Identity{
		Username:  t.username,
		Key:       key,
		Algorithm: alg,
		Time:      time.Unix(int64(sec), int64(frac*1e9)),
		Nonce:     t.nonce,
		Claims:    t.claimsJSON,
	}, nil
}

// algorithm maps a token's "alg" to one of ours (exactly, without case
// folding) and reports whether it is allowed.
func (v *Verifier) algorithm(name []byte) (Algorithm, bool) {
	for _, alg := range [...]Algorithm{RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA} {
		if string(name) == string(alg) {
			return alg, v.algs == nil || v.algs[alg]
		}
	}
	return "", false
}

// verifySignature tries the user's keys: the one the kid names, if any,
// otherwise all of them. A key is tried only with an algorithm that fits it,
// so the algorithm comes from the stored key, not from the token.
func verifySignature(t *token, alg Algorithm, keys []PublicKey) (PublicKey, error) {
	candidates := keys
	if len(t.kid) > 0 {
		for i := range keys {
			if keys[i].Fingerprint == string(t.kid) {
				candidates = keys[i : i+1]
				break
			}
		}
	}
	method := jwtMethod(alg)
	fitted := false
	for _, k := range candidates {
		if !fitsKey(alg, k.Key) {
			continue
		}
		fitted = true
		if method.Verify(t.signingInput, t.signature, k.Key) == nil {
			return k, nil
		}
	}
	if !fitted {
		// On the wire as a bad signature: "bad_algorithm" here, but
		// "invalid_signature" for an unknown user, would tell which
		// usernames exist.
		return PublicKey{}, wireKindError{fmt.Errorf("%w: %s fits none of the user's keys", ErrBadAlgorithm, alg), "invalid_signature"}
	}
	return PublicKey{}, ErrBadSignature
}

// jwtMethod returns golang-jwt's verifier for alg, which algAllowed has
// already restricted to the asymmetric ones.
func jwtMethod(alg Algorithm) jwt.SigningMethod {
	switch alg {
	case RS256:
		return jwt.SigningMethodRS256
	case RS384:
		return jwt.SigningMethodRS384
	case RS512:
		return jwt.SigningMethodRS512
	case PS256:
		return jwt.SigningMethodPS256
	case PS384:
		return jwt.SigningMethodPS384
	case PS512:
		return jwt.SigningMethodPS512
	case ES256:
		return jwt.SigningMethodES256
	case ES384:
		return jwt.SigningMethodES384
	case ES512:
		return jwt.SigningMethodES512
	default:
		return jwt.SigningMethodEdDSA
	}
}

// checkTime applies the ±maxSkew window to "time", and to "iat", "nbf" and
// "exp" when a client adds them: they can narrow the window, never widen it.
func (v *Verifier) checkTime(t *token, now time.Time) error {
	secs := float64(now.UnixNano()) / 1e9
	skew := v.maxSkew.Seconds()
	if math.Abs(secs-t.time) > skew {
		return fmt.Errorf("%w: time is %.0fs from now (max %v)", ErrStale, t.time-secs, v.maxSkew)
	}
	if t.hasIat && math.Abs(secs-t.iat) > skew {
		return fmt.Errorf("%w: iat is %.0fs from now", ErrStale, t.iat-secs)
	}
	if t.hasNbf && secs < t.nbf {
		return fmt.Errorf("%w: not valid before nbf", ErrStale)
	}
	if t.hasExp && secs >= t.exp {
		return fmt.Errorf("%w: expired (exp)", ErrStale)
	}
	return nil
}

// checkBinding compares htm and htu with the request's method and htu.
// An empty method or htu is unknown (a token checked by VerifyToken without
// them): its claim is reported, not checked. In strict mode, a known method
// or htu requires its claim.
func (v *Verifier) checkBinding(t *token, method, htu string, strict bool) error {
	if v.requireBnd && (!t.hasHTM || !t.hasHTU) {
		return fmt.Errorf("%w: htm and htu are required", ErrBinding)
	}
	if method != "" && (t.hasHTM || strict) && string(t.htm) != method {
		return fmt.Errorf("%w: method", ErrBinding)
	}
	if htu != "" && (t.hasHTU || strict) && string(t.htu) != htu {
		// Only a client that normalises differently needs the slow path.
		if got, ok := normalizeHTU(string(t.htu)); !ok || got != htu {
			return fmt.Errorf("%w: URL", ErrBinding)
		}
	}
	return nil
}

// checkAudience refuses an "aud" claim that does not name this service.
func (v *Verifier) checkAudience(t *token) error {
	if !t.hasAud {
		return nil
	}
	for _, a := range t.aud {
		if v.audience != "" && a == v.audience {
			return nil
		}
	}
	return fmt.Errorf("%w: aud does not name this service", ErrBadClaims)
}

// truncate shortens attacker-chosen text before it goes into an error.
func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}
