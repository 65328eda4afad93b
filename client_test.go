package asymjwt_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt"
	"github.com/asymjwt/asymjwt/verifytest"
	"github.com/hashicorp/go-retryablehttp"
)

// nonceRecorder is a handler that remembers the nonce and body of each
// verified request, and answers with the status codes it is given in turn
// (then 200).
type nonceRecorder struct {
	mu       sync.Mutex
	nonces   []string
	bodies   []string
	statuses []int
}

func (h *nonceRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, _ := asymjwt.IdentityFrom(r.Context())
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.nonces = append(h.nonces, id.Nonce)
	h.bodies = append(h.bodies, string(body))
	status := http.StatusOK
	if len(h.statuses) > 0 {
		status, h.statuses = h.statuses[0], h.statuses[1:]
	}
	h.mu.Unlock()
	w.WriteHeader(status)
}

func fastRetries(rc *retryablehttp.Client) *retryablehttp.Client {
	rc.RetryWaitMin, rc.RetryWaitMax = time.Millisecond, 5*time.Millisecond
	return rc
}

func TestRetryClientSignsEveryAttempt(t *testing.T) {
	kp := verifytest.GenerateKey(t, verifytest.Ed25519)
	rec := &nonceRecorder{statuses: []int{503, 503}}
	srv := verifytest.NewServer(verifytest.WithHandler(rec))
	defer srv.Close()
	srv.AddKey("svc", kp.Public)

	rc := fastRetries(asymjwt.NewRetryClient(&asymjwt.Transport{Signer: kp.Signer(t, "svc")}))
	req, err := retryablehttp.NewRequest("POST", srv.URL+"/jobs", []byte(`{"job":42}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if len(rec.nonces) != 3 {
		t.Fatalf("%d attempts reached the handler, want 3", len(rec.nonces))
	}
	seen := map[string]bool{}
	for i, n := range rec.nonces {
		if seen[n] {
			t.Fatalf("attempt %d reused nonce %s", i, n)
		}
		seen[n] = true
		if rec.bodies[i] != `{"job":42}` {
			t.Fatalf("attempt %d body %q", i, rec.bodies[i])
		}
	}
}

// TestRetryBelowSigningFails shows why the order matters: a retry layer
// under the Transport sends one token on every attempt.
func TestRetryBelowSigningFails(t *testing.T) {
	kp := verifytest.GenerateKey(t, verifytest.Ed25519)
	srv := verifytest.NewServer(verifytest.WithHandler(&nonceRecorder{statuses: []int{503}}))
	defer srv.Close()
	srv.AddKey("svc", kp.Public)

	inner := fastRetries(retryablehttp.NewClient())
	inner.Logger = nil
	wrongOrder := &http.Client{Transport: &asymjwt.Transport{
		Signer: kp.Signer(t, "svc"),
		Base:   &retryablehttp.RoundTripper{Client: inner},
	}}
	resp, err := wrongOrder.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	reqs := srv.Requests()
	if resp.StatusCode != 401 || len(reqs) != 2 || reqs[1].Kind != "replay" {
		t.Fatalf("status %d, records %+v", resp.StatusCode, reqs)
	}
}

func TestRetryClientConcurrentCallers(t *testing.T) {
	kp := verifytest.GenerateKey(t, verifytest.ECDSAP256)
	var n atomic.Int32
	srv := verifytest.NewServer(verifytest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusBadGateway)
		}
	})))
	defer srv.Close()
	srv.AddKey("svc", kp.Public)
	rc := fastRetries(asymjwt.NewRetryClient(&asymjwt.Transport{Signer: kp.Signer(t, "svc")}))
	rc.RetryMax = 10

	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := retryablehttp.NewRequest("PUT", srv.URL+"/items", strings.NewReader(strings.Repeat("x", i)))
			resp, err := rc.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("caller %d: %d", i, resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	for _, r := range srv.Requests() {
		if !r.Authorized {
			t.Fatalf("an attempt was refused: %+v", r)
		}
	}
}

func TestClockSkewCorrection(t *testing.T) {
	kp := verifytest.GenerateKey(t, verifytest.Ed25519)
	srv := verifytest.NewServer(verifytest.WithClockOffset(60 * time.Second))
	defer srv.Close()
	srv.AddKey("svc", kp.Public)

	t.Run("learns, retries once, then passes at once", func(t *testing.T) {
		srv.Reset()
		signer := kp.Signer(t, "svc")
		client := asymjwt.NewClient(&asymjwt.Transport{Signer: signer, Base: srv.Transport()})
		for range 2 {
			req, _ := http.NewRequest("POST", srv.URL+"/x", bytes.NewReader([]byte("body")))
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
		kinds := []string{}
		for _, r := range srv.Requests() {
			kinds = append(kinds, r.Kind)
		}
		if strings.Join(kinds, ",") != "stale,," {
			t.Fatalf("server saw %q, want stale then two successes", kinds)
		}
		tr := client.Transport.(*asymjwt.Transport)
		if off := tr.ClockOffset(hostOf(srv.URL)); off < 58*time.Second || off > 62*time.Second {
			t.Fatalf("learned offset %v, want about 60s", off)
		}
		if other := tr.ClockOffset("other.example:443"); other != 0 {
			t.Fatalf("offset %v learned for another host: it would shift tokens sent there", other)
		}
		if string(srv.Requests()[1].Body) != "body" {
			t.Fatal("the retry lost the body")
		}
	})
	t.Run("body buffered to bind it: replayed", func(t *testing.T) {
		srv.Reset()
		client := asymjwt.NewClient(&asymjwt.Transport{Signer: kp.Signer(t, "svc"), Base: srv.Transport()})
		req, _ := http.NewRequest("POST", srv.URL+"/x", io.NopCloser(strings.NewReader("once")))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		reqs := srv.Requests()
		if resp.StatusCode != 200 || len(reqs) != 2 || string(reqs[1].Body) != "once" {
			t.Fatalf("status %d after %d requests (%+v)", resp.StatusCode, len(reqs), reqs)
		}
	})
	t.Run("body that cannot be replayed: 401, no retry", func(t *testing.T) {
		srv.Reset()
		// Without body binding, a body without GetBody is not buffered.
		signer := kp.Signer(t, "svc", asymjwt.WithoutBodyBinding())
		client := asymjwt.NewClient(&asymjwt.Transport{Signer: signer, Base: srv.Transport()})
		req, _ := http.NewRequest("POST", srv.URL+"/x", io.NopCloser(strings.NewReader("once")))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || len(srv.Requests()) != 1 {
			t.Fatalf("status %d after %d requests", resp.StatusCode, len(srv.Requests()))
		}
		if client.Transport.(*asymjwt.Transport).ClockOffset(hostOf(srv.URL)) == 0 {
			t.Fatal("offset not learned for later requests")
		}
	})
	t.Run("switched off", func(t *testing.T) {
		srv.Reset()
		signer := kp.Signer(t, "svc")
		client := asymjwt.NewClient(&asymjwt.Transport{Signer: signer, Base: srv.Transport(), DisableSkewCorrection: true})
		resp, err := client.Get(srv.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		off := client.Transport.(*asymjwt.Transport).ClockOffset(hostOf(srv.URL))
		if resp.StatusCode != 401 || len(srv.Requests()) != 1 || off != 0 {
			t.Fatalf("status %d, %d requests, offset %v", resp.StatusCode, len(srv.Requests()), off)
		}
	})
}

// staleServer refuses everything as stale, with the Date it is given.
func staleServer(date string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if date == "" {
			w.Header()["Date"] = nil // net/http adds none then
		} else {
			w.Header().Set("Date", date)
		}
		w.Header().Set("WWW-Authenticate", `JWT error="stale"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
}

func TestClockSkewIgnoresUnusableAnswers(t *testing.T) {
	kp := verifytest.GenerateKey(t, verifytest.Ed25519)
	// Dates are made when the server answers, not when the table is built:
	// on a loaded machine a subtest may start seconds later.
	at := func(d time.Duration) func() string {
		return func() string { return time.Now().Add(d).UTC().Format(http.TimeFormat) }
	}
	fixed := func(s string) func() string { return func() string { return s } }
	for name, date := range map[string]func() string{
		"no Date":               fixed(""),
		"garbage Date":          fixed("yesterday-ish"),
		"Date agrees":           at(0),
		"Date an hour ahead":    at(time.Hour),
		"Date a day behind":     at(-24 * time.Hour),
		"Date a year ahead":     at(365 * 24 * time.Hour),
		"Date before the epoch": fixed("Mon, 01 Jan 1900 00:00:00 GMT"),
	} {
		t.Run(name, func(t *testing.T) {
			var hits atomic.Int32
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { staleServer(date()).ServeHTTP(w, r) })
			srv := newCountingServer(t, &hits, h)
			client := asymjwt.NewClient(&asymjwt.Transport{Signer: kp.Signer(t, "svc")})
			resp, err := client.Get(srv + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			off := client.Transport.(*asymjwt.Transport).ClockOffset(hostOf(srv))
			if resp.StatusCode != 401 || hits.Load() != 1 || off != 0 {
				t.Fatalf("status %d, %d requests, offset %v", resp.StatusCode, hits.Load(), off)
			}
		})
	}
	t.Run("never loops", func(t *testing.T) {
		var hits atomic.Int32
		srv := newCountingServer(t, &hits, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// A server whose clock jumps on every request.
			staleServer(time.Now().Add(time.Duration(hits.Load())*2*time.Minute).UTC().Format(http.TimeFormat)).ServeHTTP(w, r)
		}))
		resp, err := asymjwt.NewClient(&asymjwt.Transport{Signer: kp.Signer(t, "svc")}).Get(srv + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if hits.Load() != 2 {
			t.Fatalf("%d requests, want 2", hits.Load())
		}
	})
}

func TestRedirects(t *testing.T) {
	kp := verifytest.GenerateKey(t, verifytest.Ed25519)
	second := verifytest.NewServer()
	defer second.Close()
	second.AddKey("svc", kp.Public)
	first := verifytest.NewServer(verifytest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, second.URL+"/landed", http.StatusFound)
		case "/old":
			http.Redirect(w, r, "/new", http.StatusTemporaryRedirect)
		default:
			body, _ := io.ReadAll(r.Body)
			w.Write(body)
		}
	})))
	defer first.Close()
	first.AddKey("svc", kp.Public)
	signer := kp.Signer(t, "svc")

	t.Run("another host refused by NewClient", func(t *testing.T) {
		_, err := asymjwt.NewClient(&asymjwt.Transport{Signer: signer}).Get(first.URL + "/away")
		if !errors.Is(err, asymjwt.ErrRedirectRefused) {
			t.Fatalf("err = %v, want ErrRedirectRefused", err)
		}
		if len(second.Requests()) != 0 {
			t.Fatal("the other host was contacted")
		}
	})
	t.Run("another host reached unsigned through a plain client", func(t *testing.T) {
		second.Reset()
		resp, err := (&http.Client{Transport: &asymjwt.Transport{Signer: signer}}).Get(first.URL + "/away")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if r := second.Requests(); resp.StatusCode != 401 || len(r) != 1 || r[0].Kind != "no_token" {
			t.Fatalf("status %d, second server saw %+v", resp.StatusCode, r)
		}
	})
	t.Run("another host allowed", func(t *testing.T) {
		second.Reset()
		client := asymjwt.NewClient(&asymjwt.Transport{Signer: signer, AllowedHosts: []string{hostOf(first.URL), hostOf(second.URL)}})
		resp, err := client.Get(first.URL + "/away")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if r := second.Requests(); resp.StatusCode != 200 || len(r) != 1 || !r[0].Authorized {
			t.Fatalf("status %d, second server saw %+v", resp.StatusCode, r)
		}
	})
	t.Run("same host 307 with a body, re-signed", func(t *testing.T) {
		first.Reset()
		resp, err := asymjwt.NewClient(&asymjwt.Transport{Signer: signer}).Post(first.URL+"/old", "text/plain", strings.NewReader("payload"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r := first.Requests()
		if resp.StatusCode != 200 || string(body) != "payload" || len(r) != 2 || !r[0].Authorized || !r[1].Authorized || r[1].Path != "/new" {
			t.Fatalf("status %d body %q records %+v", resp.StatusCode, body, r)
		}
	})
}

func hostOf(u string) string { return strings.TrimPrefix(u, "http://") }

func newCountingServer(t *testing.T, hits *atomic.Int32, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestClockSkewIsPerHost: what one server's Date teaches shifts only the
// tokens sent to that server.
func TestClockSkewIsPerHost(t *testing.T) {
	kp := verifytest.GenerateKey(t, verifytest.Ed25519)
	ahead := verifytest.NewServer(verifytest.WithClockOffset(90 * time.Second))
	defer ahead.Close()
	ahead.AddKey("svc", kp.Public)
	onTime := verifytest.NewServer()
	defer onTime.Close()
	onTime.AddKey("svc", kp.Public)

	client := asymjwt.NewClient(&asymjwt.Transport{Signer: kp.Signer(t, "svc")})
	for _, srv := range []*verifytest.Server{ahead, onTime, ahead, onTime} {
		resp, err := client.Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", srv.URL, resp.StatusCode)
		}
	}
	if n := len(onTime.Requests()); n != 2 {
		t.Fatalf("the on-time server saw %d requests, want 2 (no stale retries)", n)
	}
	if n := len(ahead.Requests()); n != 3 {
		t.Fatalf("the server ahead saw %d requests, want 3 (one stale, then two good)", n)
	}
}

// TestBrokenRedirectChainIsNotSigned: a hop whose origin cannot be found
// (a Base that leaves Response.Request unset) goes unsigned.
func TestBrokenRedirectChainIsNotSigned(t *testing.T) {
	kp := verifytest.GenerateKey(t, verifytest.Ed25519)
	var got []string
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = append(got, r.URL.Host+" "+r.Header.Get("Authorization"))
		if r.URL.Host == "a.example" {
			return &http.Response{StatusCode: 302, Header: http.Header{"Location": {"http://evil.example/"}}, Body: http.NoBody}, nil
		}
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	})
	client := &http.Client{Transport: &asymjwt.Transport{Signer: kp.Signer(t, "svc"), Base: base}}
	resp, err := client.Get("http://a.example/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(got) != 2 || !strings.HasPrefix(got[0], "a.example JWT ") || got[1] != "evil.example " {
		t.Fatalf("sent %q", got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestClockSkewConcurrentFirstRequests: many goroutines' first requests to a
// host whose clock is a minute ahead are in flight together; every one is
// answered after at most one resend, and the learned offset serves later
// requests at once.
func TestClockSkewConcurrentFirstRequests(t *testing.T) {
	const n = 32
	kp := verifytest.GenerateKey(t, verifytest.Ed25519)
	srv := verifytest.NewServer(verifytest.WithClockOffset(60 * time.Second))
	defer srv.Close()
	srv.AddKey("svc", kp.Public)
	client := asymjwt.NewClient(&asymjwt.Transport{Signer: kp.Signer(t, "svc")})

	var wg sync.WaitGroup
	statuses := make([]int, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			resp, err := client.Get(srv.URL + "/")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Fatalf("request %d: status %d, want 200 after at most one resend", i, s)
		}
	}
	stale := 0
	for _, r := range srv.Requests() {
		if r.Kind == "stale" {
			stale++
		}
	}
	if got := len(srv.Requests()); got > 2*n || got-stale != n {
		t.Fatalf("%d requests reached the server (%d stale) for %d calls: more than one resend each", got, stale, n)
	}
	srv.Reset()
	resp, err := client.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(srv.Requests()) != 1 {
		t.Fatalf("after learning, %d requests for one call", len(srv.Requests()))
	}
}

func TestCheckResponse(t *testing.T) {
	resp := func(status int, challenges ...string) *http.Response {
		return &http.Response{StatusCode: status, Header: http.Header{"Www-Authenticate": challenges}}
	}
	tests := []struct {
		name string
		resp *http.Response
		kind string // "" when not a refusal
		is   error
	}{
		{"stale", resp(401, `JWT error="stale"`), "stale", asymjwt.ErrStale},
		{"replay", resp(401, `JWT error="replay"`), "replay", asymjwt.ErrReplay},
		{"binding", resp(401, `JWT error="binding"`), "binding", asymjwt.ErrBinding},
		{"invalid signature", resp(401, `JWT error="invalid_signature"`), "invalid_signature", asymjwt.ErrBadSignature},
		{"unavailable", resp(503, `JWT error="unavailable"`), "unavailable", asymjwt.ErrUnavailable},
		{"lower-case scheme, unquoted", resp(401, `jwt error=replay`), "replay", asymjwt.ErrReplay},
		{"among other challenges", resp(401, `Basic realm="x"`, `JWT realm="api", error="no_token"`), "no_token", asymjwt.ErrNoToken},
		{"unknown kind", resp(401, `JWT error="gremlins"`), "invalid_token", nil},
		{"no error parameter", resp(401, `JWT`), "invalid_token", nil},
		{"bad quoting", resp(401, `JWT error="stale`), "invalid_token", nil},
		{"other scheme", resp(401, `Bearer error="invalid_token"`), "", nil},
		{"no challenge", resp(401), "", nil},
		{"200", resp(200, `JWT error="stale"`), "", nil},
		{"403", resp(403, `JWT error="stale"`), "", nil},
		{"nil", nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := asymjwt.CheckResponse(tt.resp)
			if tt.kind == "" {
				if err != nil {
					t.Fatalf("CheckResponse = %v, want nil", err)
				}
				return
			}
			var re *asymjwt.RefusedError
			if !errors.As(err, &re) || re.Kind != tt.kind || re.StatusCode != tt.resp.StatusCode || re.Response != tt.resp {
				t.Fatalf("CheckResponse = %#v, want kind %q", err, tt.kind)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("%v is not %v", err, tt.is)
			}
			if errors.Is(err, asymjwt.ErrMalformed) {
				t.Fatalf("%v matches an unrelated sentinel", err)
			}
		})
	}
}

