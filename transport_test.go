package asymjwt

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// transportTestSigner returns a Signer for "alice" with an Ed25519 fixture
// key, and the public key to verify its tokens.
func transportTestSigner(t testing.TB) (*Signer, crypto.PublicKey) {
	t.Helper()
	key := loadTestKey(t, "openssh_ed25519")
	s, err := NewSigner("alice", key)
	if err != nil {
		t.Fatal(err)
	}
	return s, key.Public()
}

// closeRecorder is a request body that records whether it was closed.
type closeRecorder struct {
	io.Reader
	closed atomic.Int32
}

func (b *closeRecorder) Close() error { b.closed.Add(1); return nil }

// recordingTransport is a base RoundTripper that records what it is asked to
// send and answers 200 itself, sending nothing.
type recordingTransport struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.reqs = append(rt.reqs, req)
	rt.mu.Unlock()
	if req.Body != nil {
		req.Body.Close() // as the RoundTripper contract asks
	}
	return &http.Response{
		StatusCode: http.StatusOK,
		Status:     "200 OK",
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{},
		Body:    http.NoBody,
		Request: req,
	}, nil
}

func (rt *recordingTransport) sent() []*http.Request {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]*http.Request(nil), rt.reqs...)
}

// failingKey is a Key whose signing always fails, like an ssh-agent that
// went away.
type failingKey struct{ pub crypto.PublicKey }

var errKeyGone = errors.New("test: key unavailable")

func (k failingKey) Public() crypto.PublicKey { return k.pub }
func (k failingKey) SignJWS(context.Context, Algorithm, []byte) ([]byte, error) {
	return nil, errKeyGone
}

// seenRequest is what a test server saw of one request.
type seenRequest struct {
	method, path, auth string
	body               []byte
	digest             string // Content-Digest
	contentLength      int64
}

// recordingServer is an httptest server that records every request.
type recordingServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

// newRecordingServer starts a server that records each request and then
// runs handle (nil: answer 200).
func newRecordingServer(t testing.TB, handle http.HandlerFunc) *recordingServer {
	rs := &recordingServer{}
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rs.mu.Lock()
		rs.seen = append(rs.seen, seenRequest{r.Method, r.URL.Path, r.Header.Get("Authorization"), body,
			r.Header.Get("Content-Digest"), r.ContentLength})
		rs.mu.Unlock()
		if handle != nil {
			handle(w, r)
		}
	}))
	t.Cleanup(rs.Close)
	return rs
}

func (rs *recordingServer) requests() []seenRequest {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]seenRequest(nil), rs.seen...)
}

// tokenOf returns the token of an Authorization header value, or fails.
func tokenOf(t testing.TB, auth string) string {
	t.Helper()
	tok, ok := strings.CutPrefix(auth, "JWT ")
	if !ok || tok == "" {
		t.Fatalf("Authorization %.40q..., want \"JWT <token>\"", auth)
	}
	return tok
}

func TestTransportLeavesRequestUnchanged(t *testing.T) {
	s, pub := transportTestSigner(t)
	srv := newRecordingServer(t, nil)
	tests := []struct {
		name   string
		method string
		body   string
		host   string
	}{
		{"GET", "GET", "", ""},
		{"POST with body", "POST", `{"a":1}`, ""},
		{"PUT with Host override", "PUT", "payload", "svc.internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+"/v1/items?q=1", nil)
			if err != nil {
				t.Fatal(err)
			}
			var body *closeRecorder
			if tt.body != "" {
				body = &closeRecorder{Reader: strings.NewReader(tt.body)}
				req.Body = body
				req.ContentLength = int64(len(tt.body))
			}
			req.Host = tt.host
			req.Header.Set("X-Trace", "abc")
			req.Header.Add("Accept", "application/json")

			origURL, origURLPtr := req.URL.String(), req.URL
			origHeader := req.Header.Clone()
			origBody, origLen, origHost := req.Body, req.ContentLength, req.Host

			tr := &Transport{Signer: s, Base: srv.Client().Transport}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()

			if req.Header.Get("Authorization") != "" {
				t.Error("Authorization added to the caller's request")
			}
			if len(req.Header) != len(origHeader) || req.Header.Get("X-Trace") != "abc" ||
				req.Header.Get("Accept") != "application/json" {
				t.Errorf("caller's headers changed: %v, were %v", req.Header, origHeader)
			}
			if req.URL != origURLPtr || req.URL.String() != origURL {
				t.Errorf("caller's URL changed: %s, was %s", req.URL, origURL)
			}
			if req.Body != origBody || req.ContentLength != origLen || req.Host != origHost {
				t.Errorf("caller's Body/ContentLength/Host changed")
			}

			seen := srv.requests()
			got := seen[len(seen)-1]
			claims := verifyWithGolangJWT(t, tokenOf(t, got.auth), pub, EdDSA)
			wantHost := strings.TrimPrefix(srv.URL, "http://")
			if tt.host != "" {
				wantHost = tt.host
			}
			if claims["htm"] != tt.method || claims["htu"] != "http://"+wantHost+"/v1/items" {
				t.Errorf("binding htm=%v htu=%v", claims["htm"], claims["htu"])
			}
			if string(got.body) != tt.body {
				t.Errorf("server got body %q, want %q", got.body, tt.body)
			}
		})
	}
}

