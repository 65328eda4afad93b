package asymjwt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/asymjwt/asymjwt/internal/edverify"
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
	algs       []Algorithm // nil: all
	requireBnd bool
	requireBod bool
	publicURL  *url.URL
	hosts      []string // canonical; nil: the request's Host is believed
	audience   string
	issuers    []trustedIssuer // WithTrustedIssuer; nil: no Bearer tokens
	logger     *slog.Logger
	onError    func(*http.Request, error)
	onSuccess  func(*http.Request, *Identity)
	errorBody  func(*http.Request, error) (string, []byte)
	metrics    VerifierMetrics // nil: no timing at all
	// bodyMetrics is metrics when it also counts refused bodies, else nil.
	bodyMetrics BodyMetrics

	// OpenSSH certificates and authorized_keys options.
	cas         []CertAuthority // WithTrustedCAs
	clientAddr  func(*http.Request) netip.Addr
	revocations *revocationFile
	certs       certCache

	// ed keeps decoded the Ed25519 keys that have verified a token: the
	// key store's, the trusted issuers', and those of certificates whose
	// CA signature has been checked.
	ed edverify.Cache
}

// WithNonceStore sets where used nonces are remembered. The default is a
// [MemoryNonceStore] of its own, on the verifier's clock, which is right for
// a single verifying process; a fleet shares one (see the redisnonce
// package).
func WithNonceStore(s NonceStore) VerifierOption {
	return verifierOptionFunc(func(v *Verifier) error {
		if s == nil {
			return optionError("WithNonceStore", "nil store")
		}
		v.nonces = s
		return nil
	})
}

// WithMaxSkew sets the largest accepted distance between a token's "time"
// and the verifier's clock, in either direction. The default is
// [DefaultMaxSkew], 20 seconds; d must be positive.
func WithMaxSkew(d time.Duration) VerifierOption {
	return verifierOptionFunc(func(v *Verifier) error {
		if d <= 0 {
			return optionError("WithMaxSkew", fmt.Sprintf("%v is not positive", d))
		}
		v.maxSkew = d
		return nil
	})
}

// WithMaxTokenSize sets the largest Authorization header value, in bytes,
// that is parsed at all. The default is [DefaultMaxTokenSize]; n must be at
// least 64.
func WithMaxTokenSize(n int) VerifierOption {
	return verifierOptionFunc(func(v *Verifier) error {
		if n < 64 {
			return optionError("WithMaxTokenSize", fmt.Sprintf("%d bytes is too small", n))
		}
		v.maxSize = n
		return nil
	})
}

// WithAlgorithms sets which algorithms are accepted at all. A token's
// algorithm must also fit the stored key it is checked with: RSA keys take
// RS* and PS*, ECDSA keys only the ES algorithm of their curve, Ed25519 keys
// only EdDSA. The default accepts all of them.
func WithAlgorithms(algs ...Algorithm) VerifierOption {
	return verifierOptionFunc(func(v *Verifier) error {
		if len(algs) == 0 {
			return optionError("WithAlgorithms", "no algorithms")
		}
		for _, alg := range algs {
			if alg.spec() == nil {
				return optionError("WithAlgorithms", fmt.Sprintf("%q: %v", truncate(string(alg)), ErrUnsupportedAlgorithm))
			}
		}
		v.algs = append([]Algorithm(nil), algs...)
		return nil
	})
}

// WithRequireBinding makes the "htm", "htu" and "htq" claims (method, URL
// and query) mandatory. Without it they are checked when present. For the
// body see [WithRequireBodyBinding].
func WithRequireBinding() VerifierOption {
	return verifierOptionFunc(func(v *Verifier) error { v.requireBnd = true; return nil })
}

// WithRequireBodyBinding refuses a request that has a body unless its token
// binds it (the "hcd" claim, with the Content-Digest header). Without it
// the body is checked whenever the token binds one. Requests without a body
// are not affected.
func WithRequireBodyBinding() VerifierOption {
	return verifierOptionFunc(func(v *Verifier) error { v.requireBod = true; return nil })
}

