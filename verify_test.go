package asymjwt

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testNow is the fixed verifier time of most tests.
var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// testKeys are fixture keys, loaded once per test.
type testKeys struct {
	ed, ed2, p256, p384, rsa, rsa2 Key
}

func loadTestKeys(t testing.TB) testKeys {
	t.Helper()
	load := func(name string) Key {
		k, err := KeyFromFile(keyPath(name))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	return testKeys{
		ed:   load("openssh_ed25519"),
		ed2:  load("pkcs8_ed25519.pem"),
		p256: load("sec1_p256.pem"),
		p384: load("openssh_p384"),
		rsa:  load("pkcs1_rsa2048.pem"),
		rsa2: load("openssh_rsa2048"),
	}
}

// harness is a Verifier on an injected clock with in-memory stores.
type harness struct {
	t      testing.TB
	now    time.Time
	keys   *MemoryKeyStore
	nonces *MemoryNonceStore
	v      *Verifier
}

func newHarness(t testing.TB, opts ...VerifierOption) *harness {
	h := &harness{t: t, now: testNow, keys: NewMemoryKeyStore()}
	h.nonces = mustNonceStore(WithClock(func() time.Time { return h.now }))
	opts = append([]VerifierOption{WithClock(func() time.Time { return h.now }), WithNonceStore(h.nonces)}, opts...)
	v, err := NewVerifier(h.keys, opts...)
	if err != nil {
		t.Fatal(err)
	}
	h.v = v
	return h
}

func (h *harness) add(user string, keys ...Key) {
	h.t.Helper()
	for _, k := range keys {
		if err := h.keys.Add(user, k.Public()); err != nil {
			h.t.Fatal(err)
		}
	}
}

// token signs a token for user at time at, bound to req when not nil.
func (h *harness) token(user string, key Key, at time.Time, req *http.Request, opts ...SignerOption) string {
	h.t.Helper()
	opts = append([]SignerOption{WithClock(func() time.Time { return at })}, opts...)
	s, err := NewSigner(user, key, opts...)
	if err != nil {
		h.t.Fatal(err)
	}
	tok, err := s.Sign(context.Background(), req)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

func (h *harness) verify(method, url, authorization string) (*Identity, error) {
	r := httptest.NewRequest(method, url, nil)
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	return h.v.Verify(r)
}

// craft signs arbitrary header and claims JSON with key, for tokens a
// well-behaved Signer never makes.
func craft(t testing.TB, key Key, alg Algorithm, header, claims string) string {
	t.Helper()
	in := b64url(header) + "." + b64url(claims)
	sig, err := key.SignJWS(context.Background(), alg, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func claimsAt(user string, at time.Time, nonce string) string {
	return fmt.Sprintf(`{"username":%q,"time":%d,"nonce":%q}`, user, at.Unix(), nonce)
}

// TestOriginalLibraryCases are the Python library's own tests, in Go.
func TestOriginalLibraryCases(t *testing.T) {
	k := loadTestKeys(t)
	t.Run("round trip", func(t *testing.T) {
		h := newHarness(t)
		h.add("guido", k.rsa)
		id, err := h.verify("GET", "http://example.com/", "JWT "+h.token("guido", k.rsa, h.now, nil))
		if err != nil {
			t.Fatal(err)
		}
		if id.Username != "guido" || id.Algorithm != RS512 {
			t.Fatalf("identity %+v", id)
		}
	})
	t.Run("wrong key, both directions", func(t *testing.T) {
		h := newHarness(t)
		h.add("a", k.rsa)
		h.add("b", k.rsa2)
		for user, key := range map[string]Key{"a": k.rsa2, "b": k.rsa} {
			_, err := h.verify("GET", "http://example.com/", "JWT "+h.token(user, key, h.now, nil))
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("user %s: err = %v, want ErrBadSignature", user, err)
			}
		}
	})
	t.Run("time window", func(t *testing.T) {
		for _, tt := range []struct {
			offset time.Duration
			want   error
		}{
			{-20 * time.Second, nil}, {20 * time.Second, nil}, {0, nil},
			{-21 * time.Second, ErrStale}, {21 * time.Second, ErrStale},
		} {
			t.Run(tt.offset.String(), func(t *testing.T) {
				h := newHarness(t)
				h.add("guido", k.ed)
				_, err := h.verify("GET", "http://example.com/", "JWT "+h.token("guido", k.ed, h.now.Add(tt.offset), nil))
				if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
			})
		}
	})
	t.Run("reused nonce", func(t *testing.T) {
		h := newHarness(t)
		h.add("guido", k.ed)
		auth := "JWT " + h.token("guido", k.ed, h.now, nil)
		if _, err := h.verify("GET", "http://example.com/", auth); err != nil {
			t.Fatal(err)
		}
		h.now = h.now.Add(19 * time.Second) // still inside the window
		if _, err := h.verify("GET", "http://example.com/", auth); !errors.Is(err, ErrReplay) {
			t.Fatalf("err = %v, want ErrReplay", err)
		}
	})
}

// TestInteropPythonTokens checks the tokens made by the original library.
func TestInteropPythonTokens(t *testing.T) {
	pub := readInteropKey(t)
	for _, name := range []string{"seed-default.jwt", "seed-float-nonce.jwt", "seed-int-time-string-nonce.jwt"} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile("testdata/interop/" + name)
			if err != nil {
				t.Fatal(err)
			}
			tok := strings.TrimSpace(string(raw))
			h := newHarness(t)
			h.now = time.Unix(1763784010, 0)
			if err := h.keys.Add("guido", pub); err != nil {
				t.Fatal(err)
			}
			id, err := h.verify("POST", "http://example.com/api", "JWT "+tok)
			if err != nil {
				t.Fatalf("Python token refused: %v", err)
			}
			if id.Username != "guido" || id.Algorithm != RS512 {
				t.Fatalf("identity %+v", id)
			}
			if _, err := h.verify("POST", "http://example.com/api", "jwt "+tok); !errors.Is(err, ErrReplay) {
				t.Fatalf("replay: err = %v, want ErrReplay", err)
			}
			real := newHarness(t)
			real.now = time.Now()
			real.keys.Add("guido", pub)
			if _, err := real.verify("GET", "http://example.com/", "JWT "+tok); !errors.Is(err, ErrStale) {
				t.Fatalf("with the real clock: err = %v, want ErrStale", err)
			}
		})
	}
}

