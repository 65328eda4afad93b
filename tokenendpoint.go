package asymjwt

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/asymjwt/asymjwt/internal/jws"
)

// Grant and assertion types of RFC 7523.
const (
	// GrantTypeJWTBearer is the grant_type of the JWT bearer grant (RFC
	// 7523 §2.1): an assertion buys an access token.
	GrantTypeJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// ClientAssertionTypeJWTBearer is the client_assertion_type of
	// private_key_jwt client authentication (RFC 7523 §2.2).
	ClientAssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// Defaults of a [TokenEndpoint].
const (
	// DefaultAccessTokenLifetime is how long an access token lives.
	DefaultAccessTokenLifetime = 5 * time.Minute
	// DefaultRefreshTokenLifetime is how long a chain of refresh tokens
	// lives, from the assertion it began with; rotation does not extend
	// it.
	DefaultRefreshTokenLifetime = 24 * time.Hour
	// DefaultMaxAssertionLifetime is how far ahead an assertion's "exp"
	// may lie: an hour, what golang.org/x/oauth2/jwt sends by default.
	DefaultMaxAssertionLifetime = time.Hour
)

// maxTokenRequestSize bounds a token request's body.
const maxTokenRequestSize = 64 << 10

// TokenEndpoint is an OAuth 2.0 token endpoint (RFC 6749 §3.2) for the JWT
// bearer grant (RFC 7523): a client proves itself once with its key and
// receives a short-lived access token, which it then presents as
// "Authorization: Bearer" until it expires, and a refresh token. It is an
// http.Handler for POST requests of form parameters:
//
//   - grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer and assertion:
//     a request token of this package, or an RFC 7523 assertion as
//     golang.org/x/oauth2/jwt sends it; verified as strictly as a request
//     (see [NewTokenEndpoint]);
//   - grant_type=refresh_token and refresh_token: single use, rotated on
//     every use; a used one presented again revokes its whole chain (RFC
//     9700 §4.14.2).
//
// Answers are those of RFC 6749 §5.1 (200, JSON: access_token, token_type
// "Bearer", expires_in, refresh_token, scope) and §5.2 (400 with
// invalid_request, invalid_grant, unsupported_grant_type or invalid_scope;
// 401 invalid_client for a client authentication it does not take), with
// Cache-Control: no-store; 503 temporarily_unavailable when a store or the
// issuer's key cannot answer. Why a request was refused goes to the
// verifier's logger ([WithLogger]), never a token. A TokenEndpoint is safe
// for concurrent use by multiple goroutines.
type TokenEndpoint struct {
	verifier     *Verifier
	issuer       *Issuer
	tokenURL     string
	tokenHTU     string
	refresh      RefreshStore
	accessTTL    time.Duration
	refreshTTL   time.Duration
	maxAssertion time.Duration
	audience     string
	scopePolicy  func(ctx context.Context, username, scope string) (string, error)
}

// WithAccessTokenLifetime sets how long the access tokens live; the
// default is [DefaultAccessTokenLifetime], 5 minutes. A stolen access
// token is usable that long: keep it short. d must be at least a second
// and at most a day.
func WithAccessTokenLifetime(d time.Duration) TokenEndpointOption {
	return tokenEndpointOptionFunc(func(e *TokenEndpoint) error {
		if d < time.Second || d > 24*time.Hour {
			return optionError("WithAccessTokenLifetime", fmt.Sprintf("%v is not between 1s and 24h", d))
		}
		e.accessTTL = d
		return nil
	})
}

// WithRefreshTokenLifetime sets how long a chain of refresh tokens lives
// from the assertion it began with; the default is
// [DefaultRefreshTokenLifetime], a day. d must be at least a minute.
func WithRefreshTokenLifetime(d time.Duration) TokenEndpointOption {
	return tokenEndpointOptionFunc(func(e *TokenEndpoint) error {
		if d < time.Minute {
			return optionError("WithRefreshTokenLifetime", fmt.Sprintf("%v is shorter than a minute", d))
		}
		e.refreshTTL = d
		return nil
	})
}

// WithMaxAssertionLifetime sets how far ahead an RFC 7523 assertion's
// "exp" may lie (beyond the verifier's skew); the default is
// [DefaultMaxAssertionLifetime], an hour. The assertion is remembered
// until it expires, so a shorter bound keeps the nonce store smaller. d
// must be positive.
func WithMaxAssertionLifetime(d time.Duration) TokenEndpointOption {
	return tokenEndpointOptionFunc(func(e *TokenEndpoint) error {
		if d <= 0 {
			return optionError("WithMaxAssertionLifetime", fmt.Sprintf("%v is not positive", d))
		}
		e.maxAssertion = d
		return nil
	})
}

// WithAccessTokenAudience puts "aud": aud in every access token. A
// [Verifier] accepts such tokens only when told to expect aud
// ([WithAudience]). Without this option access tokens carry no "aud". aud
// must not be empty.
func WithAccessTokenAudience(aud string) TokenEndpointOption {
	return tokenEndpointOptionFunc(func(e *TokenEndpoint) error {
		if aud == "" {
			return optionError("WithAccessTokenAudience", "empty audience")
		}
		e.audience = aud
		return nil
	})
}

// WithRefreshStore sets where refresh tokens are kept. The default is a
// [MemoryRefreshStore] of the endpoint's own, on the verifier's clock; a
// fleet of endpoints shares one (package redisnonce). s must not be nil.
func WithRefreshStore(s RefreshStore) TokenEndpointOption {
	return tokenEndpointOptionFunc(func(e *TokenEndpoint) error {
		if s == nil {
			return optionError("WithRefreshStore", "nil store")
		}
		e.refresh = s
		return nil
	})
}

// WithScopePolicy decides the scope an assertion buys: f gets the
// verified username and the scope asked for (the "scope" parameter, else
// the assertion's "scope" claim; space-separated, possibly empty) and
// returns the scope to grant, or an error to refuse with invalid_scope (an
// error wrapping [ErrUnavailable] answers 503 instead). Without it the
// scope asked for is granted as it is: the client chose it, so it proves
// nothing, and a service that authorises by scope needs a policy. f must
// not be nil.
func WithScopePolicy(f func(ctx context.Context, username, scope string) (string, error)) TokenEndpointOption {
	return tokenEndpointOptionFunc(func(e *TokenEndpoint) error {
		if f == nil {
			return optionError("WithScopePolicy", "nil function")
		}
		e.scopePolicy = f
		return nil
	})
}

// NewTokenEndpoint returns the token endpoint at tokenURL (its absolute
// URL as clients post to it, such as "https://auth.example.com/oauth/token")
// that issues access tokens as issuer.
//
// Assertions are checked by v, with its KeyStore, NonceStore, clock, skew,
// algorithms and logger: the key and algorithm come from the user's stored
// keys, never from the assertion. A request token of this package is
// checked as a request is (bound, when it carries htm and htu, to a POST
// to tokenURL). An RFC 7523 assertion names the user in "sub", or in "iss"
// when it has no "sub" (both, differing, are refused: no delegation); its
// "aud" must name tokenURL or the issuer identifier; its "exp" must lie in
// the future and at most the maximum lifetime ahead
// ([WithMaxAssertionLifetime]); an "iat" or "nbf" must not lie in the
// future (each beyond the verifier's skew). It is accepted once: its "jti",
// else its "nonce", else the hash of what it signs, is recorded in the
// nonce store until it expires, and only after its signature verified.
// "prn" and unknown claims are ignored; "scope" is passed on.
//
// A [Verifier] accepts the access tokens when told to trust the issuer
// ([WithTrustedIssuer]); v may be that Verifier.
func NewTokenEndpoint(v *Verifier, issuer *Issuer, tokenURL string, opts ...TokenEndpointOption) (*TokenEndpoint, error) {
	if v == nil || issuer == nil {
		return nil, errorf("NewTokenEndpoint: nil Verifier or Issuer")
	}
	htu, ok := normalizeHTU(tokenURL)
	if u, err := url.Parse(tokenURL); !ok || err != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errorf("NewTokenEndpoint: %w: token URL %q is not an absolute http(s) URL without query", ErrInvalidOption, truncate(tokenURL))
	}
	e := &TokenEndpoint{
		verifier:     v,
		issuer:       issuer,
		tokenURL:     tokenURL,
		tokenHTU:     htu,
		accessTTL:    DefaultAccessTokenLifetime,
		refreshTTL:   DefaultRefreshTokenLifetime,
		maxAssertion: DefaultMaxAssertionLifetime,
	}
	for _, opt := range opts {
		if err := opt.applyTokenEndpoint(e); err != nil {
			return nil, err
		}
	}
	if e.refresh == nil {
		s, err := NewMemoryRefreshStore(WithClock(v.now))
		if err != nil {
			return nil, err
		}
		e.refresh = s
	}
	return e, nil
}