// WithPublicURL sets the scheme and host that clients use to reach this
// server, such as "https://api.example.com", for checking "htu" behind a
// proxy or load balancer that terminates TLS. By default they come from the
// request (TLS or not, and its Host).
func WithPublicURL(base string) VerifierOption {
	return verifierOptionFunc(func(v *Verifier) error {
		u, err := url.Parse(base)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return optionError("WithPublicURL", fmt.Sprintf("%q is not an absolute http or https URL", base))
		}
		v.publicURL = u
		return nil
	})
}

// WithHosts names the hosts this server answers to ("api.example.com", or
// with a port: "api.example.com:8443"; a host without a port matches only
// the scheme's default port), for checking "htu". Without it (or
// [WithPublicURL]), the host a token must be bound to is taken from the
// request's Host header, which the sender chooses: a service that receives a
// client's tokens could then present them here, within their seconds of
// life, with its own name in Host. Set it, or WithPublicURL, wherever one
// client key is trusted by more than one service. A bound token presented
// under another Host fails with ErrBinding, naming the host that came and
// the ones expected.
func WithHosts(hosts ...string) VerifierOption {
	return verifierOptionFunc(func(v *Verifier) error {
		if len(hosts) == 0 {
			return optionError("WithHosts", "no hosts")
		}
		for _, h := range hosts {
			if h == "" || strings.ContainsAny(h, "/ ") {
				return optionError("WithHosts", fmt.Sprintf("%q is not a host or host:port", h))
			}
			v.hosts = append(v.hosts, strings.ToLower(h))
		}
		return nil
	})
}

// WithAudience makes tokens that carry an "aud" claim acceptable only if it
// names aud. Tokens without "aud" are unaffected. Without this option, a
// token with an "aud" claim is refused, as PyJWT (and so the original
// library) refuses it. aud must not be empty.
func WithAudience(aud string) VerifierOption {
	return verifierOptionFunc(func(v *Verifier) error {
		if aud == "" {
			return optionError("WithAudience", "empty audience")
		}
		v.audience = aud
		return nil
	})
}

// WithErrorHook calls f with every request [Verifier.Verify] refuses and the
// error (which wraps one of the ErrX sentinels), for metrics or audit; the
// request's context is r.Context(). f runs on the request's goroutine and
// must not keep r. f must not be nil.
func WithErrorHook(f func(r *http.Request, err error)) VerifierOption {
	return verifierOptionFunc(func(v *Verifier) error {
		if f == nil {
			return optionError("WithErrorHook", "nil function")
		}
		v.onError = f
		return nil
	})
}

// WithSuccessHook calls f with every request [Verifier.Verify] accepts and
// the caller's identity, for metrics or audit (the original library records
// each key's last use); the request's context is r.Context(). f runs on the
// request's goroutine before the handler: keep it fast, or hand off. f must
// not keep r, and must not be nil.
func WithSuccessHook(f func(r *http.Request, id *Identity)) VerifierOption {
	return verifierOptionFunc(func(v *Verifier) error {
		if f == nil {
			return optionError("WithSuccessHook", "nil function")
		}
		v.onSuccess = f
		return nil
	})
}

// WithErrorBody lets a server write its own body for refused requests (a
// JSON error for a JSON API): f returns the Content-Type and the body for
// the request and its error. The status (401, or 503 when a store could not
// answer) and the WWW-Authenticate, Date, Retry-After and Cache-Control
// headers are still the verifier's. The default body is a short fixed text.
// f must not be nil, and must not put the error's text in the body if the
// client should not learn it (see [ErrorKind] for what is safe to send).
func WithErrorBody(f func(r *http.Request, err error) (contentType string, body []byte)) VerifierOption {
	return verifierOptionFunc(func(v *Verifier) error {
		if f == nil {
			return optionError("WithErrorBody", "nil function")
		}
		v.errorBody = f
		return nil
	})
}

