package verifytest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func TestServerRecordsRequests(t *testing.T) {
	kp := GenerateKey(t, Ed25519)
	srv := NewServer()
	defer srv.Close()
	srv.AddKey("alice", kp.Public)

	client := srv.SignedClient(kp.Signer(t, "alice"))
	resp, err := client.Post(srv.URL+"/echo", "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello alice\n" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}

	resp, err = srv.Client().Get(srv.URL + "/unsigned")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("unsigned request: %d", resp.StatusCode)
	}

	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests recorded", len(reqs))
	}
	if r := reqs[0]; !r.Authorized || r.Username != "alice" || r.Method != "POST" || r.Path != "/echo" || string(r.Body) != "payload" || r.Err != nil {
		t.Fatalf("first record %+v", r)
	}
	if r := reqs[1]; r.Authorized || !errors.Is(r.Err, asymjwt.ErrNoToken) || r.Kind != "no_token" || r.Path != "/unsigned" {
		t.Fatalf("second record %+v", r)
	}
	srv.Reset()
	if len(srv.Requests()) != 0 {
		t.Fatal("Reset kept records")
	}
}

func TestServerOptions(t *testing.T) {
	kp := GenerateKey(t, ECDSAP256)
	tests := []struct {
		name   string
		opts   []Option
		signer []asymjwt.SignerOption
		kind   string
	}{
		{"clock 60s ahead: stale", []Option{WithClockOffset(time.Minute)}, nil, "stale"},
		{"clock 60s behind: stale", []Option{WithClockOffset(-time.Minute)}, nil, "stale"},
		{"clock 60s ahead, client corrected", []Option{WithClockOffset(time.Minute)}, []asymjwt.SignerOption{asymjwt.WithClock(func() time.Time { return time.Now().Add(time.Minute) })}, ""},
		{"binding required, unbound token", []Option{WithRequireBinding()}, []asymjwt.SignerOption{asymjwt.WithoutBinding()}, "binding"},
		{"binding required, bound token", []Option{WithRequireBinding()}, nil, ""},
		{"custom handler", []Option{WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))}, nil, ""},
		{"TLS", []Option{WithTLS()}, nil, ""},
		{"verifier options", []Option{WithVerifierOptions(asymjwt.WithAlgorithms(asymjwt.EdDSA))}, nil, "bad_algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := NewServer(tt.opts...)
			defer srv.Close()
			srv.AddKeyFile("svc", kp.PublicFile)
			// Without skew correction, so the server's first answer is what is seen.
			client := asymjwt.NewClient(&asymjwt.Transport{Signer: kp.Signer(t, "svc", tt.signer...),
				Base: srv.Transport(), DisableSkewCorrection: true})
			resp, err := client.Get(srv.URL + "/x")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			reqs := srv.Requests()
			if len(reqs) != 1 || reqs[0].Kind != tt.kind {
				t.Fatalf("records %+v, want kind %q", reqs, tt.kind)
			}
			if tt.kind == "" && resp.StatusCode == 401 {
				t.Fatal("refused")
			}
		})
	}
}

func TestServerPanicsOnBadKeys(t *testing.T) {
	srv := NewUnstartedServer()
	for name, f := range map[string]func(){
		"AddKey nil":          func() { srv.AddKey("a", nil) },
		"AddKeyFile missing":  func() { srv.AddKeyFile("a", "/nonexistent") },
		"AddKeyFile no key":   func() { srv.AddKeyFile("a", "keys.go") },
		"AddKey bad username": func() { srv.AddKey("", GenerateKey(t, Ed25519).Public) },
		"WithHandler nil":     func() { NewUnstartedServer(WithHandler(nil)) },
		"bad verifier option": func() { NewUnstartedServer(WithVerifierOptions(asymjwt.WithMaxSkew(0))) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if p := recover(); p == nil || !strings.HasPrefix(p.(string), "verifytest: ") {
					t.Fatalf("panic %v, want one with the verifytest prefix", p)
				}
			}()
			f()
		})
	}
}

func TestGenerateKeyKinds(t *testing.T) {
	want := map[KeyKind]asymjwt.Algorithm{
		Ed25519: asymjwt.EdDSA, ECDSAP256: asymjwt.ES256, ECDSAP384: asymjwt.ES384,
		ECDSAP521: asymjwt.ES512, RSA2048: asymjwt.RS512, RSA3072: asymjwt.RS512,
	}
	for kind, alg := range want {
		t.Run(string(kind), func(t *testing.T) {
			kp := GenerateKey(t, kind)
			fromFile, err := asymjwt.KeyFromFile(kp.PrivateFile)
			if err != nil {
				t.Fatal(err)
			}
			if s := kp.Signer(t, "u"); s.Algorithm() != alg || s.KeyID() != kp.Fingerprint {
				t.Fatalf("signer %s %s", s.Algorithm(), s.KeyID())
			}
			fp, _ := asymjwt.Fingerprint(fromFile.Public())
			if fp != kp.Fingerprint {
				t.Fatal("private file holds another key")
			}
			srv := NewUnstartedServer()
			srv.AddKeyFile("u", kp.PublicFile) // the .pub line parses
		})
	}
}