func readInteropKey(t testing.TB) crypto.PublicKey {
	t.Helper()
	data, err := os.ReadFile("testdata/interop/guido.pub.ssh")
	if err != nil {
		t.Fatalf("interop vectors: %v", err)
	}
	keys, skipped := ParsePublicKeys(data)
	if len(keys) != 1 || len(skipped) != 0 {
		t.Fatalf("guido.pub.ssh: %d keys, %v", len(keys), skipped)
	}
	return keys[0].Key
}

func TestConcurrentReplayExactlyOneSucceeds(t *testing.T) {
	k := loadTestKeys(t)
	h := newHarness(t)
	h.add("svc", k.ed)
	srv := httptest.NewServer(h.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/x", nil)
	auth := "JWT " + h.token("svc", k.ed, h.now, req)

	var ok, replay atomic.Int32
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _ := http.NewRequest("GET", srv.URL+"/x", nil)
			r.Header.Set("Authorization", auth)
			resp, err := srv.Client().Do(r)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			switch {
			case resp.StatusCode == 200:
				ok.Add(1)
			case resp.Header.Get("WWW-Authenticate") == `JWT error="replay"`:
				replay.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || replay.Load() != 99 {
		t.Fatalf("%d successes and %d replays, want 1 and 99", ok.Load(), replay.Load())
	}
}

func TestBadSignatureFloodLeavesNonceStoreEmpty(t *testing.T) {
	k := loadTestKeys(t)
	h := newHarness(t)
	h.add("svc", k.ed)
	for i := range 500 {
		tok := h.token("svc", k.p256, h.now, nil) // a key the user does not have
		if i%2 == 0 {
			tok = craft(t, k.p256, ES256, `{"alg":"EdDSA"}`, claimsAt("svc", h.now, fmt.Sprint("n", i)))
		}
		if _, err := h.verify("GET", "http://example.com/", "JWT "+tok); err == nil {
			t.Fatal("bad signature accepted")
		}
	}
	if n := h.nonces.Len(); n != 0 {
		t.Fatalf("nonce store holds %d entries after a flood of bad signatures", n)
	}
}

// TestSecurityTable turns SECURITY.md's verifier rows into table tests.
func TestSecurityTable(t *testing.T) {
	k := loadTestKeys(t)
	now := testNow
	good := func(extra string) string {
		return fmt.Sprintf(`{"username":"alice","time":%d,"nonce":"n-%d"%s}`, now.Unix(), time.Now().UnixNano(), extra)
	}
	edHdr := `{"alg":"EdDSA","typ":"JWT"}`
	huge := strings.Repeat("A", 1<<20)
	type tc struct {
		name string
		auth func(h *harness) string // Authorization header value ("" = none)
		want error
	}
	signed := func(key Key, alg Algorithm, header, claims string) func(*harness) string {
		return func(h *harness) string { return "JWT " + craft(t, key, alg, header, claims) }
	}
	tests := []tc{
		// V1: header and scheme.
		{"V1 no header", func(*harness) string { return "" }, ErrNoToken},
		{"V1 bearer", func(h *harness) string { return "Bearer " + h.token("alice", k.ed, now, nil) }, ErrNoToken},
		{"V1 basic", func(*harness) string { return "Basic YWxpY2U6cHc=" }, ErrNoToken},
		{"V1 lower-case jwt accepted", func(h *harness) string { return "jwt " + h.token("alice", k.ed, now, nil) }, nil},
		{"V1 mixed-case Jwt accepted", func(h *harness) string { return "Jwt " + h.token("alice", k.ed, now, nil) }, nil},
		// V2: size before parsing.
		{"V2 huge header", func(*harness) string { return "JWT " + huge }, ErrTokenTooLarge},
		{"V2 mostly dots", func(*harness) string { return "JWT " + strings.Repeat(".", 1<<20) }, ErrTokenTooLarge},
		{"V2 dots under the cap", func(*harness) string { return "JWT " + strings.Repeat(".", 4000) }, ErrMalformed},
		// V3: strict compact form.
		{"V3 two segments", func(*harness) string { return "JWT " + b64url(edHdr) + "." + b64url(good("")) }, ErrMalformed},
		{"V3 four segments", func(h *harness) string { return "JWT " + h.token("alice", k.ed, now, nil) + ".AAAA" }, ErrMalformed},
		{"V3 empty signature", func(*harness) string { return "JWT " + b64url(edHdr) + "." + b64url(good("")) + "." }, ErrMalformed},
		{"V3 empty header", func(*harness) string { return "JWT ." + b64url(good("")) + ".AAAA" }, ErrMalformed},
		{"V3 padding", func(h *harness) string {
			tok := h.token("alice", k.ed, now, nil)
			return "JWT " + tok + "=="
		}, ErrMalformed},
		{"V3 standard base64 alphabet", func(*harness) string { return "JWT " + "eyJ+" + "." + b64url(good("")) + ".AA/A" }, ErrMalformed},
		{"V3 JSON serialisation", func(*harness) string { return `JWT {"payload":"x","signatures":[]}` }, ErrMalformed},
		{"V3 token only spaces", func(*harness) string { return "JWT    " }, ErrMalformed},
		// V4: JSON shape.
		{"V4 header not an object", signed(k.ed, EdDSA, `["EdDSA"]`, good("")), ErrMalformed},
		{"V4 claims not an object", signed(k.ed, EdDSA, edHdr, `"alice"`), ErrMalformed},
		{"V4 claims deeply nested", signed(k.ed, EdDSA, edHdr, good(`,"x":`+strings.Repeat("[", 100)+strings.Repeat("]", 100))), ErrMalformed},
		{"V4 duplicate username", signed(k.ed, EdDSA, edHdr, good(`,"username":"mallory"`)), ErrMalformed},
		{"V4 case-variant Username", signed(k.ed, EdDSA, edHdr, good(`,"Username":"mallory"`)), ErrMalformed},
		{"V4 duplicate alg", signed(k.ed, EdDSA, `{"alg":"EdDSA","alg":"none"}`, good("")), ErrMalformed},
		{"V4 trailing data", signed(k.ed, EdDSA, edHdr, good("")+"{}"), ErrMalformed},
		{"V4 invalid UTF-8", signed(k.ed, EdDSA, edHdr, good(",\"x\":\"\xff\"")), ErrMalformed},
		// V5: algorithm.
		{"V5 none", signed(k.ed, EdDSA, `{"alg":"none"}`, good("")), ErrBadAlgorithm},
		{"V5 NoNe", signed(k.ed, EdDSA, `{"alg":"NoNe"}`, good("")), ErrBadAlgorithm},
		{"V5 HS256", signed(k.ed, EdDSA, `{"alg":"HS256"}`, good("")), ErrBadAlgorithm},
		{"V5 missing", signed(k.ed, EdDSA, `{"typ":"JWT"}`, good("")), ErrBadAlgorithm},
		{"V5 unknown", signed(k.ed, EdDSA, `{"alg":"XY999"}`, good("")), ErrBadAlgorithm},
		{"V5 not a string", signed(k.ed, EdDSA, `{"alg":256}`, good("")), ErrBadAlgorithm},
		{"V5 lower-case eddsa", signed(k.ed, EdDSA, `{"alg":"eddsa"}`, good("")), ErrBadAlgorithm},
		// V6: algorithm must fit the stored key.
		{"V6 ES256 on an Ed25519 user", signed(k.p256, ES256, `{"alg":"ES256"}`, good("")), ErrBadAlgorithm},
		{"V6 RS512 on an Ed25519 user", signed(k.rsa, RS512, `{"alg":"RS512"}`, good("")), ErrBadAlgorithm},
		// V7: keys from elsewhere.
		{"V7 jku", signed(k.ed, EdDSA, `{"alg":"EdDSA","jku":"http://169.254.169.254/"}`, good("")), ErrBadHeader},
		{"V7 x5u", signed(k.ed, EdDSA, `{"alg":"EdDSA","x5u":"http://evil/"}`, good("")), ErrBadHeader},
		{"V7 jwk", signed(k.ed, EdDSA, `{"alg":"EdDSA","jwk":{"kty":"OKP"}}`, good("")), ErrBadHeader},
		{"V7 x5c", signed(k.ed, EdDSA, `{"alg":"EdDSA","x5c":["MII"]}`, good("")), ErrBadHeader},
		{"V7 crit", signed(k.ed, EdDSA, `{"alg":"EdDSA","crit":["exp"]}`, good("")), ErrBadHeader},
		{"V7 typ other", signed(k.ed, EdDSA, `{"alg":"EdDSA","typ":"dpop+jwt"}`, good("")), ErrBadHeader},
		{"V7 kid of nothing falls back", signed(k.ed, EdDSA, `{"alg":"EdDSA","kid":"../../etc/passwd"}`, good("")), nil},
		{"V7 kid not a string", signed(k.ed, EdDSA, `{"alg":"EdDSA","kid":7}`, good("")), ErrMalformed},
		// V8: signatures.
		{"V8 bit flip", func(h *harness) string {
			tok := []byte(h.token("alice", k.ed, now, nil))
			tok[len(tok)-5] ^= 1
			return "JWT " + string(tok)
		}, nil}, // decided below: either malformed base64 or bad signature
		{"V8 other key", func(h *harness) string { return "JWT " + h.token("alice", k.ed2, now, nil) }, ErrBadSignature},
		{"V8 spliced claims", func(h *harness) string {
			a := strings.Split(h.token("alice", k.ed, now, nil), ".")
			b := strings.Split(h.token("alice", k.ed, now.Add(time.Second), nil), ".")
			return "JWT " + a[0] + "." + b[1] + "." + a[2]
		}, ErrBadSignature},
		{"V8 ECDSA r=s=0", func(h *harness) string {
			return "JWT " + b64url(`{"alg":"ES256"}`) + "." + b64url(strings.Replace(good(""), "alice", "carol", 1)) + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64))
		}, ErrBadSignature},
		{"V8 ECDSA short signature", func(h *harness) string {
			return "JWT " + b64url(`{"alg":"ES256"}`) + "." + b64url(strings.Replace(good(""), "alice", "carol", 1)) + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 63))
		}, ErrBadSignature},
		// V9: username.
		{"V9 missing", signed(k.ed, EdDSA, edHdr, fmt.Sprintf(`{"time":%d,"nonce":"x"}`, now.Unix())), ErrBadClaims},
		{"V9 not a string", signed(k.ed, EdDSA, edHdr, fmt.Sprintf(`{"username":7,"time":%d,"nonce":"x"}`, now.Unix())), ErrBadClaims},
		{"V9 very long", signed(k.ed, EdDSA, edHdr, claimsAt(strings.Repeat("a", 300), now, "x")), ErrBadClaims},
		{"V9 control characters", signed(k.ed, EdDSA, edHdr, fmt.Sprintf(`{"username":"al\nice","time":%d,"nonce":"x"}`, now.Unix())), ErrBadClaims},
		{"V9 unknown user", signed(k.ed, EdDSA, edHdr, claimsAt("nobody", now, "x")), ErrUnknownUser},
		// V10: time.
		{"V10 missing", signed(k.ed, EdDSA, edHdr, `{"username":"alice","nonce":"x"}`), ErrBadClaims},
		{"V10 string", signed(k.ed, EdDSA, edHdr, fmt.Sprintf(`{"username":"alice","time":"%d","nonce":"x"}`, now.Unix())), ErrBadClaims},
		{"V10 bool", signed(k.ed, EdDSA, edHdr, `{"username":"alice","time":true,"nonce":"x"}`), ErrBadClaims},
		{"V10 null", signed(k.ed, EdDSA, edHdr, `{"username":"alice","time":null,"nonce":"x"}`), ErrBadClaims},
		{"V10 negative", signed(k.ed, EdDSA, edHdr, `{"username":"alice","time":-1,"nonce":"x"}`), ErrStale},
		{"V10 1e300", signed(k.ed, EdDSA, edHdr, `{"username":"alice","time":1e300,"nonce":"x"}`), ErrStale},
		{"V10 1e999 overflows", signed(k.ed, EdDSA, edHdr, `{"username":"alice","time":1e999,"nonce":"x"}`), ErrBadClaims},
		{"V10 float now", signed(k.ed, EdDSA, edHdr, fmt.Sprintf(`{"username":"alice","time":%d.75,"nonce":"f"}`, now.Unix())), nil},
		// V11: nonce.
		{"V11 missing", signed(k.ed, EdDSA, edHdr, fmt.Sprintf(`{"username":"alice","time":%d}`, now.Unix())), ErrBadClaims},
		{"V11 empty", signed(k.ed, EdDSA, edHdr, claimsAt("alice", now, "")), ErrBadClaims},
		{"V11 null", signed(k.ed, EdDSA, edHdr, fmt.Sprintf(`{"username":"alice","time":%d,"nonce":null}`, now.Unix())), ErrBadClaims},
		{"V11 huge", signed(k.ed, EdDSA, edHdr, claimsAt("alice", now, strings.Repeat("n", 1000))), ErrBadClaims},
		{"V11 object", signed(k.ed, EdDSA, edHdr, fmt.Sprintf(`{"username":"alice","time":%d,"nonce":{}}`, now.Unix())), ErrBadClaims},
		{"V11 numeric (original client)", signed(k.ed, EdDSA, edHdr, fmt.Sprintf(`{"username":"alice","time":%d,"nonce":0.25}`, now.Unix())), nil},
		// V13: binding.
		{"V13 method", func(h *harness) string {
			return "JWT " + h.token("alice", k.ed, now, httptest.NewRequest("POST", "http://api.example.com/v1/items", nil))
		}, ErrBinding},
		{"V13 scheme", func(h *harness) string {
			return "JWT " + h.token("alice", k.ed, now, httptest.NewRequest("GET", "https://api.example.com/v1/items", nil))
		}, ErrBinding},
		{"V13 host", func(h *harness) string {
			return "JWT " + h.token("alice", k.ed, now, httptest.NewRequest("GET", "http://other.example.com/v1/items", nil))
		}, ErrBinding},
		{"V13 path", func(h *harness) string {
			return "JWT " + h.token("alice", k.ed, now, httptest.NewRequest("GET", "http://api.example.com/v1/admin", nil))
		}, ErrBinding},
		{"V13 query and fragment ignored", func(h *harness) string {
			return "JWT " + h.token("alice", k.ed, now, httptest.NewRequest("GET", "http://API.example.com:80/v1/items?a=1#frag", nil))
		}, nil},
		{"V13 htu not a URL", signed(k.ed, EdDSA, edHdr, good(`,"htm":"GET","htu":"::"`)), ErrBinding},
		// V14: registered claims can narrow, never widen, the window.
		{"V14 exp far ahead, time stale", signed(k.ed, EdDSA, edHdr, fmt.Sprintf(`{"username":"alice","time":%d,"nonce":"e","exp":%d}`, now.Unix()-60, now.Unix()+3600)), ErrStale},
		{"V14 exp passed", signed(k.ed, EdDSA, edHdr, good(fmt.Sprintf(`,"exp":%d`, now.Unix()-1))), ErrStale},
		{"V14 nbf ahead", signed(k.ed, EdDSA, edHdr, good(fmt.Sprintf(`,"nbf":%d`, now.Unix()+5))), ErrStale},
		{"V14 iat stale", signed(k.ed, EdDSA, edHdr, good(fmt.Sprintf(`,"iat":%d`, now.Unix()-60))), ErrStale},
		{"V14 exp not a number", signed(k.ed, EdDSA, edHdr, good(`,"exp":"soon"`)), ErrBadClaims},
		{"V14 valid exp nbf iat", signed(k.ed, EdDSA, edHdr, good(fmt.Sprintf(`,"exp":%d,"nbf":%d,"iat":%d`, now.Unix()+10, now.Unix()-10, now.Unix()))), nil},
		{"V14 aud unexpected", signed(k.ed, EdDSA, edHdr, good(`,"aud":"other"`)), ErrBadClaims},
		{"V14 aud wrong type", signed(k.ed, EdDSA, edHdr, good(`,"aud":5`)), ErrBadClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.add("alice", k.ed)
			h.add("carol", k.p256)
			auth := tt.auth(h)
			var id *Identity
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("panic: %v", p)
					}
				}()
				id, err = h.verify("GET", "http://api.example.com/v1/items", auth)
			}()
			if strings.HasPrefix(tt.name, "V8 bit flip") {
				if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v, want ErrBadSignature or ErrMalformed", err)
				}
				return
			}
			if tt.want == nil {
				if err != nil || id == nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if id != nil {
				t.Fatal("identity returned with an error")
			}
			// No part of the token, nor the header, in the error (C5).
			for _, part := range strings.Split(strings.TrimPrefix(auth, "JWT "), ".") {
				if len(part) >= 12 && strings.Contains(err.Error(), part[:12]) {
					t.Fatalf("error %q contains part of the token", err)
				}
			}
		})
	}
}