// NewVerifier returns a Verifier that looks keys up in keys.
func NewVerifier(keys KeyStore, opts ...VerifierOption) (*Verifier, error) {
	if keys == nil {
		return nil, errorf("NewVerifier: nil KeyStore")
	}
	v := &Verifier{
		keys:       keys,
		now:        time.Now,
		maxSkew:    DefaultMaxSkew,
		maxSize:    DefaultMaxTokenSize,
		clientAddr: RemoteAddr,
	}
	for _, opt := range opts {
		if err := opt.applyVerifier(v); err != nil {
			return nil, err
		}
	}
	if v.nonces == nil {
		s, err := NewMemoryNonceStore(WithClock(v.now))
		if err != nil {
			return nil, err
		}
		v.nonces = s
	}
	if v.logger != nil && v.publicURL == nil && v.hosts == nil {
		v.logger.Warn("asymjwt: verifier built without WithHosts or WithPublicURL: the host a token is bound to is checked against the request's Host header, which the sender chooses; set one where a client key is trusted by more than one service")
	}
	return v, nil
}

// Identity is what a verified token tells about the caller, the same for
// per-request tokens and access tokens; Kind tells which it was.
type Identity struct {
	// Username is the verified "username" claim (an access token's "sub").
	Username string
	// Key is the stored key that verified the signature; for an access
	// token, the issuer's key, its Fingerprint the key's "kid" and its
	// Comment the issuer.
	Key PublicKey
	// Algorithm is the token's signature algorithm.
	Algorithm Algorithm
	// Time is the token's "time" claim (an access token's "iat").
	Time time.Time
	// Nonce is the token's nonce (a number's JSON text for the original's
	// numeric nonces); for an access token its "jti", which is not used
	// up: an access token is accepted until it expires.
	Nonce string
	// Claims is the token's whole claims set as JSON, for claims this
	// package does not interpret.
	Claims []byte
	// Kind is RequestToken for "Authorization: JWT", AccessToken for
	// "Authorization: Bearer" (see [WithTrustedIssuer]).
	Kind TokenKind
	// Issuer is an access token's "iss"; empty for a request token.
	Issuer string
	// Scope is an access token's "scope", space-separated; empty for a
	// request token, or when none was granted.
	Scope string
	// Certificate describes the OpenSSH certificate through which Key was
	// trusted (its key ID and serial are the audit trail CAs expect); nil
	// when Key is one of the user's stored keys.
	Certificate *CertificateInfo
}

// LogValue makes an Identity a slog.LogValuer: the username, the key's
// fingerprint and algorithm, and for a certificate its key ID, serial and
// CA. It never holds the token or the claims.
func (id *Identity) LogValue() slog.Value {
	if id == nil {
		return slog.Value{}
	}
	return slog.GroupValue(id.logAttrs(nil)...)
}

func (id *Identity) logAttrs(attrs []slog.Attr) []slog.Attr {
	attrs = append(attrs, slog.String("user", id.Username), slog.String("key", id.Key.Fingerprint), slog.String("alg", string(id.Algorithm)))
	if c := id.Certificate; c != nil {
		attrs = append(attrs, slog.String("cert_key_id", truncate(c.KeyID)), slog.Uint64("cert_serial", c.Serial), slog.String("cert_ca", c.CA))
	}
	if id.Kind == AccessToken {
		attrs = append(attrs, slog.String("kind", id.Kind.String()), slog.String("iss", truncate(id.Issuer)))
	}
	return attrs
}