func TestNewAgent(t *testing.T) {
	a, b := GenerateKey(t, Ed25519), GenerateKey(t, ECDSAP384)
	ag := NewAgent(t, a, b)
	conn, err := net.Dial("unix", ag.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := agent.NewClient(conn)
	keys, err := client.List()
	if err != nil || len(keys) != 2 {
		t.Fatalf("List: %d keys, %v", len(keys), err)
	}
	for _, k := range keys {
		sig, err := client.Sign(k, []byte("data"))
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Verify([]byte("data"), sig); err != nil {
			t.Fatal(err)
		}
		if ssh.FingerprintSHA256(k) != a.Fingerprint && ssh.FingerprintSHA256(k) != b.Fingerprint {
			t.Fatalf("unexpected key %s", k.Comment)
		}
	}
	c := GenerateKey(t, RSA2048)
	if err := ag.Keyring.Add(agent.AddedKey{PrivateKey: c.Private}); err != nil {
		t.Fatal(err)
	}
	if keys, err := client.List(); err != nil || len(keys) != 3 {
		t.Fatalf("List after Keyring.Add: %d keys, %v", len(keys), err)
	}
	ag.Close()
	if _, err := client.List(); err == nil {
		t.Fatal("a connection outlived Close")
	}
	if _, err := net.Dial("unix", ag.Socket); err == nil {
		t.Fatal("agent still accepts after Close")
	}
	ag.Close() // and again at the test's end: harmless
}

func TestConcurrentClients(t *testing.T) {
	kp := GenerateKey(t, Ed25519)
	srv := NewServer()
	defer srv.Close()
	srv.AddKey("svc", kp.Public)
	client := srv.SignedClient(kp.Signer(t, "svc"))
	errs := make(chan error, 32)
	for range 32 {
		go func() {
			req, _ := http.NewRequestWithContext(context.Background(), "PUT", srv.URL+"/item", bytes.NewReader([]byte("x")))
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = errors.New(resp.Status)
				}
			}
			errs <- err
		}()
	}
	for range 32 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.Requests()); n != 32 {
		t.Fatalf("%d records", n)
	}
}

// tamperingTransport changes every request body on its way, keeping its
// length.
type tamperingTransport struct{ base http.RoundTripper }

func (t tamperingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if len(b) > 0 {
		b[0] ^= 1
	}
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(b))
	return t.base.RoundTrip(r2)
}

func TestServerBodyBinding(t *testing.T) {
	kp := GenerateKey(t, Ed25519)
	tests := []struct {
		name    string
		opts    []Option
		signer  []asymjwt.SignerOption
		tamper  bool
		kind    string
		handled bool
	}{
		{"bound body", []Option{WithRequireBodyBinding()}, nil, false, "", true},
		{"unbound body, binding required", []Option{WithRequireBodyBinding()}, []asymjwt.SignerOption{asymjwt.WithoutBodyBinding()}, false, "binding", false},
		{"unbound body, binding not required", nil, []asymjwt.SignerOption{asymjwt.WithoutBodyBinding()}, false, "", true},
		{"body changed in flight", nil, nil, true, "binding", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var handled atomic.Bool
			srv := NewServer(append(tt.opts, WithHandler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { handled.Store(true) })))...)
			defer srv.Close()
			srv.AddKey("svc", kp.Public)
			base := srv.Transport()
			if tt.tamper {
				base = tamperingTransport{base}
			}
			client := asymjwt.NewClient(&asymjwt.Transport{Signer: kp.Signer(t, "svc", tt.signer...), Base: base})
			resp, err := client.Post(srv.URL+"/x", "text/plain", strings.NewReader("pay bob 1"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			reqs := srv.Requests()
			if len(reqs) != 1 || reqs[0].Kind != tt.kind || handled.Load() != tt.handled {
				t.Fatalf("records %+v, handled %v; want kind %q, handled %v", reqs, handled.Load(), tt.kind, tt.handled)
			}
			if tt.kind != "" {
				if err := asymjwt.CheckResponse(resp); !errors.Is(err, asymjwt.ErrBinding) || reqs[0].Authorized || reqs[0].Body != nil {
					t.Fatalf("answer %v, record %+v", err, reqs[0])
				}
			}
		})
	}
}