// TokenURL returns the endpoint's URL.
func (e *TokenEndpoint) TokenURL() string { return e.tokenURL }

// tokenResponse is a successful answer, RFC 6749 §5.1.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// endpointError is a refusal: err wraps the sentinels (for the log and
// errors.Is), desc is the error_description, safe to send.
type endpointError struct {
	err  error
	desc string
}

func (e *endpointError) Error() string { return e.err.Error() }
func (e *endpointError) Unwrap() error { return e.err }

func refusal(desc string, format string, args ...any) error {
	return &endpointError{fmt.Errorf(format, args...), desc}
}

// ServeHTTP answers one token request.
func (e *TokenEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	grantType, resp, err := e.serve(w, r)
	if err != nil {
		e.refuse(w, r, grantType, err)
		return
	}
	body, _ := json.Marshal(resp)
	writeTokenJSON(w, http.StatusOK, body)
}

func (e *TokenEndpoint) serve(w http.ResponseWriter, r *http.Request) (grantType string, _ *tokenResponse, _ error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return "", nil, refusal("use POST", "%w: method %s", ErrInvalidRequest, truncate(r.Method))
	}
	if r.URL.RawQuery != "" {
		return "", nil, refusal("parameters go in the body, not the URL", "%w: query in the URL", ErrInvalidRequest)
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, _, _ := strings.Cut(auth, " ")
		if len(scheme) > 32 || strings.ContainsAny(scheme, "\",") {
			scheme = "Basic"
		}
		w.Header().Set("WWW-Authenticate", scheme+` realm="token"`)
		return "", nil, refusal("no client authentication is taken: the assertion authenticates", "%w: Authorization header (%s)", ErrInvalidClient, scheme)
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return "", nil, refusal("send application/x-www-form-urlencoded", "%w: content type %q", ErrInvalidRequest, truncate(r.Header.Get("Content-Type")))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTokenRequestSize))
	if err != nil {
		return "", nil, refusal("request body unreadable or too large", "%w: body: %v", ErrInvalidRequest, err)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return "", nil, refusal("body is not a form", "%w: body is not a form", ErrInvalidRequest)
	}
	for name, values := range form {
		if len(values) > 1 {
			return "", nil, refusal("a parameter is given twice", "%w: parameter %q given twice", ErrInvalidRequest, truncate(name))
		}
	}
	for _, name := range [...]string{"client_secret", "client_assertion", "client_assertion_type"} {
		if _, ok := form[name]; ok {
			return "", nil, refusal("no client authentication is taken: the assertion authenticates", "%w: %s", ErrInvalidClient, name)
		}
	}
	grantType = form.Get("grant_type")
	addr := e.verifier.clientAddr(r)
	switch grantType {
	case GrantTypeJWTBearer:
		resp, err := e.assertionGrant(r.Context(), form, addr)
		return grantType, resp, err
	case "refresh_token":
		resp, err := e.refreshGrant(r.Context(), form, addr)
		return grantType, resp, err
	case "":
		return "", nil, refusal("no grant_type", "%w: no grant_type", ErrInvalidRequest)
	}
	return truncate(grantType), nil, refusal("grant types: "+GrantTypeJWTBearer+", refresh_token", "%w: %q", ErrUnsupportedGrantType, truncate(grantType))
}