// Verify checks the "Authorization: JWT <token>" header of r (or, with
// [WithTrustedIssuer], "Authorization: Bearer <access token>") and returns
// the caller's identity. The error wraps exactly one of ErrNoToken,
// ErrTokenTooLarge, ErrMalformed, ErrBadHeader, ErrBadAlgorithm,
// ErrBadClaims, ErrUnknownUser, ErrBadSignature, ErrStale, ErrReplay,
// ErrBinding, ErrUnavailable, ErrKeyExpired, ErrAddressRefused, ErrRevoked,
// ErrCertUntrusted, ErrCertType, ErrCertPrincipal, ErrCertExpired and
// ErrCertOption. A successful Verify uses up the token's nonce: the same
// token verifies only once. The hooks of [WithErrorHook] and
// [WithSuccessHook] are called here, and an accepted request is logged
// ([WithLogger]).
//
// When the token binds a body ("hcd"), its Content-Digest header must match
// the claim, and Verify replaces r.Body with a reader that hashes the body
// as it passes and checks it against that header: when the body does not
// match, the Read that reaches its end returns an error wrapping
// [ErrBinding] instead of the last bytes and io.EOF, and the refusal goes
// to the logger and the error hook (after the success hook, which has
// already run). Nothing is held but, for a body of unknown length
// (chunked), the last read (up to 16 KiB), until the next shows it was not
// the end; so a handler may see the first bytes of a changed body, never a
// successful read of all of it, nor its last bytes. A handler should act on
// a body only once it was read to io.EOF (io.ReadAll does; a json.Decoder
// may stop before the end, so read on to io.EOF after it). A request without
// a body is checked at once.
func (v *Verifier) Verify(r *http.Request) (*Identity, error) {
	var want expected
	var start time.Time
	if v.metrics != nil {
		start = time.Now()
	}
	id, err := v.verifyRequest(r, &want)
	if v.metrics != nil {
		v.metrics.Verified(resultKind(err), time.Since(start))
	}
	if err != nil {
		err = withPrefix(err)
		if v.onError != nil {
			v.onError(r, err)
		}
		return nil, err
	}
	if !want.bodyDigests.empty() {
		r.Body = v.newBodyChecker(r, want.bodyDigests)
	}
	v.logAccepted(r, id)
	if v.onSuccess != nil {
		v.onSuccess(r, id)
	}
	return id, nil
}

// expected is the request a token must be bound to, as far as it is known.
type expected struct {
	method string // "" when unknown (VerifyToken)
	// r is the request, nil for VerifyToken: its htu is made when it is
	// compared, in a buffer on the stack.
	r     *http.Request
	htu   []byte // VerifyToken's target's; empty when unknown
	query string // the raw query, when queryKnown
	// queryKnown: the query is known (always for a request; with a target
	// for VerifyToken).
	queryKnown bool
	// strict: a known method, URL or body requires its claim (VerifyToken).
	strict bool

	// A request's Content-Digest lines and whether it has a body.
	digestLines []string
	hasBody     bool
	// VerifyTokenWithBody: the body, nil when not given.
	body io.Reader

	// Out: the digests the request's body must match, checked as it is
	// read.
	bodyDigests digestSet
}

func (v *Verifier) verifyRequest(r *http.Request, want *expected) (*Identity, error) {
	raw, bearer, err := v.tokenFromHeader(r.Header)
	if err != nil {
		return nil, err
	}
	if bearer {
		return v.verifyAccessToken(r.Context(), raw)
	}
	want.r = r
	want.method = r.Method
	want.query, want.queryKnown = r.URL.RawQuery, true
	want.digestLines = r.Header[contentDigestHeader]
	want.hasBody = r.Body != nil && r.Body != http.NoBody
	return v.verify(r.Context(), raw, want, v.clientAddr(r))
}

// VerifyToken verifies a token presented outside an HTTP request (from a
// file, a queue or the command line), with or without the "JWT " prefix.
// method and target (an absolute URL) are the request the token must be
// bound to: when not empty, the token must carry a matching "htm", or
// matching "htu" and "htq" (target's query, none if it has none); when
// empty, those claims are not checked ([WithRequireBinding] still requires
// them to be present). A body the token binds ("hcd") is not checked: see
// [Verifier.VerifyTokenWithBody]. The nonce is used up as in
// [Verifier.Verify]. No hook is called; [WithMetrics] metrics are reported.
// No client address is known here: a key restricted by from= and a
// certificate with source-address are refused ([ErrAddressRefused]).
func (v *Verifier) VerifyToken(ctx context.Context, tok, method, target string) (*Identity, error) {
	return v.VerifyTokenWithBody(ctx, tok, method, target, nil)
}

// VerifyTokenWithBody is [Verifier.VerifyToken] for a request with a body:
// when body is not nil, the token must carry an "hcd" claim that matches
// the digest of body, which is read to its end (streaming, nothing held) once
// the signature has verified. An empty body matches the claim of an empty
// body. A failure to read body is an error wrapping [ErrUnavailable]. With
// a nil body it is VerifyToken.
func (v *Verifier) VerifyTokenWithBody(ctx context.Context, tok, method, target string, body io.Reader) (*Identity, error) {
	var start time.Time
	if v.metrics != nil {
		start = time.Now()
	}
	id, err := v.verifyToken(ctx, tok, method, target, body)
	if v.metrics != nil {
		v.metrics.Verified(resultKind(err), time.Since(start))
	}
	if err != nil {
		return nil, withPrefix(err)
	}
	return id, nil
}

