package asymjwt_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt"
	"github.com/asymjwt/asymjwt/verifytest"
	"github.com/golang-jwt/jwt/v5"
	"github.com/hashicorp/go-retryablehttp"
)

// bindingLab is a real client, a tampering reverse proxy and a real
// verifying server, all on loopback:
//
//	asymjwt client -> proxy (tamper) -> Verifier.Middleware -> handler
//
// The handler reads the whole body and answers 200, or 401 with
// "WWW-Authenticate: JWT error=binding" when the body's Read fails with
// ErrBinding, as a handler should.
type bindingLab struct {
	client   *http.Client
	proxyURL string
	kp       *verifytest.KeyPair

	mu      sync.Mutex
	tamper  func(*http.Request)
	reached []string // bodies the handler read whole
	readErr []error  // the handler's read errors
	refused []error  // the error hook's refusals
}

func newBindingLab(t *testing.T, signerOpts []asymjwt.SignerOption, verifierOpts ...asymjwt.VerifierOption) *bindingLab {
	t.Helper()
	lab := &bindingLab{kp: verifytest.GenerateKey(t, verifytest.Ed25519)}
	proxy := httptest.NewUnstartedServer(nil)
	keys := asymjwt.NewMemoryKeyStore()
	if err := keys.Add("svc", lab.kp.Public); err != nil {
		t.Fatal(err)
	}
	v, err := asymjwt.NewVerifier(keys, append([]asymjwt.VerifierOption{
		// Clients name the proxy, which passes their Host on.
		asymjwt.WithHosts(proxy.Listener.Addr().String()),
		asymjwt.WithErrorHook(func(_ *http.Request, err error) {
			lab.mu.Lock()
			lab.refused = append(lab.refused, err)
			lab.mu.Unlock()
		}),
	}, verifierOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	upstream := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		lab.mu.Lock()
		defer lab.mu.Unlock()
		if err != nil {
			lab.readErr = append(lab.readErr, err)
			if errors.Is(err, asymjwt.ErrBinding) {
				w.Header().Set("WWW-Authenticate", `JWT error="binding"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		lab.reached = append(lab.reached, string(body))
	})))
	t.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)
	proxy.Config.Handler = &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host
		lab.mu.Lock()
		tamper := lab.tamper
		lab.mu.Unlock()
		if tamper != nil {
			tamper(pr.Out)
		}
	}}
	proxy.Start()
	t.Cleanup(proxy.Close)
	lab.proxyURL = proxy.URL
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	lab.client = asymjwt.NewClient(&asymjwt.Transport{Signer: lab.kp.Signer(t, "svc", signerOpts...), Base: base})
	return lab
}

// send sends one request through the proxy, tampered with by tamper.
func (lab *bindingLab) send(t *testing.T, method, pathAndQuery string, body []byte, tamper func(*http.Request)) (status int, kind string) {
	t.Helper()
	lab.mu.Lock()
	lab.tamper, lab.reached, lab.readErr, lab.refused = tamper, nil, nil, nil
	lab.mu.Unlock()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, lab.proxyURL+pathAndQuery, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := lab.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err := asymjwt.CheckResponse(resp); err != nil {
		var re *asymjwt.RefusedError
		errors.As(err, &re)
		return resp.StatusCode, re.Kind
	}
	return resp.StatusCode, ""
}

// setBody replaces an outgoing request's body.
func setBody(r *http.Request, b string) {
	r.Body = http.NoBody
	if b != "" {
		r.Body = io.NopCloser(strings.NewReader(b))
	}
	r.ContentLength = int64(len(b))
	r.Header.Del("Content-Length")
}

func digestOf(b string) string {
	d, _ := asymjwt.ContentDigest(strings.NewReader(b))
	return d
}

func TestTamperingProxy(t *testing.T) {
	const payload = `{"to":"bob","amount":1}`
	lab := newBindingLab(t, nil)
	tests := []struct {
		name   string
		method string
		path   string
		body   string // "" for none
		tamper func(*http.Request)
		// want: "ok" (the handler read the body the client sent),
		// "refused" (401 binding before the handler), "read error" (the
		// handler's Read failed with ErrBinding, it never read the body
		// whole).
		want string
	}{
		{"untouched POST", "POST", "/pay?currency=EUR", payload, nil, "ok"},
		{"untouched GET", "GET", "/report?page=2&sort=date", "", nil, "ok"},
		{"body changed, same length", "POST", "/pay", payload, func(r *http.Request) {
			setBody(r, strings.Replace(payload, `"amount":1`, `"amount":9`, 1))
		}, "read error"},
		{"body changed, longer", "POST", "/pay", payload, func(r *http.Request) {
			setBody(r, strings.Replace(payload, `"amount":1`, `"amount":1000`, 1))
		}, "read error"},
		{"body changed, shorter", "POST", "/pay", payload, func(r *http.Request) {
			setBody(r, `{"to":"eve"}`)
		}, "read error"},
		{"body changed, chunked", "POST", "/pay", payload, func(r *http.Request) {
			setBody(r, strings.Replace(payload, "bob", "eve", 1))
			r.ContentLength = -1
		}, "read error"},
		{"body and Content-Digest changed", "POST", "/pay", payload, func(r *http.Request) {
			b := strings.Replace(payload, "bob", "eve", 1)
			setBody(r, b)
			r.Header.Set("Content-Digest", digestOf(b))
		}, "refused"},
		{"body emptied", "POST", "/pay", payload, func(r *http.Request) { setBody(r, "") }, "refused"},
		{"body added to a GET", "GET", "/report", "", func(r *http.Request) {
			setBody(r, payload)
			r.Header.Set("Content-Digest", digestOf(payload))
		}, "refused"},
		{"Content-Digest removed", "POST", "/pay", payload, func(r *http.Request) { r.Header.Del("Content-Digest") }, "refused"},
		{"Content-Digest altered", "POST", "/pay", payload, func(r *http.Request) {
			r.Header.Set("Content-Digest", digestOf(payload+" "))
		}, "refused"},
		{"Content-Digest replaced by an unknown algorithm", "POST", "/pay", payload, func(r *http.Request) {
			r.Header.Set("Content-Digest", "md5=:XrY7u+Ae7tCTyyK7j1rNww==:")
		}, "refused"},
		{"Content-Digest malformed", "POST", "/pay", payload, func(r *http.Request) {
			r.Header.Set("Content-Digest", "sha-256=nope")
		}, "refused"},
		{"Content-Digest with a matching sha-512 added", "POST", "/pay", payload, func(r *http.Request) {
			r.Header.Add("Content-Digest", "sha-512=:"+sha512B64(payload)+":")
		}, "ok"},
		{"Content-Digest with a wrong sha-512 added", "POST", "/pay", payload, func(r *http.Request) {
			r.Header.Add("Content-Digest", "sha-512=:"+sha512B64("other")+":")
		}, "read error"},
		{"query changed", "POST", "/pay?amount=1", payload, func(r *http.Request) { r.URL.RawQuery = "amount=1000" }, "refused"},
		{"query added", "GET", "/report", "", func(r *http.Request) { r.URL.RawQuery = "all=true" }, "refused"},
		{"query removed", "GET", "/report?mine=true", "", func(r *http.Request) { r.URL.RawQuery = "" }, "refused"},
		{"query reordered", "GET", "/report?a=1&b=2", "", func(r *http.Request) { r.URL.RawQuery = "b=2&a=1" }, "refused"},
		{"query parameter repeated", "GET", "/report?a=1", "", func(r *http.Request) { r.URL.RawQuery = "a=1&a=2" }, "refused"},
		{"query plus turned into %20", "GET", "/search?q=a+b", "", func(r *http.Request) { r.URL.RawQuery = "q=a%20b" }, "refused"},
		{"query re-encoded alike: accepted", "GET", "/search?q=%7euser%2fx&n=caf%c3%a9", "", func(r *http.Request) {
			r.URL.RawQuery = "q=~user%2Fx&n=caf%C3%A9"
		}, "ok"},
		{"path changed", "GET", "/report", "", func(r *http.Request) { r.URL.Path = "/admin" }, "refused"},
		{"method changed", "POST", "/pay", payload, func(r *http.Request) { r.Method = "PUT" }, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			status, kind := lab.send(t, tt.method, tt.path, body, tt.tamper)
			lab.mu.Lock()
			defer lab.mu.Unlock()
			switch tt.want {
			case "ok":
				if status != 200 || len(lab.reached) != 1 || lab.reached[0] != tt.body || len(lab.refused) != 0 {
					t.Fatalf("status %d, handler read %q, refusals %v", status, lab.reached, lab.refused)
				}
			case "refused":
				if status != 401 || kind != "binding" || len(lab.reached) != 0 || len(lab.readErr) != 0 {
					t.Fatalf("status %d (%s), handler read %q (errors %v)", status, kind, lab.reached, lab.readErr)
				}
			case "read error":
				if status != 401 || kind != "binding" || len(lab.reached) != 0 ||
					len(lab.readErr) != 1 || !errors.Is(lab.readErr[0], asymjwt.ErrBinding) {
					t.Fatalf("status %d (%s), handler read %q (errors %v)", status, kind, lab.reached, lab.readErr)
				}
			}
			if tt.want != "ok" && (len(lab.refused) != 1 || !errors.Is(lab.refused[0], asymjwt.ErrBinding)) {
				t.Fatalf("error hook saw %v, want one binding refusal", lab.refused)
			}
		})
	}
}

func sha512B64(s string) string {
	sum := sha512.Sum512([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// TestTamperingProxyWithoutBodyBinding: a client that does not bind bodies
// is refused where the server requires it, and its query stays bound.
func TestTamperingProxyWithoutBodyBinding(t *testing.T) {
	lab := newBindingLab(t, []asymjwt.SignerOption{asymjwt.WithoutBodyBinding()}, asymjwt.WithRequireBodyBinding())
	if status, kind := lab.send(t, "POST", "/pay", []byte("x"), nil); status != 401 || kind != "binding" {
		t.Fatalf("unbound body: %d %s", status, kind)
	}
	if status, _ := lab.send(t, "GET", "/report?a=1", nil, nil); status != 200 {
		t.Fatalf("GET without a body: %d", status)
	}
	if status, kind := lab.send(t, "GET", "/report?a=1", nil, func(r *http.Request) { r.URL.RawQuery = "a=2" }); status != 401 || kind != "binding" {
		t.Fatalf("query changed: %d %s", status, kind)
	}
}

// claimsOf decodes a token's claims without verifying it.
func claimsOf(t *testing.T, auth string) map[string]any {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(auth, "JWT "), ".")
	if len(parts) != 3 {
		t.Fatalf("not a token: %.20q", auth)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// attemptRecorder answers with the statuses it is given in turn (then 200)
// and records, for each verified attempt, its token's nonce and hcd, its
// Content-Digest header and the body it read.
type attemptRecorder struct {
	mu       sync.Mutex
	statuses []int
	attempts []attempt
}

type attempt struct{ nonce, hcd, digest, body string }

func (h *attemptRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, _ := asymjwt.IdentityFrom(r.Context())
	var c struct{ Hcd string }
	json.Unmarshal(id.Claims, &c)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attempts = append(h.attempts, attempt{id.Nonce, c.Hcd, r.Header.Get("Content-Digest"), string(body)})
	status := http.StatusOK
	if len(h.statuses) > 0 {
		status, h.statuses = h.statuses[0], h.statuses[1:]
	}
	w.WriteHeader(status)
}

// TestRetriesBindTheBodyEveryAttempt: go-retryablehttp above the
// Transport; every attempt carries a new token and the body's digest, for
// every kind of body retryablehttp takes (its io.ReadSeeker case hands out
// one reader, rewound, as both the body and GetBody's copy).
func TestRetriesBindTheBodyEveryAttempt(t *testing.T) {
	const payload = `{"job":42,"retry":"me"}`
	kp := verifytest.GenerateKey(t, verifytest.Ed25519)
	bodies := map[string]func() any{
		"[]byte":          func() any { return []byte(payload) },
		"*bytes.Reader":   func() any { return bytes.NewReader([]byte(payload)) },
		"*strings.Reader": func() any { return strings.NewReader(payload) },
		"io.Reader":       func() any { return io.MultiReader(strings.NewReader(payload)) },
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			rec := &attemptRecorder{statuses: []int{503, 502}}
			srv := verifytest.NewServer(verifytest.WithHandler(rec), verifytest.WithRequireBodyBinding())
			defer srv.Close()
			srv.AddKey("svc", kp.Public)
			rc := asymjwt.NewRetryClient(&asymjwt.Transport{Signer: kp.Signer(t, "svc"), Base: srv.Transport()})
			rc.RetryWaitMin, rc.RetryWaitMax = time.Millisecond, 5*time.Millisecond
			req, err := retryablehttp.NewRequest("POST", srv.URL+"/jobs?q=1", body())
			if err != nil {
				t.Fatal(err)
			}
			resp, err := rc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || len(rec.attempts) != 3 {
				t.Fatalf("status %d after %d attempts", resp.StatusCode, len(rec.attempts))
			}
			want := digestOf(payload)
			seen := map[string]bool{}
			for i, a := range rec.attempts {
				if seen[a.nonce] {
					t.Fatalf("attempt %d reused a nonce", i)
				}
				seen[a.nonce] = true
				if a.body != payload || a.digest != want || a.hcd != want {
					t.Fatalf("attempt %d: body %q, Content-Digest %q, hcd %q; want %q", i, a.body, a.digest, a.hcd, want)
				}
			}
		})
	}
}

// TestRedirect307RebindsTheBody: the http.Client re-sends the body on a 307
// and the Transport signs and hashes the hop afresh; the verifying server
// checks both hops.
func TestRedirect307RebindsTheBody(t *testing.T) {
	const payload = `{"order":42}`
	kp := verifytest.GenerateKey(t, verifytest.Ed25519)
	rec := &attemptRecorder{}
	srv := verifytest.NewServer(verifytest.WithRequireBodyBinding(), verifytest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			rec.ServeHTTP(httptest.NewRecorder(), r)
			http.Redirect(w, r, "/new?moved=1", http.StatusTemporaryRedirect)
			return
		}
		rec.ServeHTTP(w, r)
	})))
	defer srv.Close()
	srv.AddKey("svc", kp.Public)
	client := asymjwt.NewClient(&asymjwt.Transport{Signer: kp.Signer(t, "svc"), Base: srv.Transport()})
	resp, err := client.Post(srv.URL+"/old", "application/json", strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(rec.attempts) != 2 {
		t.Fatalf("status %d, %d hops verified (%+v)", resp.StatusCode, len(rec.attempts), srv.Requests())
	}
	if rec.attempts[0].nonce == rec.attempts[1].nonce {
		t.Fatal("one token for both hops")
	}
	for i, a := range rec.attempts {
		if a.body != payload || a.digest != digestOf(payload) || a.hcd != a.digest {
			t.Fatalf("hop %d: %+v", i, a)
		}
	}
}

// patternBody is a large body made on the fly, never held whole: a
// repeating 64 KiB block.
type patternBody struct {
	block []byte
	left  int64
	off   int
}

func newPatternBody(size int64) *patternBody {
	block := make([]byte, 64<<10)
	for i := range block {
		block[i] = byte(i*31 + i>>8)
	}
	return &patternBody{block: block, left: size}
}

func (p *patternBody) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n := copy(b, p.block[p.off:])
	p.off = (p.off + n) % len(p.block)
	p.left -= int64(n)
	return n, nil
}

// TestLargeStreamedBodyMemoryStaysFlat sends a 64 MiB body that has a
// GetBody but is never held in memory, through the Transport to a verifying
// server whose handler streams it; the heap must not grow with the body.
func TestLargeStreamedBodyMemoryStaysFlat(t *testing.T) {
	const size = 64 << 20
	kp := verifytest.GenerateKey(t, verifytest.Ed25519)
	var got atomic.Int64
	var sum [sha256.Size]byte
	keys := asymjwt.NewMemoryKeyStore()
	if err := keys.Add("svc", kp.Public); err != nil {
		t.Fatal(err)
	}
	v, err := asymjwt.NewVerifier(keys, asymjwt.WithRequireBodyBinding())
	if err != nil {
		t.Fatal(err)
	}
	// A handler of our own that streams (verifytest's server keeps bodies).
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hash := sha256.New()
		n, err := io.Copy(hash, r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		got.Store(n)
		hash.Sum(sum[:0])
	})
	server := httptest.NewServer(v.Middleware(h))
	defer server.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	client := asymjwt.NewClient(&asymjwt.Transport{Signer: kp.Signer(t, "svc"), Base: base})

	req, err := http.NewRequest("PUT", server.URL+"/blob", newPatternBody(size))
	if err != nil {
		t.Fatal(err)
	}
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(newPatternBody(size)), nil }
	req.ContentLength = -1 // unknown to the caller: the Transport learns it while hashing

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	resp, err := client.Do(req)
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || got.Load() != size {
		t.Fatalf("status %d, server read %d bytes", resp.StatusCode, got.Load())
	}
	want := sha256.New()
	io.Copy(want, newPatternBody(size))
	if !bytes.Equal(want.Sum(nil), sum[:]) {
		t.Fatal("the server read other bytes")
	}
	growth := int64(peak.Load()) - int64(before.HeapAlloc)
	t.Logf("heap: %d KiB before, peak %d KiB during a %d MiB request (growth %d KiB)", before.HeapAlloc>>10, peak.Load()>>10, size>>20, growth>>10)
	if growth > 8<<20 {
		t.Fatalf("heap grew by %d MiB while sending %d MiB", growth>>20, size>>20)
	}
}

// TestBoundTokensStillSuitTheOriginal: what the original Python library
// (PyJWT, RS512) reads of a fully bound token is what it always read:
// username, an integer time, a string nonce; no aud; the rest are claims
// it ignores.
func TestBoundTokensStillSuitTheOriginal(t *testing.T) {
	kp := verifytest.GenerateKey(t, verifytest.RSA2048)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "JWT ")
		claims := jwt.MapClaims{}
		// PyJWT as the original calls it: RS512 only, no audience.
		_, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return kp.Public, nil },
			jwt.WithValidMethods([]string{"RS512"}))
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(claims)
	}))
	defer srv.Close()
	client := asymjwt.NewClient(&asymjwt.Transport{Signer: kp.Signer(t, "guido")})
	resp, err := client.Post(srv.URL+"/api?x=1", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var claims map[string]any
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		t.Fatal(err)
	}
	if _, ok := claims["aud"]; ok {
		t.Fatal("aud in the claims: PyJWT refuses a token with an audience it was not told to expect")
	}
	if claims["username"] != "guido" {
		t.Fatalf("username %v", claims["username"])
	}
	if n, ok := claims["time"].(json.Number); !ok || strings.ContainsAny(string(n), ".eE") {
		t.Fatalf("time %v is not an integer", claims["time"])
	}
	if _, ok := claims["nonce"].(string); !ok {
		t.Fatalf("nonce %v is not a string", claims["nonce"])
	}
	names := []string{}
	for name := range claims {
		names = append(names, name)
	}
	for _, name := range names {
		switch name {
		case "username", "time", "nonce", "htm", "htu", "htq", "hcd":
		default:
			t.Fatalf("unexpected claim %q in %v", name, names)
		}
	}
	if len(claims) != 7 {
		t.Fatalf("claims %v, want username, time, nonce, htm, htu, htq, hcd", names)
	}
}