// assertionGrant serves the JWT bearer grant, asked for from addr.
func (e *TokenEndpoint) assertionGrant(ctx context.Context, form url.Values, addr netip.Addr) (*tokenResponse, error) {
	assertion := form.Get("assertion")
	if assertion == "" {
		return nil, refusal("no assertion", "%w: no assertion", ErrInvalidRequest)
	}
	scope, hasScope := form.Get("scope"), form.Has("scope")
	if !validScope(scope) {
		return nil, refusal("scope is not valid", "%w: scope parameter is not valid", ErrInvalidScope)
	}
	g, err := e.verifyAssertion(ctx, assertion, addr)
	if errors.Is(err, ErrUnavailable) {
		return nil, err
	}
	if err != nil {
		return nil, refusal("assertion refused: "+ErrorKind(err), "%w: assertion: %w", ErrInvalidGrant, err)
	}
	switch {
	case hasScope && g.scope != "" && g.scope != scope:
		return nil, refusal("scope parameter and assertion disagree", "%w: scope parameter and assertion disagree", ErrInvalidScope)
	case !hasScope:
		scope = g.scope
	}
	if e.scopePolicy != nil {
		granted, err := e.scopePolicy(ctx, g.username, scope)
		if errors.Is(err, ErrUnavailable) {
			return nil, errorf("scope policy: %w", err)
		}
		if err == nil && !validScope(granted) {
			err = errors.New("policy granted a scope that is not valid")
		}
		if err != nil {
			return nil, refusal("scope refused", "%w: scope policy for %q: %w", ErrInvalidScope, g.username, err)
		}
		scope = granted
	}
	return e.issue(ctx, g.username, g.keyID, g.cert, scope, nil)
}

