package asymjwt

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// exchange is a token endpoint and an API behind one Verifier, served on
// loopback: POST /oauth/token, GET /.well-known/jwks.json, and GET /api/*
// (200 with the caller's identity as JSON). Its clock is the real one
// moved by offset, since peers like golang.org/x/oauth2/jwt sign with
// time.Now.
type exchange struct {
	t        testing.TB
	offset   atomic.Int64
	keys     *MemoryKeyStore
	nonces   *MemoryNonceStore
	refresh  *MemoryRefreshStore
	issuer   *Issuer
	v        *Verifier
	ep       *TokenEndpoint
	srv      *httptest.Server
	tokenURL string
	log      *lockedLog
}

// lockedLog collects log output for assertions on what is logged.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newExchange(t testing.TB, epOpts []TokenEndpointOption, vOpts ...VerifierOption) *exchange {
	t.Helper()
	x := &exchange{t: t, keys: NewMemoryKeyStore(), log: &lockedLog{}}
	clock := WithClock(x.now)
	var err error
	if x.nonces, err = NewMemoryNonceStore(clock); err != nil {
		t.Fatal(err)
	}
	if x.refresh, err = NewMemoryRefreshStore(clock); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	x.srv = httptest.NewServer(mux)
	t.Cleanup(x.srv.Close)
	x.tokenURL = x.srv.URL + "/oauth/token"
	if x.issuer, err = NewIssuer(x.srv.URL, loadTestKeys(t).ed, clock); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(x.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := append([]VerifierOption{clock, WithNonceStore(x.nonces), WithTrustedIssuer(x.issuer), WithLogger(logger)}, vOpts...)
	if x.v, err = NewVerifier(x.keys, opts...); err != nil {
		t.Fatal(err)
	}
	if x.ep, err = NewTokenEndpoint(x.v, x.issuer, x.tokenURL, append([]TokenEndpointOption{WithRefreshStore(x.refresh)}, epOpts...)...); err != nil {
		t.Fatal(err)
	}
	mux.Handle("/oauth/token", x.ep)
	mux.Handle("GET /.well-known/jwks.json", x.issuer)
	mux.Handle("/api/", x.v.Middleware(http.HandlerFunc(identityHandler)))
	return x
}

func (x *exchange) now() time.Time { return time.Now().Add(time.Duration(x.offset.Load())) }

func (x *exchange) advance(d time.Duration) { x.offset.Add(int64(d)) }

// addUser gives user the public key of key.
func (x *exchange) addUser(user string, key Key) {
	x.t.Helper()
	if err := x.keys.Add(user, key.Public()); err != nil {
		x.t.Fatal(err)
	}
}

// identityHandler answers with the caller's identity.
func identityHandler(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"user": id.Username, "kind": id.Kind.String(), "issuer": id.Issuer, "scope": id.Scope,
	})
}

// tokenAnswer is a token endpoint's answer.
type tokenAnswer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (a tokenAnswer) str(name string) string {
	s, _ := a.body[name].(string)
	return s
}

// post sends form to the token endpoint.
func (x *exchange) post(form url.Values) tokenAnswer {
	x.t.Helper()
	req, err := http.NewRequest(http.MethodPost, x.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		x.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return x.do(req)
}

func (x *exchange) do(req *http.Request) tokenAnswer {
	x.t.Helper()
	resp, err := x.srv.Client().Do(req)
	if err != nil {
		x.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := tokenAnswer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		x.t.Fatalf("token endpoint answered %d with no JSON: %q", resp.StatusCode, raw)
	}
	return a
}

// grant posts a jwt-bearer grant of assertion.
func (x *exchange) grant(assertion string) tokenAnswer {
	x.t.Helper()
	return x.post(url.Values{"grant_type": {GrantTypeJWTBearer}, "assertion": {assertion}})
}

// refreshWith posts a refresh_token grant.
func (x *exchange) refreshWith(rt string) tokenAnswer {
	x.t.Helper()
	return x.post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// call sends GET /api/hello with the Authorization header auth and returns
// the status, the WWW-Authenticate values and the body.
func (x *exchange) call(auth string) (int, []string, string) {
	x.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, x.srv.URL+"/api/hello", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := x.srv.Client().Do(req)
	if err != nil {
		x.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Values("WWW-Authenticate"), string(b)
}

// wantOK checks a successful token answer (RFC 6749 §5.1).
func wantOK(t testing.TB, a tokenAnswer) {
	t.Helper()
	if a.status != http.StatusOK || a.str("access_token") == "" || a.str("token_type") != "Bearer" {
		t.Fatalf("token endpoint answered %d %s, want 200 with a Bearer token", a.status, a.raw)
	}
	checkNoStore(t, a.header)
}

// wantError checks a refusal (RFC 6749 §5.2).
func wantError(t testing.TB, a tokenAnswer, status int, code string) {
	t.Helper()
	if a.status != status || a.str("error") != code {
		t.Fatalf("token endpoint answered %d %s, want %d %s", a.status, a.raw, status, code)
	}
	if _, ok := a.body["access_token"]; ok {
		t.Fatal("a refusal carries an access token")
	}
	checkNoStore(t, a.header)
}

func checkNoStore(t testing.TB, h http.Header) {
	t.Helper()
	if h.Get("Cache-Control") != "no-store" || h.Get("Pragma") != "no-cache" || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Fatalf("headers %v: want JSON, Cache-Control: no-store, Pragma: no-cache", h)
	}
}

// jwsOf signs a compact JWS of header and claims (JSON texts) with key
// under alg, whatever they say.
func jwsOf(t testing.TB, key Key, alg Algorithm, header, claims string) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	input := enc([]byte(header)) + "." + enc([]byte(claims))
	sig, err := key.SignJWS(context.Background(), alg, []byte(input))
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + enc(sig)
}

// withSignature replaces the signature of a compact JWS.
func withSignature(tok string, sig []byte) string {
	return tok[:strings.LastIndexByte(tok, '.')+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// mustJSON encodes v.
func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