func TestTransportSigningFailure(t *testing.T) {
	good, pub := transportTestSigner(t)
	broken, err := NewSigner("alice", failingKey{pub})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		signer *Signer
		ctx    context.Context
		want   error
	}{
		{"key fails", broken, context.Background(), errKeyGone},
		{"context cancelled", good, cancelled, context.Canceled},
		{"nil Signer", nil, context.Background(), errNoSigner},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := &recordingTransport{}
			tr := &Transport{Signer: tt.signer, Base: base}
			body := &closeRecorder{Reader: strings.NewReader("secret payload")}
			req, err := http.NewRequestWithContext(tt.ctx, "POST", "https://api.example.com/x", body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tr.RoundTrip(req)
			if resp != nil {
				t.Errorf("response %v returned with error %v", resp, err)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if n := body.closed.Load(); n != 1 {
				t.Errorf("body closed %d times, want 1", n)
			}
			if sent := base.sent(); len(sent) != 0 {
				t.Errorf("base transport called %d times: the request was sent", len(sent))
			}
		})
	}
}

func TestTransportSigningFailureSendsNothing(t *testing.T) {
	_, pub := transportTestSigner(t)
	broken, err := NewSigner("alice", failingKey{pub})
	if err != nil {
		t.Fatal(err)
	}
	srv := newRecordingServer(t, nil)
	client := &http.Client{Transport: &Transport{Signer: broken, Base: srv.Client().Transport}}
	body := &closeRecorder{Reader: strings.NewReader("payload")}
	req, _ := http.NewRequest("POST", srv.URL+"/x", body)
	resp, err := client.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("client.Do succeeded with a key that cannot sign")
	}
	if !errors.Is(err, errKeyGone) {
		t.Errorf("err = %v, want it to wrap the key's error", err)
	}
	if body.closed.Load() == 0 {
		t.Error("body not closed")
	}
	if n := len(srv.requests()); n != 0 {
		t.Fatalf("server received %d requests", n)
	}
}

func TestTransportNoURL(t *testing.T) {
	s, _ := transportTestSigner(t)
	base := &recordingTransport{}
	body := &closeRecorder{Reader: strings.NewReader("x")}
	_, err := (&Transport{Signer: s, Base: base}).RoundTrip(&http.Request{Method: "POST", Header: http.Header{}, Body: body})
	if err == nil || body.closed.Load() != 1 || len(base.sent()) != 0 {
		t.Fatalf("err = %v, closed %d, sent %d; want an error, body closed, nothing sent",
			err, body.closed.Load(), len(base.sent()))
	}
}

func TestTransportConcurrentNonces(t *testing.T) {
	const n = 64
	s, pub := transportTestSigner(t)
	srv := newRecordingServer(t, nil)
	client := &http.Client{Transport: &Transport{Signer: s, Base: srv.Client().Transport}}

	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := client.Get(srv.URL + "/c/" + string(rune('A'+i%26)))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		}()
	}
	close(start)
	wg.Wait()

	seen := srv.requests()
	if len(seen) != n {
		t.Fatalf("server saw %d requests, want %d", len(seen), n)
	}
	nonces := map[string]bool{}
	for _, r := range seen {
		claims := verifyWithGolangJWT(t, tokenOf(t, r.auth), pub, EdDSA)
		if claims["htu"] != srv.URL+r.path {
			t.Errorf("htu %v for a request to %s", claims["htu"], r.path)
		}
		nonce, _ := claims["nonce"].(string)
		if nonces[nonce] {
			t.Fatalf("nonce %q sent twice", nonce)
		}
		nonces[nonce] = true
	}
}

func TestTransportRedirectSameHost(t *testing.T) {
	s, pub := transportTestSigner(t)
	srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a":
			http.Redirect(w, r, "/b?x=1", http.StatusFound)
		case "/b":
			http.Redirect(w, r, "/c", http.StatusMovedPermanently)
		}
	})
	client := &http.Client{Transport: &Transport{Signer: s, Base: srv.Client().Transport}}
	resp, err := client.Get(srv.URL + "/a")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	seen := srv.requests()
	if len(seen) != 3 {
		t.Fatalf("server saw %d requests, want 3", len(seen))
	}
	nonces := map[string]bool{}
	for i, path := range []string{"/a", "/b", "/c"} {
		if seen[i].path != path {
			t.Fatalf("hop %d went to %s, want %s", i, seen[i].path, path)
		}
		claims := verifyWithGolangJWT(t, tokenOf(t, seen[i].auth), pub, EdDSA)
		if htu, _ := claims["htu"].(string); htu != srv.URL+path {
			t.Errorf("hop %d: htu %q, want %q", i, htu, srv.URL+path)
		}
		nonce, _ := claims["nonce"].(string)
		if nonces[nonce] {
			t.Errorf("hop %d reused nonce %q", i, nonce)
		}
		nonces[nonce] = true
	}
}