// refreshTokenLen is the length of a refresh token: the chain (16 bytes)
// and the secret (32 bytes), base64url, joined by a dot.
const refreshTokenLen = 22 + 1 + 43

// refreshGrant serves the refresh token grant, asked for from addr.
func (e *TokenEndpoint) refreshGrant(ctx context.Context, form url.Values, addr netip.Addr) (*tokenResponse, error) {
	rt := form.Get("refresh_token")
	if rt == "" {
		return nil, refusal("no refresh_token", "%w: no refresh_token", ErrInvalidRequest)
	}
	scope, hasScope := form.Get("scope"), form.Has("scope")
	if !validScope(scope) {
		return nil, refusal("scope is not valid", "%w: scope parameter is not valid", ErrInvalidScope)
	}
	chain, _, _ := strings.Cut(rt, ".")
	if len(rt) != refreshTokenLen || len(chain) != 22 {
		return nil, refusal("refresh token not valid", "%w: not a refresh token of this endpoint", ErrInvalidGrant)
	}
	next := newRefreshToken(chain)
	grant, err := e.refresh.Rotate(ctx, chain, sha256.Sum256([]byte(rt)), sha256.Sum256([]byte(next)))
	switch {
	case errors.Is(err, ErrRefreshReused):
		return nil, refusal("refresh token reused: its chain is revoked", "refresh store: %w", err)
	case errors.Is(err, ErrInvalidGrant):
		return nil, refusal("refresh token not valid", "refresh store: %w", err)
	case err != nil:
		return nil, unavailable("refresh store", err)
	}
	revoke := func(why string) error {
		if err := e.refresh.Revoke(ctx, chain); err != nil {
			return unavailable("refresh store", err)
		}
		return refusal("refresh token not valid", "%w: %s; chain revoked", ErrInvalidGrant, why)
	}
	if id := form.Get("client_id"); form.Has("client_id") && id != grant.Username {
		return nil, revoke(fmt.Sprintf("token of user %q presented by client %q", grant.Username, truncate(id)))
	}
	if !e.verifier.now().Before(grant.Expires) {
		return nil, refusal("refresh token not valid", "%w: refresh token expired", ErrInvalidGrant)
	}
	// The chain lasts only as long as the key that began it would still
	// let its user in: stored, its options allowing now and addr, not
	// revoked.
	keys, err := e.verifier.keys.PublicKeys(ctx, grant.Username)
	if err != nil {
		return nil, unavailable("key store", err)
	}
	if why, err := e.keyStillAllows(keys, grant, addr); err != nil {
		return nil, unavailable("revocation list", err)
	} else if why != "" {
		return nil, revoke(why)
	}
	switch {
	case !hasScope:
		scope = grant.Scope
	case !subScope(scope, grant.Scope):
		return nil, refusal("scope wider than the refresh token's", "%w: scope wider than the refresh token's", ErrInvalidScope)
	}
	return e.issue(ctx, grant.Username, grant.KeyID, nil, scope, &next)
}

// unavailable reports a store that could not answer: 503, fail closed.
func unavailable(what string, err error) error {
	if errors.Is(err, ErrUnavailable) {
		return errorf("%s: %w", what, err)
	}
	return errorf("%w: %s: %w", ErrUnavailable, what, err)
}

// keyStillAllows tells why the key that began a chain no longer lets its
// user in ("" when it does), as authenticating a request would: the user
// no longer has it, its expiry-time or from= refuse, or it is revoked. An
// error means the revocation list could not be read.
func (e *TokenEndpoint) keyStillAllows(keys []PublicKey, grant RefreshGrant, addr netip.Addr) (string, error) {
	var why error
	for _, k := range keys {
		if k.Fingerprint != grant.KeyID {
			continue
		}
		if why = k.Restrictions.check(e.verifier.now(), addr); why != nil {
			continue // another line of the same key may allow it
		}
		if err := e.verifier.checkKeyRevoked(k.Fingerprint, k.Key); err != nil {
			if errors.Is(err, ErrUnavailable) {
				return "", err
			}
			return fmt.Sprintf("key %s of user %q: %v", k.Fingerprint, grant.Username, err), nil
		}
		return "", nil
	}
	if why != nil {
		return fmt.Sprintf("key %s of user %q: %v", grant.KeyID, grant.Username, why), nil
	}
	return fmt.Sprintf("user %q no longer has key %s", grant.Username, grant.KeyID), nil
}