func TestSecurityAlgorithmMustFitKey(t *testing.T) {
	k := loadTestKeys(t)
	tests := []struct {
		name string
		user Key
		tok  func(h *harness) string
		want error
	}{
		{"V6 ES384 on a P-256 key", k.p256, func(h *harness) string {
			return craft(t, k.p384, ES384, `{"alg":"ES384"}`, claimsAt("u", h.now, "a"))
		}, ErrBadAlgorithm},
		{"V6 ES256 header on a P-384 key", k.p384, func(h *harness) string {
			return craft(t, k.p256, ES256, `{"alg":"ES256"}`, claimsAt("u", h.now, "b"))
		}, ErrBadAlgorithm},
		{"V6 EdDSA on an EC key", k.p256, func(h *harness) string {
			return craft(t, k.ed, EdDSA, `{"alg":"EdDSA"}`, claimsAt("u", h.now, "c"))
		}, ErrBadAlgorithm},
		{"V6 ES256 on an RSA key", k.rsa, func(h *harness) string {
			return craft(t, k.p256, ES256, `{"alg":"ES256"}`, claimsAt("u", h.now, "d"))
		}, ErrBadAlgorithm},
		{"RSA key accepts PS256", k.rsa, func(h *harness) string {
			return h.token("u", k.rsa, h.now, nil, WithAlgorithm(PS256))
		}, nil},
		{"RSA key accepts RS256", k.rsa, func(h *harness) string {
			return h.token("u", k.rsa, h.now, nil, WithAlgorithm(RS256))
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.add("u", tt.user)
			_, err := h.verify("GET", "http://x/", "JWT "+tt.tok(h))
			if (tt.want == nil && err != nil) || !errors.Is(err, tt.want) && tt.want != nil {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("allow-list", func(t *testing.T) {
		h := newHarness(t, WithAlgorithms(RS512))
		h.add("u", k.rsa)
		if _, err := h.verify("GET", "http://x/", "JWT "+h.token("u", k.rsa, h.now, nil, WithAlgorithm(PS256))); !errors.Is(err, ErrBadAlgorithm) {
			t.Fatalf("PS256 outside the allow-list: err = %v", err)
		}
		if _, err := h.verify("GET", "http://x/", "JWT "+h.token("u", k.rsa, h.now, nil)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestKidSelectsAmongTheUsersKeys(t *testing.T) {
	k := loadTestKeys(t)
	h := newHarness(t)
	h.add("alice", k.ed, k.p256)
	h.add("bob", k.rsa)
	bobKid, _ := Fingerprint(k.rsa.Public())
	aliceEdKid, _ := Fingerprint(k.ed.Public())
	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"kid of the signing key", h.token("alice", k.p256, h.now, nil), nil},
		{"kid of another key of the user: only that key is tried", craft(t, k.p256, ES256, `{"alg":"ES256","kid":"`+aliceEdKid+`"}`, claimsAt("alice", h.now, "1")), ErrBadAlgorithm},
		{"kid of another user's key falls back to the user's own", craft(t, k.p256, ES256, `{"alg":"ES256","kid":"`+bobKid+`"}`, claimsAt("alice", h.now, "2")), nil},
		{"bob's key never tried for alice", craft(t, k.rsa, RS512, `{"alg":"RS512","kid":"`+bobKid+`"}`, claimsAt("alice", h.now, "3")), ErrBadAlgorithm},
		{"no kid tries all", craft(t, k.ed, EdDSA, `{"alg":"EdDSA"}`, claimsAt("alice", h.now, "4")), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.verify("GET", "http://x/", "JWT "+tt.tok)
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestReplayRules(t *testing.T) {
	k := loadTestKeys(t)
	h := newHarness(t)
	h.add("alice", k.ed)
	h.add("bob", k.p256)
	same := func(user string, key Key, alg Algorithm, at time.Time) string {
		return "JWT " + craft(t, key, alg, fmt.Sprintf(`{"alg":%q}`, alg), claimsAt(user, at, "fixed-nonce"))
	}
	steps := []struct {
		name string
		auth string
		want error
	}{
		{"first use", same("alice", k.ed, EdDSA, h.now), nil},
		{"same nonce, another time", same("alice", k.ed, EdDSA, h.now.Add(time.Second)), ErrReplay},
		{"same nonce, another user", same("bob", k.p256, ES256, h.now), nil},
	}
	for _, st := range steps {
		_, err := h.verify("GET", "http://x/", st.auth)
		if (st.want == nil) != (err == nil) || (st.want != nil && !errors.Is(err, st.want)) {
			t.Fatalf("%s: err = %v, want %v", st.name, err, st.want)
		}
	}
	// Once the token can no longer pass the time check, its nonce may go.
	h.now = h.now.Add(45 * time.Second)
	if _, err := h.verify("GET", "http://x/", same("alice", k.ed, EdDSA, h.now)); err != nil {
		t.Fatalf("nonce reused after its window: %v", err)
	}
}

func TestRequireBinding(t *testing.T) {
	k := loadTestKeys(t)
	h := newHarness(t, WithRequireBinding())
	h.add("alice", k.ed)
	if _, err := h.verify("GET", "http://x/", "JWT "+h.token("alice", k.ed, h.now, nil)); !errors.Is(err, ErrBinding) {
		t.Fatalf("unbound token: err = %v, want ErrBinding", err)
	}
	req := httptest.NewRequest("DELETE", "http://x/items/1", nil)
	if _, err := h.verify("DELETE", "http://x/items/1", "JWT "+h.token("alice", k.ed, h.now, req)); err != nil {
		t.Fatal(err)
	}
}

func TestPublicURL(t *testing.T) {
	k := loadTestKeys(t)
	h := newHarness(t, WithPublicURL("https://api.example.com"))
	h.add("alice", k.ed)
	out := httptest.NewRequest("GET", "https://api.example.com/v1", nil)
	// Behind a proxy the server sees plain HTTP on an internal host.
	if _, err := h.verify("GET", "http://10.0.0.7:8080/v1", "JWT "+h.token("alice", k.ed, h.now, out)); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyToken(t *testing.T) {
	k := loadTestKeys(t)
	bound := httptest.NewRequest("POST", "https://api.example.com/v1/run?x=1", nil)
	tests := []struct {
		name           string
		req            *http.Request
		prefix         string
		method, target string
		want           error
	}{
		{"unbound, nothing asked", nil, "", "", "", nil},
		{"with JWT prefix", nil, "JWT ", "", "", nil},
		{"bound, nothing asked: reported, not checked", bound, "", "", "", nil},
		{"bound, matching", bound, "", "POST", "https://API.example.com:443/v1/run", nil},
		{"bound, wrong method", bound, "", "GET", "", ErrBinding},
		{"bound, wrong url", bound, "", "", "https://api.example.com/v2/run", ErrBinding},
		{"unbound, method asked", nil, "", "POST", "", ErrBinding},
		{"unbound, url asked", nil, "", "", "https://api.example.com/", ErrBinding},
		{"bad target", nil, "", "", "not a url", ErrBinding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.add("alice", k.ed)
			_, err := h.v.VerifyToken(context.Background(), tt.prefix+h.token("alice", k.ed, h.now, tt.req), tt.method, tt.target)
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// failingNonces is a nonce store that cannot answer.
type failingNonces struct{}

func (failingNonces) Use(context.Context, string, string, time.Duration) error {
	return errors.New("connection refused")
}

// failingKeys is a key store that cannot answer.
type failingKeys struct{}

func (failingKeys) PublicKeys(context.Context, string) ([]PublicKey, error) {
	return nil, errors.New("database down")
}

func TestMiddleware(t *testing.T) {
	k := loadTestKeys(t)
	var logs bytes.Buffer
	var hooked []error
	var used []string
	h := newHarness(t,
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		WithErrorHook(func(_ *http.Request, err error) { hooked = append(hooked, err) }),
		WithSuccessHook(func(r *http.Request, id *Identity) { used = append(used, id.Username+" "+id.Key.Fingerprint) }))
	h.add("alice", k.ed)
	handler := h.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := IdentityFrom(r.Context())
		if !ok {
			t.Error("no identity in context")
			return
		}
		io.WriteString(w, "hello "+id.Username)
	}))

	tok := h.token("alice", k.ed, h.now, nil)
	for i, want := range []struct {
		status int
		body   string
		kind   string
	}{
		{200, "hello alice", ""},
		{401, "unauthorized\n", `JWT error="replay"`},
	} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "http://x/", nil)
		r.Header.Set("Authorization", "JWT "+tok)
		handler.ServeHTTP(rec, r)
		if rec.Code != want.status || rec.Body.String() != want.body || rec.Header().Get("WWW-Authenticate") != want.kind {
			t.Fatalf("request %d: %d %q %q", i, rec.Code, rec.Body.String(), rec.Header().Get("WWW-Authenticate"))
		}
		if want.status == 401 && rec.Header().Get("Date") != h.now.Format(http.TimeFormat) {
			t.Fatalf("Date = %q, want the verifier's clock", rec.Header().Get("Date"))
		}
	}
	if len(hooked) != 1 || !errors.Is(hooked[0], ErrReplay) {
		t.Fatalf("hook saw %v", hooked)
	}
	if len(used) != 1 || !strings.HasPrefix(used[0], "alice SHA256:") {
		t.Fatalf("key-used callback saw %v", used)
	}
	if strings.Contains(logs.String(), tok) || strings.Contains(logs.String(), strings.Split(tok, ".")[2]) {
		t.Fatal("the log holds the token")
	}
	if !strings.Contains(logs.String(), "kind=replay") {
		t.Fatalf("log %q lacks the kind", logs.String())
	}

	t.Run("stores that cannot answer fail closed", func(t *testing.T) {
		for name, opts := range map[string][]VerifierOption{
			"nonce store": {WithNonceStore(failingNonces{})},
		} {
			hh := newHarness(t, opts...)
			hh.add("alice", k.ed)
			assertUnavailable(t, name, hh.v, hh.token("alice", k.ed, hh.now, nil))
		}
		v, err := NewVerifier(failingKeys{}, WithClock(func() time.Time { return testNow }))
		if err != nil {
			t.Fatal(err)
		}
		assertUnavailable(t, "key store", v, h.token("alice", k.ed, testNow, nil))
	})
}

func assertUnavailable(t *testing.T, name string, v *Verifier, tok string) {
	t.Helper()
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "http://x/", nil)
	r.Header.Set("Authorization", "JWT "+tok)
	v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Fatalf("%s: request accepted", name)
	})).ServeHTTP(rec, r)
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" || rec.Header().Get("WWW-Authenticate") != `JWT error="unavailable"` {
		t.Fatalf("%s: %d %v", name, rec.Code, rec.Header())
	}
}

func TestErrorKind(t *testing.T) {
	for err, want := range map[error]string{
		ErrNoToken: "no_token", ErrTokenTooLarge: "too_large", ErrMalformed: "malformed",
		ErrBadHeader: "bad_header", ErrBadAlgorithm: "bad_algorithm", ErrBadClaims: "bad_claims",
		ErrUnknownUser: "invalid_signature", ErrBadSignature: "invalid_signature", ErrStale: "stale",
		ErrReplay: "replay", ErrBinding: "binding", ErrUnavailable: "unavailable",
		errors.New("other"): "invalid_token", fmt.Errorf("wrapped: %w", ErrStale): "stale",
	} {
		if got := ErrorKind(err); got != want {
			t.Errorf("ErrorKind(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestIdentityClaims(t *testing.T) {
	k := loadTestKeys(t)
	h := newHarness(t)
	h.add("alice", k.ed)
	id, err := h.verify("GET", "http://x/", "JWT "+h.token("alice", k.ed, h.now, nil, WithClaims(map[string]any{"role": "batch"})))
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(id.Claims, &claims); err != nil || claims["role"] != "batch" {
		t.Fatalf("claims %s: %v", id.Claims, err)
	}
	if !id.Time.Equal(h.now) || id.Nonce == "" || id.Key.Fingerprint == "" {
		t.Fatalf("identity %+v", id)
	}
}

func FuzzVerifyAuthorization(f *testing.F) {
	k := loadTestKeys(f)
	h := newHarness(f)
	h.add("alice", k.ed)
	f.Add("JWT " + h.token("alice", k.ed, h.now, nil))
	f.Add("JWT " + craft(f, k.ed, EdDSA, `{"alg":"EdDSA","kid":"x"}`, `{"username":"alice","time":1.5e9,"nonce":0.5,"aud":["a"]}`))
	f.Add("jwt a.b.c")
	f.Add("JWT " + strings.Repeat(".", 100))
	f.Fuzz(func(t *testing.T, auth string) {
		r := httptest.NewRequest("GET", "http://x/", nil)
		r.Header.Set("Authorization", auth)
		id, err := h.v.Verify(r)
		if (id == nil) == (err == nil) {
			t.Fatalf("Verify returned %v and %v", id, err)
		}
		if err != nil && ErrorKind(err) == "invalid_token" {
			t.Fatalf("error without a kind: %v", err)
		}
	})
}

// TestWithHostsStopsHostHeaderReplay: a service that received a client's
// token cannot present it here under its own name in Host.
func TestWithHostsStopsHostHeaderReplay(t *testing.T) {
	k := loadTestKeys(t)
	forM := httptest.NewRequest("POST", "https://m.example/transfer", nil)
	forA := httptest.NewRequest("POST", "https://a.example/transfer", nil)
	tests := []struct {
		name   string
		opts   []VerifierOption
		bound  *http.Request
		target string // the URL the request arrives at (its Host)
		want   error
	}{
		{"default believes Host (documented)", nil, forM, "https://m.example/transfer", nil},
		{"WithHosts refuses another Host", []VerifierOption{WithHosts("a.example")}, forM, "https://m.example/transfer", ErrBinding},
		{"WithHosts refuses a token for another host", []VerifierOption{WithHosts("a.example")}, forM, "https://a.example/transfer", ErrBinding},
		{"WithHosts accepts its own", []VerifierOption{WithHosts("A.example:443")}, forA, "https://a.example/transfer", nil},
		{"WithHosts, unbound token", []VerifierOption{WithHosts("a.example")}, nil, "https://m.example/transfer", nil},
		{"WithPublicURL refuses another Host", []VerifierOption{WithPublicURL("https://a.example")}, forM, "https://m.example/transfer", ErrBinding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.opts...)
			h.add("alice", k.ed)
			_, err := h.verify("POST", tt.target, "JWT "+h.token("alice", k.ed, h.now, tt.bound))
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "a.example/x", "a b"} {
		if _, err := NewVerifier(NewMemoryKeyStore(), WithHosts(bad)); err == nil {
			t.Errorf("WithHosts(%q) accepted", bad)
		}
	}
}

// TestAlgorithmMismatchDoesNotRevealUsers: a known user whose keys do not
// fit the token's algorithm looks, on the wire, like an unknown user.
func TestAlgorithmMismatchDoesNotRevealUsers(t *testing.T) {
	k := loadTestKeys(t)
	h := newHarness(t)
	h.add("alice", k.ed)
	known, err1 := h.verify("GET", "http://x/", "JWT "+h.token("alice", k.p256, h.now, nil))
	unknown, err2 := h.verify("GET", "http://x/", "JWT "+h.token("nobody", k.p256, h.now, nil))
	if known != nil || unknown != nil {
		t.Fatal("accepted")
	}
	if !errors.Is(err1, ErrBadAlgorithm) || !errors.Is(err2, ErrUnknownUser) {
		t.Fatalf("errors %v and %v", err1, err2)
	}
	if ErrorKind(err1) != ErrorKind(err2) {
		t.Fatalf("kinds %q and %q differ", ErrorKind(err1), ErrorKind(err2))
	}
}

func TestLineBreakInTokenIsMalformed(t *testing.T) {
	k := loadTestKeys(t)
	h := newHarness(t)
	h.add("alice", k.ed)
	tok := h.token("alice", k.ed, h.now, nil)
	for _, brk := range []string{"\n", "\r", "\r\n"} {
		i := strings.IndexByte(tok, '.') + 5
		if _, err := h.v.VerifyToken(context.Background(), tok[:i]+brk+tok[i:], "", ""); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%q: err = %v, want ErrMalformed", brk, err)
		}
	}
}

// ttlRecorder records the TTLs a verifier asks a nonce store for.
type ttlRecorder struct{ ttls []time.Duration }

func (r *ttlRecorder) Use(_ context.Context, _, _ string, ttl time.Duration) error {
	r.ttls = append(r.ttls, ttl)
	return nil
}

// TestNonceTTLCoversFleetClocks: a nonce is kept long enough for another
// verifier whose clock lags by up to the window.
func TestNonceTTLCoversFleetClocks(t *testing.T) {
	k := loadTestKeys(t)
	rec := &ttlRecorder{}
	h := newHarness(t, WithNonceStore(rec))
	h.add("alice", k.ed)
	for _, age := range []time.Duration{0, 20 * time.Second, -20 * time.Second} {
		if _, err := h.verify("GET", "http://x/", "JWT "+h.token("alice", k.ed, h.now.Add(-age), nil)); err != nil {
			t.Fatal(err)
		}
	}
	// The token stays acceptable somewhere in the fleet until time+2*skew
	// by the clock of a verifier running a whole window behind this one.
	for i, age := range []time.Duration{0, 20 * time.Second, -20 * time.Second} {
		if min := 2*DefaultMaxSkew - age; rec.ttls[i] < min {
			t.Errorf("token aged %v: ttl %v, want at least %v", age, rec.ttls[i], min)
		}
	}
}

// TestRefusalBodyAndHooks: WithErrorBody writes the body, the verifier keeps
// the status and headers (401, and 503 with Retry-After); the hooks see
// the request, and its context, on both paths.
func TestRefusalBodyAndHooks(t *testing.T) {
	k := loadTestKeys(t)
	type ctxKey struct{}
	var gotErr, gotOK []string
	h := newHarness(t,
		WithErrorBody(func(r *http.Request, err error) (string, []byte) {
			return "application/json", []byte(`{"error":"` + ErrorKind(err) + `"}`)
		}),
		WithErrorHook(func(r *http.Request, err error) {
			gotErr = append(gotErr, fmt.Sprint(r.Context().Value(ctxKey{}), " ", ErrorKind(err)))
		}),
		WithSuccessHook(func(r *http.Request, id *Identity) {
			gotOK = append(gotOK, fmt.Sprint(r.Context().Value(ctxKey{}), " ", id.Username))
		}))
	h.add("alice", k.ed)
	handler := h.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	serve := func(auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "http://example.com/", nil)
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, "req-7"))
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		return w
	}

	w := serve("JWT " + h.token("alice", k.ed, h.now, nil))
	if w.Code != 200 {
		t.Fatalf("good token: %d", w.Code)
	}
	w = serve("")
	if w.Code != 401 || w.Body.String() != `{"error":"no_token"}` || w.Header().Get("Content-Type") != "application/json" ||
		w.Header().Get("WWW-Authenticate") != `JWT error="no_token"` || w.Header().Get("Date") == "" {
		t.Fatalf("401: %d %q %v", w.Code, w.Body, w.Header())
	}
	h.nonces.limit = 0 // full: the nonce store cannot record
	w = serve("JWT " + h.token("alice", k.ed, h.now, nil))
	if w.Code != 503 || w.Body.String() != `{"error":"unavailable"}` || w.Header().Get("Retry-After") == "" ||
		w.Header().Get("WWW-Authenticate") != `JWT error="unavailable"` {
		t.Fatalf("503: %d %q %v", w.Code, w.Body, w.Header())
	}
	if strings.Join(gotOK, ",") != "req-7 alice" || strings.Join(gotErr, ",") != "req-7 no_token,req-7 unavailable" {
		t.Fatalf("hooks: ok %q, errors %q", gotOK, gotErr)
	}
}

// TestWithHostsMismatchSaysWhich: a token presented under a Host the
// verifier does not answer to is refused, and the error names the Host that
// came and the hosts expected (api.example.com does not match
// api.example.com:8080).
func TestWithHostsMismatchSaysWhich(t *testing.T) {
	k := loadTestKeys(t)
	h := newHarness(t, WithHosts("api.example.com"))
	h.add("alice", k.ed)
	req := httptest.NewRequest("GET", "http://api.example.com:8080/x", nil)
	tok := h.token("alice", k.ed, h.now, req)
	_, err := h.verify("GET", "http://api.example.com:8080/x", "JWT "+tok)
	if !errors.Is(err, ErrBinding) || !strings.Contains(err.Error(), `"api.example.com:8080"`) || !strings.Contains(err.Error(), "WithHosts: api.example.com") {
		t.Fatalf("err = %v, want ErrBinding naming both hosts", err)
	}
}

// shortKeyStore hands over its user's Ed25519 key cut to 31 bytes, as a
// KeyStore of the caller's could.
type shortKeyStore struct{ pub ed25519.PublicKey }

func (s shortKeyStore) PublicKeys(context.Context, string) ([]PublicKey, error) {
	return []PublicKey{{Key: s.pub[:ed25519.PublicKeySize-1]}}, nil
}

// TestVerifyShortEd25519Key: a malformed key from a KeyStore is a bad
// signature, not a panic in ed25519.Verify.
func TestVerifyShortEd25519Key(t *testing.T) {
	k := loadTestKeys(t)
	v, err := NewVerifier(shortKeyStore{k.ed.Public().(ed25519.PublicKey)}, WithClock(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner("u", k.ed, WithClock(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyToken(context.Background(), tok, "", ""); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("err = %v, want ErrBadSignature", err)
	}
}