func TestTransportRedirectOtherHost(t *testing.T) {
	s, pub := transportTestSigner(t)
	second := newRecordingServer(t, nil)
	first := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, second.URL+"/b", http.StatusFound)
	})
	host := func(u string) string { p, _ := url.Parse(u); return p.Host }
	firstHost, secondHost := host(first.URL), host(second.URL)
	tests := []struct {
		name                    string
		allowed                 []string
		firstSigned, secondSign bool
	}{
		{"default: other port is another host", nil, true, false},
		{"both allowed", []string{firstHost, secondHost}, true, true},
		{"both allowed, upper case", []string{strings.ToUpper(firstHost), secondHost}, true, true},
		{"allowed without port matches any port", []string{"127.0.0.1"}, true, true},
		{"only the second allowed", []string{secondHost}, false, true},
		{"only the first allowed", []string{firstHost}, true, false},
		{"neither allowed", []string{"api.example.com"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n1, n2 := len(first.requests()), len(second.requests())
			client := &http.Client{Transport: &Transport{Signer: s, Base: first.Client().Transport, AllowedHosts: tt.allowed}}
			resp, err := client.Get(first.URL + "/a")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			r1, r2 := first.requests()[n1:], second.requests()[n2:]
			if len(r1) != 1 || len(r2) != 1 {
				t.Fatalf("requests: %d to the first server, %d to the second; want 1 and 1", len(r1), len(r2))
			}
			for i, c := range []struct {
				r      seenRequest
				signed bool
				base   string
			}{{r1[0], tt.firstSigned, first.URL}, {r2[0], tt.secondSign, second.URL}} {
				if !c.signed {
					if c.r.auth != "" {
						t.Errorf("hop %d carries Authorization, want none", i)
					}
					continue
				}
				claims := verifyWithGolangJWT(t, tokenOf(t, c.r.auth), pub, EdDSA)
				if claims["htu"] != c.base+c.r.path {
					t.Errorf("hop %d: htu %v, want %s", i, claims["htu"], c.base+c.r.path)
				}
			}
		})
	}
}

