package asymjwt

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestThumbprint checks the test vectors of RFC 7638 §3.1 (RSA) and RFC
// 8037 §A.3 (Ed25519).
func TestThumbprint(t *testing.T) {
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rsaKey := &rsa.PublicKey{
		N: new(big.Int).SetBytes(dec("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")),
		E: 65537,
	}
	tests := []struct {
		name string
		pub  crypto.PublicKey
		want string
	}{
		{"RFC 7638 RSA", rsaKey, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
		{"RFC 8037 Ed25519", ed25519.PublicKey(dec("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Thumbprint(tt.pub)
			if err != nil || got != tt.want {
				t.Fatalf("Thumbprint = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := Thumbprint(&rsa.PublicKey{N: big.NewInt(12345), E: 3}); !errors.Is(err, ErrWeakKey) {
		t.Fatalf("a weak key: %v", err)
	}
}

// TestKeySetRoundTrip: what an Issuer publishes, ParseKeySet reads back,
// key for key.
func TestKeySetRoundTrip(t *testing.T) {
	keys := loadTestKeys(t)
	is, err := NewIssuer("https://issuer.example.com", keys.rsa)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []Key{keys.ed, keys.p256, keys.p384} {
		if err := is.Publish(k.Public()); err != nil {
			t.Fatal(err)
		}
	}
	doc, err := json.Marshal(is.KeySet())
	if err != nil {
		t.Fatal(err)
	}
	got, errs := ParseKeySet("https://issuer.example.com", doc)
	if len(errs) > 0 {
		t.Fatalf("ParseKeySet: %v", errs)
	}
	want := is.KeySet().Keys()
	if len(got.Keys()) != len(want) {
		t.Fatalf("%d keys, want %d", len(got.Keys()), len(want))
	}
	for i, k := range got.Keys() {
		if k.KeyID != want[i].KeyID || k.Algorithm != want[i].Algorithm || !k.Key.(interface{ Equal(crypto.PublicKey) bool }).Equal(want[i].Key) {
			t.Errorf("key %d: %+v, want %+v", i, k, want[i])
		}
		if tp, _ := Thumbprint(k.Key); tp != k.KeyID {
			t.Errorf("key %d: kid %s is not its thumbprint %s", i, k.KeyID, tp)
		}
	}
	srv := httptest.NewServer(is)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "application/jwk-set+json" {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	resp, err = http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST to the JWKS: %s", resp.Status)
	}
}

// TestParseKeySetSkips: keys that cannot verify access tokens are skipped
// with a reason, the others kept.
func TestParseKeySetSkips(t *testing.T) {
	keys := loadTestKeys(t)
	good, _ := json.Marshal(mustKeySet(t, keys.ed))
	goodKey := strings.TrimSuffix(strings.TrimPrefix(string(good), `{"keys":[`), "]}")
	edX := base64.RawURLEncoding.EncodeToString(keys.ed.Public().(ed25519.PublicKey))
	tests := []struct {
		name string
		jwk  string
		want error
	}{
		{"symmetric", `{"kty":"oct","kid":"h","k":"c2VjcmV0"}`, ErrKeyFormat},
		{"private parts", `{"kty":"OKP","crv":"Ed25519","kid":"p","x":"` + edX + `","d":"` + edX + `"}`, ErrKeyFormat},
		{"for encryption", `{"kty":"OKP","crv":"Ed25519","kid":"e","use":"enc","x":"` + edX + `"}`, ErrUnsupportedKey},
		{"key_ops without verify", `{"kty":"OKP","crv":"Ed25519","kid":"o","key_ops":["encrypt"],"x":"` + edX + `"}`, ErrUnsupportedKey},
		{"no kid", `{"kty":"OKP","crv":"Ed25519","x":"` + edX + `"}`, ErrKeyFormat},
		{"X25519", `{"kty":"OKP","crv":"X25519","kid":"x","x":"` + edX + `"}`, ErrUnsupportedKey},
		{"Ed25519 of the wrong size", `{"kty":"OKP","crv":"Ed25519","kid":"s","x":"AAAA"}`, ErrKeyFormat},
		{"alg that does not fit", `{"kty":"OKP","crv":"Ed25519","kid":"a","alg":"RS256","x":"` + edX + `"}`, ErrUnsupportedAlgorithm},
		{"alg HS256", `{"kty":"OKP","crv":"Ed25519","kid":"h2","alg":"HS256","x":"` + edX + `"}`, ErrUnsupportedAlgorithm},
		{"EC point not on the curve", `{"kty":"EC","crv":"P-256","kid":"c","x":"` + strings.Repeat("A", 42) + "E" + `","y":"` + strings.Repeat("A", 42) + "E" + `"}`, ErrKeyFormat},
		{"EC on secp256k1", `{"kty":"EC","crv":"secp256k1","kid":"k","x":"AA","y":"AA"}`, ErrUnsupportedKey},
		{"RSA 1024", `{"kty":"RSA","kid":"r","n":"` + base64.RawURLEncoding.EncodeToString(make([]byte, 128)) + `","e":"AQAB"}`, ErrKeyFormat},
		{"RSA exponent 1", `{"kty":"RSA","kid":"r1","n":"` + base64.RawURLEncoding.EncodeToString(append([]byte{0xc0}, make([]byte, 255)...)) + `","e":"AQ"}`, ErrKeyFormat},
		{"padding in base64", `{"kty":"OKP","crv":"Ed25519","kid":"b","x":"` + edX + `="}`, ErrKeyFormat},
		{"duplicate kid", goodKey, ErrKeyFormat},
		{"case-variant member", `{"kty":"OKP","KTY":"RSA","crv":"Ed25519","kid":"v","x":"` + edX + `"}`, ErrKeyFormat},
		{"not an object", `"key"`, ErrKeyFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := `{"keys":[` + goodKey + `,` + tt.jwk + `]}`
			s, errs := ParseKeySet("https://i.example.com", []byte(doc))
			if s == nil || len(s.Keys()) != 1 {
				t.Fatalf("kept %v, want the good key only", s)
			}
			if len(errs) != 1 || !errors.Is(errs[0], tt.want) {
				t.Fatalf("errors %v, want one wrapping %v", errs, tt.want)
			}
		})
	}
	for _, doc := range []string{``, `[]`, `{"keys":{}}`, `{"keys":[],"keys":[]}`, `{"Keys":[]}`, `{"keys":[1,]}`} {
		if s, errs := ParseKeySet("https://i.example.com", []byte(doc)); (s != nil && len(s.Keys()) > 0) || (doc != `{"Keys":[]}` && len(errs) == 0) {
			t.Errorf("ParseKeySet(%q) = %v, %v", doc, s, errs)
		}
	}
}

func mustKeySet(t testing.TB, keys ...Key) *KeySet {
	t.Helper()
	var pubs []crypto.PublicKey
	for _, k := range keys {
		pubs = append(pubs, k.Public())
	}
	s, err := NewKeySet("https://i.example.com", pubs...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func FuzzParseKeySet(f *testing.F) {
	keys := loadTestKeys(f)
	for _, k := range []Key{keys.ed, keys.p256, keys.rsa} {
		doc, _ := json.Marshal(mustKeySet(f, k))
		f.Add(doc)
	}
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"AA","y":"AA"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, _ := ParseKeySet("https://i.example.com", data)
		if s == nil {
			return
		}
		for _, k := range s.Keys() {
			if err := checkPublicKey(k.Key); err != nil || k.KeyID == "" {
				t.Fatalf("kept a key that does not pass: %+v, %v", k, err)
			}
		}
	})
}

// jwksServer serves a JWK set that a test can change, counting fetches.
type jwksServer struct {
	srv     *httptest.Server
	doc     atomic.Pointer[[]byte]
	fetches atomic.Int32
	status  atomic.Int32
}

func newJWKSServer(t testing.TB, keys ...Key) *jwksServer {
	s := &jwksServer{}
	s.set(t, keys...)
	s.status.Store(http.StatusOK)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		w.WriteHeader(int(s.status.Load()))
		w.Write(*s.doc.Load())
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *jwksServer) set(t testing.TB, keys ...Key) {
	doc, _ := json.Marshal(mustKeySet(t, keys...))
	s.doc.Store(&doc)
}

// TestRemoteKeySet: keys are fetched on first use, cached, fetched again
// for an unknown kid at most once per interval, and after their maximum
// age; a fetch that fails leaves fresh keys in use and fails closed with
// none.
func TestRemoteKeySet(t *testing.T) {
	keys := loadTestKeys(t)
	js := newJWKSServer(t, keys.ed)
	var now atomic.Int64
	now.Store(testNow.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	advance := func(d time.Duration) { now.Add(int64(d)) }
	rs, err := NewRemoteKeySet("https://i.example.com", js.srv.URL, WithClock(clock), WithRefreshInterval(time.Minute), WithMaxKeyAge(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	edKid, _ := Thumbprint(keys.ed.Public())
	p256Kid, _ := Thumbprint(keys.p256.Public())
	lookup := func(kid string) (bool, error) {
		_, ok, err := rs.IssuerKey(t.Context(), kid)
		return ok, err
	}
	step := func(what, kid string, wantFound bool, wantErr bool, wantFetches int32) {
		t.Helper()
		found, err := lookup(kid)
		if found != wantFound || (err != nil) != wantErr || js.fetches.Load() != wantFetches {
			t.Fatalf("%s: found %v, err %v, %d fetches; want %v, error %v, %d fetches", what, found, err, js.fetches.Load(), wantFound, wantErr, wantFetches)
		}
	}
	if js.fetches.Load() != 0 {
		t.Fatal("fetched before use")
	}
	step("first use", edKid, true, false, 1)
	step("cached", edKid, true, false, 1)
	step("unknown kid: the first one is fetched for", "nope", false, false, 2)
	step("another unknown kid, same interval", "nope2", false, false, 2)
	js.set(t, keys.ed, keys.p256)
	step("new key, same interval", p256Kid, false, false, 2)
	advance(time.Minute)
	step("new key, next interval", p256Kid, true, false, 3)
	step("known keys cost no fetch", edKid, true, false, 3)

	js.status.Store(http.StatusInternalServerError)
	advance(30 * time.Minute)
	step("server down, fresh keys", edKid, true, false, 3)
	step("server down, unknown kid", "nope3", false, true, 4)
	advance(31 * time.Minute)
	step("server down, keys too old", edKid, false, true, 5)
	step("server down, keys too old, within the interval", edKid, false, true, 5)
	js.status.Store(http.StatusOK)
	advance(time.Minute)
	step("server back", edKid, true, false, 6)
}

// TestRemoteKeySetBounds: a fetch is bounded in size and time, and the
// URL must be https (or http on loopback).
func TestRemoteKeySetBounds(t *testing.T) {
	big := make([]byte, MaxJWKSSize+10)
	for i := range big {
		big[i] = ' '
	}
	copy(big, `{"keys":[]}`)
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(big) }))
	defer huge.Close()
	rs, _ := NewRemoteKeySet("https://i.example.com", huge.URL)
	if _, _, err := rs.IssuerKey(t.Context(), "k"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("a huge JWK set: %v", err)
	}

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	rs, _ = NewRemoteKeySet("https://i.example.com", slow.URL, WithHTTPClient(&http.Client{Timeout: 200 * time.Millisecond}))
	start := time.Now()
	if _, _, err := rs.IssuerKey(t.Context(), "k"); err == nil {
		t.Fatal("a hanging server gave keys")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a hanging server held the lookup %v", d)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	rs, _ = NewRemoteKeySet("https://i.example.com", slow.URL)
	if _, _, err := rs.IssuerKey(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the caller's deadline: %v", err)
	}

	for _, u := range []string{"http://example.com/jwks", "ftp://127.0.0.1/jwks", "/jwks", ""} {
		if _, err := NewRemoteKeySet("https://i.example.com", u); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("NewRemoteKeySet(%q): %v", u, err)
		}
	}
	if _, err := NewRemoteKeySet("https://i.example.com", "https://i.example.com/jwks", WithRefreshInterval(time.Hour), WithMaxKeyAge(time.Minute)); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("max age under the interval: %v", err)
	}
}

// TestRemoteKeySetVerifier: a Verifier trusting an issuer by its JWKS URL
// accepts its access tokens, and after the issuer rotates its key, the new
// key's tokens too (one fetch for the unknown kid).
func TestRemoteKeySetVerifier(t *testing.T) {
	keys := loadTestKeys(t)
	x := newExchange(t, nil)
	x.addUser("alice", keys.p256)
	rs, err := NewRemoteKeySet(x.issuer.Issuer(), x.srv.URL+"/.well-known/jwks.json", WithClock(x.now))
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(NewMemoryKeyStore(), WithClock(x.now), WithTrustedIssuer(rs))
	if err != nil {
		t.Fatal(err)
	}
	check := func(jti string) {
		t.Helper()
		a := x.grant(jwsOf(t, keys.p256, ES256, `{"alg":"ES256"}`, mustJSON(t, rfc7523Claims(x, "alice", map[string]any{"jti": jti}))))
		wantOK(t, a)
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+a.str("access_token"))
		if id, err := v.Verify(r); err != nil || id.Username != "alice" || id.Issuer != x.issuer.Issuer() {
			t.Fatalf("Verify: %+v, %v", id, err)
		}
	}
	check("1")
	if err := x.issuer.Rotate(keys.rsa); err != nil {
		t.Fatal(err)
	}
	check("2")
}

// TestRemoteKeySetRedirect: the default client follows a redirect to https
// or loopback only.
func TestRemoteKeySetRedirect(t *testing.T) {
	keys := loadTestKeys(t)
	js := newJWKSServer(t, keys.ed)
	for _, tt := range []struct {
		to string
		ok bool
	}{
		{js.srv.URL, true},
		{"http://example.com/jwks", false},
	} {
		redir := httptest.NewServer(http.RedirectHandler(tt.to, http.StatusFound))
		rs, _ := NewRemoteKeySet("https://i.example.com", redir.URL)
		kid, _ := Thumbprint(keys.ed.Public())
		_, found, err := rs.IssuerKey(t.Context(), kid)
		redir.Close()
		if found != tt.ok || (err == nil) != tt.ok {
			t.Fatalf("redirect to %s: found %v, %v", tt.to, found, err)
		}
	}
}