func (v *Verifier) verifyToken(ctx context.Context, tok, method, target string, body io.Reader) (*Identity, error) {
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
	want := expected{method: method, strict: true, body: body}
	if target != "" {
		htu, ok := normalizeHTU(target)
		if !ok {
			return nil, fmt.Errorf("%w: target %q is not an absolute http(s) URL", ErrBinding, truncate(target))
		}
		want.htu = []byte(htu)
		u, _ := url.Parse(target) // normalizeHTU parsed it
		want.query, want.queryKnown = u.RawQuery, true
	}
	return v.verify(ctx, tok, &want, netip.Addr{})
}

// withPrefix names the package at the start of a verification error.
func withPrefix(err error) error {
	if _, ok := err.(reasoner); ok {
		return err
	}
	return &pkgError{err}
}

// tokenFromHeader finds the token in the Authorization header, checking its
// size before anything else, and whether it is a Bearer token (taken only
// when an issuer is trusted).
func (v *Verifier) tokenFromHeader(h http.Header) (tok string, bearer bool, err error) {
	values := h["Authorization"]
	switch {
	case len(values) == 0:
		return "", false, ErrNoToken
	case len(values) > 1:
		return "", false, fmt.Errorf("%w: %d Authorization headers", ErrMalformed, len(values))
	}
	value := values[0]
	if len(value) > v.maxSize+len("Bearer ") {
		return "", false, fmt.Errorf("%w: %d bytes", ErrTokenTooLarge, len(value))
	}
	scheme, tok, _ := strings.Cut(value, " ")
	switch {
	case strings.EqualFold(scheme, "JWT"):
		if len(value) > v.maxSize+len("JWT ") {
			return "", false, fmt.Errorf("%w: %d bytes", ErrTokenTooLarge, len(value))
		}
		return trimOWS(tok), false, nil
	case v.issuers != nil && strings.EqualFold(scheme, "Bearer"):
		return trimOWS(tok), true, nil
	}
	return "", false, ErrNoToken
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

// appendRequestHTU appends the htu a token for r must carry to dst. When r's
// Host is not one of WithHosts, no htu can match: it returns nil and the Host
// that came.
func (v *Verifier) appendRequestHTU(dst []byte, r *http.Request) (htu []byte, badHost string) {
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if v.publicURL != nil {
		scheme, host = v.publicURL.Scheme, v.publicURL.Host
	} else if v.hosts != nil && !v.knownHost(scheme, host) {
		if host == "" {
			host = "(none)"
		}
		return nil, host
	}
	return appendHTU(dst, scheme, host, r.URL.EscapedPath()), ""
}

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
// algorithm from the stored key (or the certified one), signature, what the
// key's line or certificate allows (addr is the client's, invalid when
// unknown), time, binding, and last the nonce, so only signed tokens reach
// the nonce store. Its errors are not yet prefixed.
func (v *Verifier) verify(ctx context.Context, raw string, want *expected, addr netip.Addr) (*Identity, error) {
	var t token
	if err := parseToken(raw, &t); err != nil {
		return nil, err
	}
	spec := v.algorithm(t.alg)
	if spec == nil {
		return nil, fmt.Errorf("%w: %q", ErrBadAlgorithm, truncate(string(t.alg)))
	}
	now := v.now()
	key, cert, err := v.authenticate(ctx, &t, spec, addr, now)
	if err != nil {
		return nil, err
	}
	if err := v.checkTime(&t, now); err != nil {
		return nil, err
	}
	if err := v.checkAudience(&t); err != nil {
		return nil, err
	}
	if err := v.checkBinding(&t, want); err != nil {
		return nil, err
	}
	if err := v.checkBody(&t, want); err != nil {
		return nil, err
	}
	// Remember the nonce until the token can no longer pass checkTime here,
	// and as long again for the other verifiers of a fleet, whose clocks may
	// differ from this one's by up to the window.
	ttl := time.Duration((t.time-float64(now.UnixNano())/1e9)*1e9) + 2*v.maxSkew + time.Second
	var start time.Time
	if v.metrics != nil {
		start = time.Now()
	}
	err = v.nonces.Use(ctx, t.username, t.nonce, ttl)
	if v.metrics != nil {
		v.metrics.NonceStoreUse(time.Since(start), err)
	}
	if err != nil {
		if errors.Is(err, ErrReplay) {
			return nil, fmt.Errorf("%w (user %q)", ErrReplay, t.username)
		}
		return nil, errorf("%w: nonce store: %w", ErrUnavailable, err)
	}
	sec, frac := math.Modf(t.time)
	return &Identity{
		Username:    t.username,
		Key:         key,
		Algorithm:   spec.alg,
		Time:        time.Unix(int64(sec), int64(frac*1e9)),
		Nonce:       t.nonce,
		Claims:      t.claimsJSON,
		Certificate: cert,
	}, nil
}

// algorithm looks a token's "alg" up in the table (exactly, without case
// folding) and returns it if it is allowed.
func (v *Verifier) algorithm(name []byte) *algSpec {
	spec := specOf(name)
	if spec == nil || v.algs == nil {
		return spec
	}
	for _, a := range v.algs {
		if a == spec.alg {
			return spec
		}
	}
	return nil
}

// verifySignature tries the user's keys: the one the kid names, if any,
// otherwise all of them. A key is tried only with an algorithm that fits it,
// so the algorithm comes from the stored key, not from the token.
func verifySignature(ed *edverify.Cache, t *token, spec *algSpec, keys []PublicKey) (PublicKey, error) {
	candidates := keys
	if len(t.kid) > 0 {
		for i := range keys {
			if keys[i].Fingerprint == string(t.kid) {
				candidates = keys[i : i+1]
				break
			}
		}
	}
	fitted := false
	for i, k := range candidates {
		if !spec.fits(k.Key) {
			continue
		}
		fitted = true
		// The same key on several lines (with other options) is checked
		// once.
		if slices.ContainsFunc(candidates[:i], func(o PublicKey) bool { return o.Fingerprint == k.Fingerprint }) {
			continue
		}
		if spec.verify(ed, k.Key, t.signingInput, t.signature) {
			return k, nil
		}
	}
	if !fitted {
		// On the wire as a bad signature: "bad_algorithm" here, but
		// "invalid_signature" for an unknown user, would tell which
		// usernames exist.
		return PublicKey{}, wireKindError{fmt.Errorf("%w: %s fits none of the user's keys", ErrBadAlgorithm, spec.alg), "invalid_signature"}
	}
	return PublicKey{}, ErrBadSignature
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

// checkBinding compares htm, htu and htq with the request's method, htu and
// query. An unknown method, htu or query (a token checked by VerifyToken
// without them) is not checked: its claim is reported. In strict mode, a
// known one requires its claim.
func (v *Verifier) checkBinding(t *token, want *expected) error {
	if v.requireBnd && (!t.hasHTM || !t.hasHTU || !t.hasHTQ) {
		return fmt.Errorf("%w: htm, htu and htq are required", ErrBinding)
	}
	if want.method != "" && (t.hasHTM || want.strict) && string(t.htm) != want.method {
		return fmt.Errorf("%w: not bound to method %s", ErrBinding, want.method)
	}
	htu := want.htu
	if want.r != nil {
		var buf [256]byte // the usual URL fits; a longer one spills to the heap
		var badHost string
		if htu, badHost = v.appendRequestHTU(buf[:0], want.r); badHost != "" && t.hasHTU {
			return fmt.Errorf("%w: request Host %q is not one of the hosts this verifier answers to (WithHosts: %s)", ErrBinding, truncate(badHost), strings.Join(v.hosts, ", "))
		}
	}
	if len(htu) > 0 && (t.hasHTU || want.strict) && string(t.htu) != string(htu) {
		// Only a client that normalises differently needs the slow path.
		if got, ok := normalizeHTU(string(t.htu)); !ok || got != string(htu) {
			return fmt.Errorf("%w: not bound to URL %s", ErrBinding, string(htu))
		}
	}
	if want.queryKnown && (t.hasHTQ || want.strict) {
		var buf [htqLen]byte
		if string(t.htq) != string(appendHTQ(buf[:0], want.query)) {
			return fmt.Errorf("%w: not bound to this query (%d bytes)", ErrBinding, len(want.query))
		}
	}
	return nil
}

// checkBody checks the "hcd" claim: for a request, against its
// Content-Digest header (and at once against an absent body), leaving in
// want.bodyDigests what the body must match as it is read; for
// VerifyTokenWithBody, against the body given.
func (v *Verifier) checkBody(t *token, want *expected) error {
	if !t.hasHCD {
		switch {
		case v.requireBod && want.hasBody:
			return fmt.Errorf("%w: the request has a body and the token does not bind it (no hcd)", ErrBinding)
		case want.body != nil:
			return fmt.Errorf("%w: the token does not bind a body (no hcd)", ErrBinding)
		}
		return nil
	}
	if t.hcd == "" {
		return checkEmptyBody(want)
	}
	alg, sum, err := parseDigestClaim(t.hcd)
	if err != nil {
		return fmt.Errorf("%w: hcd: %w", ErrBinding, err)
	}
	name := digestAlgs[alg].name
	switch {
	case want.body != nil:
		h := digestAlgs[alg].hash.New()
		if _, err := io.Copy(h, want.body); err != nil {
			return errorf("%w: reading the body: %w", ErrUnavailable, err)
		}
		if !bytes.Equal(h.Sum(nil), sum) {
			return fmt.Errorf("%w: the body does not match the token's %s digest (hcd)", ErrBinding, name)
		}
		return nil
	case want.r == nil:
		return nil // VerifyToken: reported, not checked
	case len(want.digestLines) == 0:
		if want.hasBody {
			return fmt.Errorf("%w: the token binds the body (hcd) and there is no Content-Digest header", ErrBinding)
		}
		if !bytes.Equal(digestAlgs[alg].hash.New().Sum(nil), sum) {
			return fmt.Errorf("%w: the token binds a body (hcd) and the request has none", ErrBinding)
		}
		return nil
	}
	set, err := parseContentDigest(want.digestLines)
	if err != nil {
		return fmt.Errorf("%w: Content-Digest header: %w", ErrBinding, err)
	}
	switch got := set[alg]; {
	case got == nil:
		// Only digests this verifier does not know: ignored (RFC 9530 §5),
		// so nothing covers the body.
		return fmt.Errorf("%w: the token binds a %s digest (hcd) and the Content-Digest header has none", ErrBinding, name)
	case !bytes.Equal(got, sum):
		return fmt.Errorf("%w: the Content-Digest header does not match the token's %s digest (hcd)", ErrBinding, name)
	}
	if !want.hasBody {
		if !set.matchesEmpty() {
			return fmt.Errorf("%w: the token binds a body (hcd) and the request has none", ErrBinding)
		}
		return nil
	}
	want.bodyDigests = set
	return nil
}

// checkEmptyBody checks the request against an empty "hcd", the claim of an
// empty body: there must be none, and a Content-Digest header, if any, must
// be of no bytes.
func checkEmptyBody(want *expected) error {
	switch {
	case want.body != nil:
		var b [1]byte
		n, err := io.ReadFull(want.body, b[:])
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return errorf("%w: reading the body: %w", ErrUnavailable, err)
		}
		if n > 0 {
			return fmt.Errorf("%w: the token binds an empty body (hcd) and the body is not empty", ErrBinding)
		}
	case want.r == nil:
	case want.hasBody:
		return fmt.Errorf("%w: the token binds an empty body (hcd) and the request has a body", ErrBinding)
	case len(want.digestLines) > 0:
		set, err := parseContentDigest(want.digestLines)
		if err != nil {
			return fmt.Errorf("%w: Content-Digest header: %w", ErrBinding, err)
		}
		if !set.matchesEmpty() {
			return fmt.Errorf("%w: the token binds an empty body (hcd) and the Content-Digest header does not", ErrBinding)
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
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