// TestRotateKeyOnRunningClient: a client's key is swapped while requests
// are in flight; every request verifies, before and after, and once the
// server drops the old key only the new one works.
func TestRotateKeyOnRunningClient(t *testing.T) {
	oldKP := verifytest.GenerateKey(t, verifytest.Ed25519)
	newKP := verifytest.GenerateKey(t, verifytest.ECDSAP256)
	srv := verifytest.NewServer()
	defer srv.Close()
	srv.AddKey("svc", oldKP.Public)
	srv.AddKey("svc", newKP.Public)
	signer := oldKP.Signer(t, "svc")
	client := asymjwt.NewClient(&asymjwt.Transport{Signer: signer})

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				if g == 0 && i == 5 {
					if err := signer.SetKey(newKP.Key); err != nil {
						t.Error(err)
					}
				}
				resp, err := client.Get(srv.URL + "/")
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d during rotation", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	if signer.KeyID() != newKP.Fingerprint || signer.Algorithm() != asymjwt.ES256 {
		t.Fatalf("after SetKey: kid %s, alg %s", signer.KeyID(), signer.Algorithm())
	}

	// A key the Signer cannot use leaves the old one in place.
	rsaKP := verifytest.GenerateKey(t, verifytest.RSA2048)
	pinned, err := asymjwt.NewSigner("svc", newKP.Key, asymjwt.WithAlgorithm(asymjwt.ES256))
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]asymjwt.Key{"nil": nil, "algorithm does not fit": rsaKP.Key} {
		if err := pinned.SetKey(key); err == nil {
			t.Fatalf("SetKey(%s) succeeded", name)
		}
		if pinned.KeyID() != newKP.Fingerprint {
			t.Fatalf("SetKey(%s) failed but changed the key", name)
		}
	}
}