// subScope reports whether every scope token of s is one of of's.
func subScope(s, of string) bool {
	have := strings.Fields(of)
	for _, tok := range strings.Fields(s) {
		found := false
		for _, h := range have {
			found = found || h == tok
		}
		if !found {
			return false
		}
	}
	return true
}

// newRefreshToken returns a refresh token of chain: the chain, a dot and
// 256 random bits, base64url.
func newRefreshToken(chain string) string {
	var secret [32]byte
	rand.Read(secret[:])
	b := make([]byte, 0, refreshTokenLen)
	b = append(b, chain...)
	b = append(b, '.')
	return string(jws.AppendSegment(b, secret[:]))
}

// issue signs an access token for username and, for a new grant (next is
// nil), begins a refresh token chain; for a refresh, next is the token that
// replaces the one used. A grant through a certificate (cert) gets no
// refresh token, since a refresh could not check the certificate again,
// and an access token that ends with the certificate at the latest.
func (e *TokenEndpoint) issue(ctx context.Context, username, keyID string, cert *CertificateInfo, scope string, next *string) (*tokenResponse, error) {
	now := e.verifier.now()
	exp := now.Add(e.accessTTL)
	if cert != nil && !cert.ValidBefore.IsZero() && cert.ValidBefore.Before(exp) {
		exp = cert.ValidBefore
	}
	at, err := e.issuer.sign(ctx, accessTokenClaims(e.issuer.Issuer(), username, e.audience, scope, now, exp), exp)
	if err != nil {
		return nil, unavailable("signing access token", err)
	}
	resp := &tokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(exp.Sub(now) / time.Second), Scope: scope}
	if next != nil {
		resp.RefreshToken = *next
		return resp, nil
	}
	if cert != nil {
		return resp, nil
	}
	var chain [16]byte
	rand.Read(chain[:])
	rt := newRefreshToken(string(jws.AppendSegment(nil, chain[:])))
	grant := RefreshGrant{
		Chain:    rt[:22],
		Username: username,
		Scope:    scope,
		KeyID:    keyID,
		Expires:  now.Add(e.refreshTTL),
	}
	if err := e.refresh.Create(ctx, grant, sha256.Sum256([]byte(rt)), e.refreshTTL); err != nil {
		return nil, unavailable("refresh store", err)
	}
	resp.RefreshToken = rt
	return resp, nil
}

// refuse answers a refused token request as RFC 6749 §5.2 says.
func (e *TokenEndpoint) refuse(w http.ResponseWriter, r *http.Request, grantType string, err error) {
	code, status, desc := "invalid_request", http.StatusBadRequest, ""
	var ee *endpointError
	if errors.As(err, &ee) {
		desc = ee.desc
	}
	level := slog.LevelInfo
	switch {
	case errors.Is(err, ErrUnavailable):
		code, status, desc, level = "temporarily_unavailable", http.StatusServiceUnavailable, "cannot issue tokens now", slog.LevelWarn
		w.Header().Set("Retry-After", "1")
	case errors.Is(err, ErrInvalidClient):
		code, status = "invalid_client", http.StatusUnauthorized
	case errors.Is(err, ErrUnsupportedGrantType):
		code = "unsupported_grant_type"
	case errors.Is(err, ErrInvalidScope):
		code = "invalid_scope"
	case errors.Is(err, ErrInvalidGrant):
		code = "invalid_grant"
	}
	if r.Method != http.MethodPost && errors.Is(err, ErrInvalidRequest) {
		status = http.StatusMethodNotAllowed
	}
	if logger := e.verifier.logger; logger != nil {
		logger.LogAttrs(r.Context(), level, "asymjwt: token request refused",
			slog.String("error", code), slog.String("grant_type", grantType), slog.String("reason", reasonOf(err)))
	}
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, desc})
	writeTokenJSON(w, status, body)
}

// writeTokenJSON writes a token endpoint's answer, never to be cached (RFC
// 6749 §5.1).
func writeTokenJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