func TestTransportRedirectPOST307(t *testing.T) {
	s, pub := transportTestSigner(t)
	srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a" {
			http.Redirect(w, r, "/b", http.StatusTemporaryRedirect)
		}
	})
	client := &http.Client{Transport: &Transport{Signer: s, Base: srv.Client().Transport}}
	payload := []byte(`{"order":42,"items":["x","y"]}`)
	req, err := http.NewRequest("POST", srv.URL+"/a", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	if req.GetBody == nil {
		t.Fatal("http.NewRequest did not set GetBody")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	seen := srv.requests()
	if len(seen) != 2 {
		t.Fatalf("server saw %d requests, want 2", len(seen))
	}
	var nonces []any
	for i, path := range []string{"/a", "/b"} {
		r := seen[i]
		if r.method != "POST" || r.path != path || !bytes.Equal(r.body, payload) {
			t.Errorf("hop %d: %s %s body %q; want POST %s with the payload", i, r.method, r.path, r.body, path)
		}
		claims := verifyWithGolangJWT(t, tokenOf(t, r.auth), pub, EdDSA)
		if claims["htm"] != "POST" || claims["htu"] != srv.URL+path {
			t.Errorf("hop %d: htm %v htu %v", i, claims["htm"], claims["htu"])
		}
		// Each hop hashes the body again and carries its digest.
		if want, _ := ContentDigest(bytes.NewReader(payload)); r.digest != want || claims["hcd"] != want {
			t.Errorf("hop %d: Content-Digest %q, hcd %v; want %q", i, r.digest, claims["hcd"], want)
		}
		nonces = append(nonces, claims["nonce"])
	}
	if nonces[0] == nonces[1] {
		t.Error("the 307 hop reused the first token's nonce")
	}
}

// TestTransportMustSign covers the signing decision for requests as
// http.Client makes them for redirect hops, without a network.
func TestTransportMustSign(t *testing.T) {
	get := func(rawURL string, prev *http.Request) *http.Request {
		req, err := http.NewRequest("GET", rawURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		if prev != nil {
			req.Response = &http.Response{Request: prev}
		}
		return req
	}
	withHost := func(r *http.Request, host string) *http.Request { r.Host = host; return r }
	start := get("https://api.example.com/a", nil)
	tests := []struct {
		name    string
		allowed []string
		req     *http.Request
		want    bool
	}{
		{"first request", nil, get("https://anything.example/x", nil), true},
		{"same host hop", nil, get("https://api.example.com/b", start), true},
		{"same host, explicit default port", nil, get("https://api.example.com:443/b", start), true},
		{"same host, upper case", nil, get("https://API.example.com/b", start), true},
		{"other host hop", nil, get("https://evil.example/b", start), false},
		{"other port hop", nil, get("https://api.example.com:8443/b", start), false},
		{"downgrade to http", nil, get("http://api.example.com/b", start), false},
		{"second hop back to start", nil, get("https://api.example.com/c", get("https://evil.example/b", start)), true},
		{"second hop still elsewhere", nil, get("https://evil.example/c", get("https://api.example.com/b", start)), false},
		{"Host override compared", nil, withHost(get("https://10.0.0.1/b", start), "api.example.com"), true},
		{"allowed host", []string{"api.example.com"}, get("https://api.example.com/x", nil), true},
		{"allowed host any port", []string{"api.example.com"}, get("https://api.example.com:8443/x", nil), true},
		{"allowed host:port, other port", []string{"api.example.com:8443"}, get("https://api.example.com:9443/x", nil), false},
		{"allowed host:443, default port", []string{"api.example.com:443"}, get("https://api.example.com/x", nil), true},
		{"not allowed", []string{"api.example.com"}, get("https://other.example/x", nil), false},
		{"allowed suffix is not a match", []string{"example.com"}, get("https://api.example.com/x", nil), false},
		{"allowed cross-host hop", []string{"api.example.com", "cdn.example.com"}, get("https://cdn.example.com/b", start), true},
		{"allowed host, downgrade hop", []string{"api.example.com"}, get("http://api.example.com/b", start), false},
		{"allowed ipv6", []string{"[::1]"}, get("http://[::1]:8080/x", nil), true},
		{"allowed ipv6 with port", []string{"[::1]:8080"}, get("http://[::1]:8080/x", nil), true},
		{"allowed ipv6 other", []string{"[::1]"}, get("http://[::2]:8080/x", nil), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &Transport{AllowedHosts: tt.allowed}
			if got := tr.mustSign(tt.req); got != tt.want {
				t.Fatalf("mustSign(%s, Host %q) = %v, want %v", tt.req.URL, tt.req.Host, got, tt.want)
			}
		})
	}
}

func TestNewClient(t *testing.T) {
	s, pub := transportTestSigner(t)
	srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "JWT ") {
			http.Error(w, "no token", http.StatusUnauthorized)
		}
	})
	client := NewClient(&Transport{Signer: s})
	tr, ok := client.Transport.(*Transport)
	if !ok || tr.Signer != s || tr.Base != nil {
		t.Fatalf("NewClient transport = %#v", client.Transport)
	}
	for _, method := range []string{"GET", "POST"} {
		req, _ := http.NewRequest(method, srv.URL+"/hello?x=1", strings.NewReader("hi"))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", method, resp.StatusCode)
		}
		seen := srv.requests()
		claims := verifyWithGolangJWT(t, tokenOf(t, seen[len(seen)-1].auth), pub, EdDSA)
		if claims["username"] != "alice" || claims["htm"] != method || claims["htu"] != srv.URL+"/hello" {
			t.Fatalf("claims %v", claims)
		}
	}
}

func TestWithOwnHeader(t *testing.T) {
	req := httptest.NewRequest("GET", "http://api.example.com/v1/items?q=1", nil)
	req.Header["User-Agent"] = nil // nil: net/http sends no User-Agent
	req.Header["Accept"] = []string{"a", "b"}
	req.Header["X-Empty"] = []string{}
	req.Header["X-One"] = []string{"1"}
	orig := req.Header.Clone()

	r2 := withOwnHeader(req, 2)
	if !reflect.DeepEqual(r2.Header, orig) {
		t.Fatalf("copied header %#v, want %#v", r2.Header, orig)
	}
	if v, ok := r2.Header["User-Agent"]; !ok || v != nil {
		t.Fatalf("nil User-Agent became %#v (present %v)", v, ok)
	}
	if r2.URL != req.URL || r2.Context() != req.Context() || r2.Method != req.Method {
		t.Fatal("shallow fields differ")
	}
	r2.Header.Set("Authorization", "JWT x")
	r2.Header.Add("Accept", "c")
	r2.Header["X-One"][0] = "changed"
	r2.Header.Del("X-Empty")
	if !reflect.DeepEqual(req.Header, orig) {
		t.Fatalf("caller's header changed to %#v", req.Header)
	}
}
