package asymjwt

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt/internal/jsonscan"
	"golang.org/x/crypto/ssh"
)

// signerTestTime is the injected clock of the signer tests: any fixed
// instant far from the real clock, so a test that read time.Now would fail.
var signerTestTime = time.Unix(1763784010, 0)

func signerTestClock() time.Time { return signerTestTime }

// interopKeyPath is the original Python library's test key (see
// testdata/interop/README.md).
const interopKeyPath = "testdata/interop/guido.key"

// loadTestKey loads a fixture from testdata/keys (or any path containing a
// slash), with the test passphrase.
func loadTestKey(t testing.TB, name string) Key {
	t.Helper()
	path := name
	if !strings.Contains(name, "/") {
		path = keyPath(name)
	}
	key, err := KeyFromFile(path, WithPassphrase([]byte(testPassphrase)))
	if err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	return key
}

// tokenSegment decodes segment i (0 header, 1 claims) of a compact JWS as a
// JSON object, keeping numbers as their JSON text.
func tokenSegment(t testing.TB, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments, want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(parts[i])
	if err != nil {
		t.Fatalf("segment %d is not unpadded base64url: %v", i, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("segment %d is not a JSON object: %v\n%s", i, err, raw)
	}
	if dec.More() {
		t.Fatalf("segment %d has trailing data: %s", i, raw)
	}
	return m
}

// checkOriginalClaims checks what the original Python library requires of a
// token: a string username, an integer time within ±20 s of now, a string
// nonce of at least 128 random bits.
func checkOriginalClaims(t testing.TB, claims map[string]any, username string, now time.Time) {
	t.Helper()
	if got, ok := claims["username"].(string); !ok || got != username {
		t.Errorf("username = %#v, want %q", claims["username"], username)
	}
	num, ok := claims["time"].(json.Number)
	if !ok || strings.ContainsAny(num.String(), ".eE") {
		t.Errorf("time = %#v, want an integer JSON number", claims["time"])
	} else if sec, err := num.Int64(); err != nil {
		t.Errorf("time %s: %v", num, err)
	} else if d := sec - now.Unix(); d < -20 || d > 20 {
		t.Errorf("time %d is %d s from now %d, want within ±20 s", sec, d, now.Unix())
	}
	nonce, ok := claims["nonce"].(string)
	if !ok {
		t.Fatalf("nonce = %#v, want a string", claims["nonce"])
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(nonce)
	if err != nil || len(raw) < 16 {
		t.Errorf("nonce %q: want unpadded base64url of >= 16 bytes (%d bytes, %v)", nonce, len(raw), err)
	}
}

func TestSignMeetsOriginalRules(t *testing.T) {
	tests := []struct {
		name string
		key  string
		pub  func(t testing.TB) crypto.PublicKey // as the server stores it; nil: key.Public()
	}{
		{"pkcs1 rsa2048", "pkcs1_rsa2048.pem", func(t testing.TB) crypto.PublicKey { return readPublicKey(t, "pkcs1_rsa2048.pub.pem") }},
		{"openssh rsa2048", "openssh_rsa2048", func(t testing.TB) crypto.PublicKey { return readPublicKey(t, "openssh_rsa2048.pub.ssh") }},
		{"pkcs8 rsa3072", "pkcs8_rsa3072.pem", nil},
		{"legacy encrypted rsa", "legacy_rsa_aes256.pem", nil},
		{"interop guido.key", interopKeyPath, func(t testing.TB) crypto.PublicKey { return readPEMPublicKey(t, "testdata/interop/guido.pub.pem") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := loadTestKey(t, tt.key)
			pub := key.Public()
			if tt.pub != nil {
				pub = tt.pub(t)
			}
			s, err := NewSigner("guido", key, WithClock(signerTestClock))
			if err != nil {
				t.Fatal(err)
			}
			if s.Algorithm() != RS512 {
				t.Fatalf("default algorithm for RSA is %s, want RS512", s.Algorithm())
			}
			tok, err := s.Sign(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			// golang-jwt restricted to RS512, as PyJWT in the original.
			claims := verifyWithGolangJWT(t, tok, pub, RS512)
			if len(claims) != 3 {
				t.Errorf("claims %v, want exactly username, time, nonce", claims)
			}
			raw := tokenSegment(t, tok, 1)
			checkOriginalClaims(t, raw, "guido", signerTestTime)
			if got, _ := raw["time"].(json.Number).Int64(); got != signerTestTime.Unix() {
				t.Errorf("time = %d, want the injected clock %d", got, signerTestTime.Unix())
			}
		})
	}
}

// readPEMPublicKey reads a PKIX public key from a PEM file at path.
func readPEMPublicKey(t testing.TB, path string) crypto.PublicKey {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pub
}

func TestSignInteropKeyID(t *testing.T) {
	data, err := os.ReadFile("testdata/interop/guido.pub.ssh")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner("guido", loadTestKey(t, interopKeyPath))
	if err != nil {
		t.Fatal(err)
	}
	if want := ssh.FingerprintSHA256(sshPub); s.KeyID() != want {
		t.Fatalf("KeyID = %s, want the fingerprint of guido.pub.ssh %s", s.KeyID(), want)
	}
}

func TestSignHeaderAndDefaultClaims(t *testing.T) {
	tests := []struct {
		key string
		alg Algorithm
	}{
		{"openssh_ed25519", EdDSA},
		{"sec1_p256.pem", ES256},
		{"openssh_p384", ES384},
		{"pkcs8_p521.pem", ES512},
		{"pkcs1_rsa2048.pem", RS512},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			key := loadTestKey(t, tt.key)
			s, err := NewSigner("alice", key, WithClock(signerTestClock))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := s.Sign(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			verifyWithGolangJWT(t, tok, key.Public(), tt.alg)

			header := tokenSegment(t, tok, 0)
			kid, err := Fingerprint(key.Public())
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"alg": string(tt.alg), "typ": "JWT", "kid": kid}
			if len(header) != len(want) {
				t.Errorf("header %v, want exactly %v", header, want)
			}
			for name, v := range want {
				if header[name] != v {
					t.Errorf("header %s = %#v, want %#v", name, header[name], v)
				}
			}
			if s.KeyID() != kid || !strings.HasPrefix(kid, "SHA256:") {
				t.Errorf("KeyID() = %q, want %q", s.KeyID(), kid)
			}

			claims := tokenSegment(t, tok, 1)
			checkOriginalClaims(t, claims, "alice", signerTestTime)
			for _, name := range []string{"aud", "exp", "nbf", "iat", "iss", "sub", "htm", "htu"} {
				if v, ok := claims[name]; ok {
					t.Errorf("claim %s = %v present by default", name, v)
				}
			}
		})
	}
}

func TestSignBinding(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		url     string
		host    string // req.Host override
		wantHTM string
		wantHTU string
	}{
		{"plain", "GET", "https://api.example.com/v1/items", "", "GET", "https://api.example.com/v1/items"},
		{"https default port dropped", "GET", "https://api.example.com:443/v1", "", "GET", "https://api.example.com/v1"},
		{"http default port dropped", "GET", "http://api.example.com:80/v1", "", "GET", "http://api.example.com/v1"},
		{"empty port dropped", "GET", "https://api.example.com:/v1", "", "GET", "https://api.example.com/v1"},
		{"other port kept", "GET", "http://api.example.com:8443/v1", "", "GET", "http://api.example.com:8443/v1"},
		{"https port 80 kept", "GET", "https://api.example.com:80/v1", "", "GET", "https://api.example.com:80/v1"},
		{"upper-case host lowered", "GET", "https://API.Example.COM/Path/Kept", "", "GET", "https://api.example.com/Path/Kept"},
		{"upper-case scheme lowered", "GET", "HTTPS://api.example.com/x", "", "GET", "https://api.example.com/x"},
		{"query excluded", "GET", "https://api.example.com/search?q=1&r=2", "", "GET", "https://api.example.com/search"},
		{"fragment excluded", "GET", "https://api.example.com/doc#part", "", "GET", "https://api.example.com/doc"},
		{"query and fragment excluded", "GET", "https://api.example.com/a?b=c#d", "", "GET", "https://api.example.com/a"},
		{"empty path", "GET", "https://api.example.com", "", "GET", "https://api.example.com/"},
		{"empty path with query", "GET", "https://api.example.com?x=1", "", "GET", "https://api.example.com/"},
		{"escaped path kept escaped", "GET", "https://api.example.com/a%2Fb/c%20d", "", "GET", "https://api.example.com/a%2Fb/c%20d"},
		{"host override", "GET", "http://10.0.0.7:8080/v1", "svc.internal", "GET", "http://svc.internal/v1"},
		{"host override with port", "GET", "https://10.0.0.7/v1", "Svc.Internal:8443", "GET", "https://svc.internal:8443/v1"},
		{"host override default port", "GET", "https://10.0.0.7/v1", "svc.internal:443", "GET", "https://svc.internal/v1"},
		{"ipv6 with port", "GET", "http://[::1]:8080/x", "", "GET", "http://[::1]:8080/x"},
		{"ipv6 default port", "GET", "https://[2001:DB8::1]:443/x", "", "GET", "https://[2001:db8::1]/x"},
		{"ipv6 without port", "GET", "https://[2001:db8::1]/x", "", "GET", "https://[2001:db8::1]/x"},
		{"post", "POST", "https://api.example.com/items", "", "POST", "https://api.example.com/items"},
		{"delete", "DELETE", "https://api.example.com/items/7", "", "DELETE", "https://api.example.com/items/7"},
		{"empty method is GET", "", "https://api.example.com/", "", "GET", "https://api.example.com/"},
	}
	key := loadTestKey(t, "openssh_ed25519")
	s, err := NewSigner("alice", key, WithClock(signerTestClock))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Method = tt.method // NewRequest turns "" into GET
			req.Host = tt.host
			tok, err := s.Sign(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			verifyWithGolangJWT(t, tok, key.Public(), EdDSA)
			claims := tokenSegment(t, tok, 1)
			if claims["htm"] != tt.wantHTM {
				t.Errorf("htm = %#v, want %q", claims["htm"], tt.wantHTM)
			}
			if claims["htu"] != tt.wantHTU {
				t.Errorf("htu = %#v, want %q", claims["htu"], tt.wantHTU)
			}
			if got, want := appendRequestHTU(nil, req), jsonscan.AppendString(nil, buildHTU(req.URL.Scheme, requestHost(req), req.URL.EscapedPath())); !bytes.Equal(got, want) {
				t.Errorf("appendRequestHTU = %s, buildHTU gives %s", got, want)
			}
			// The verifier normalises the claim the same way.
			if n, ok := normalizeHTU(tt.wantHTU); !ok || n != tt.wantHTU {
				t.Errorf("normalizeHTU(%q) = %q, %v; want it unchanged", tt.wantHTU, n, ok)
			}
		})
	}
}

func TestSignWithoutBinding(t *testing.T) {
	key := loadTestKey(t, "openssh_ed25519")
	bound, err := NewSigner("alice", key)
	if err != nil {
		t.Fatal(err)
	}
	unbound, err := NewSigner("alice", key, WithoutBinding())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("PUT", "https://api.example.com/x", nil)
	tests := []struct {
		name string
		s    *Signer
		req  *http.Request
	}{
		{"WithoutBinding", unbound, req},
		{"WithoutBinding nil request", unbound, nil},
		{"nil request", bound, nil},
		{"request without URL", bound, &http.Request{Method: "GET"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := tt.s.Sign(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			claims := tokenSegment(t, tok, 1)
			for _, name := range []string{"htm", "htu"} {
				if v, ok := claims[name]; ok {
					t.Errorf("claim %s = %v, want none", name, v)
				}
			}
		})
	}
}

func TestWithClaims(t *testing.T) {
	key := loadTestKey(t, "openssh_ed25519")
	extra := map[string]any{
		"role":  "admin",
		"n":     3,
		"obj":   map[string]any{"a": []int{1, 2}},
		"html":  "<a&b>",
		"émoji": "ü",
	}
	s, err := NewSigner("alice", key, WithClaims(extra), WithClock(signerTestClock))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "https://api.example.com/x", nil)
	tok, err := s.Sign(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got := verifyWithGolangJWT(t, tok, key.Public(), EdDSA)
	want := map[string]any{
		"username": "alice",
		"time":     float64(signerTestTime.Unix()),
		"htm":      "GET",
		"htu":      "https://api.example.com/x",
		"role":     "admin",
		"n":        float64(3),
		"html":     "<a&b>",
		"émoji":    "ü",
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("claim %s = %#v, want %#v", name, got[name], v)
		}
	}
	if obj, _ := json.Marshal(got["obj"]); string(obj) != `{"a":[1,2]}` {
		t.Errorf("claim obj = %s", obj)
	}
	if len(got) != len(want)+2 { // + obj, nonce
		t.Errorf("claims %v: unexpected extra names", got)
	}
	// Changing the caller's map later changes nothing: claims are encoded once.
	extra["role"] = "root"
	tok2, err := s.Sign(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := verifyWithGolangJWT(t, tok2, key.Public(), EdDSA); got["role"] != "admin" {
		t.Errorf("role = %v after the caller changed its map", got["role"])
	}
}

func TestWithClaimsRefused(t *testing.T) {
	key := loadTestKey(t, "openssh_ed25519")
	tests := []struct {
		name   string
		claims map[string]any
	}{
		{"username", map[string]any{"username": "root"}},
		{"time", map[string]any{"time": 0}},
		{"nonce", map[string]any{"nonce": "fixed"}},
		{"htm", map[string]any{"htm": "GET"}},
		{"htu", map[string]any{"htu": "https://elsewhere/"}},
		{"case variant of username", map[string]any{"Username": "root"}},
		{"case variant of nonce", map[string]any{"NONCE": "x"}},
		{"names differing in case", map[string]any{"role": "a", "Role": "b"}},
		{"func value", map[string]any{"f": func() {}}},
		{"chan value", map[string]any{"c": make(chan int)}},
		{"infinite number", map[string]any{"x": math.Inf(1)}},
		{"NaN", map[string]any{"x": math.NaN()}},
		{"nested func", map[string]any{"o": map[string]any{"f": func() {}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSigner("alice", key, WithClaims(tt.claims))
			if err == nil {
				t.Fatalf("NewSigner accepted claims %v", tt.claims)
			}
			if s != nil {
				t.Errorf("NewSigner returned a Signer with error %v", err)
			}
		})
	}
}

func TestWithAlgorithm(t *testing.T) {
	rsaKey := loadTestKey(t, "pkcs1_rsa2048.pem")
	p256 := loadTestKey(t, "sec1_p256.pem")
	p521 := loadTestKey(t, "openssh_p521")
	ed := loadTestKey(t, "openssh_ed25519")
	tests := []struct {
		name string
		key  Key
		alg  Algorithm
		want Algorithm // "" when refused
	}{
		{"rsa default", rsaKey, "", RS512},
		{"rsa RS256", rsaKey, RS256, RS256},
		{"rsa RS384", rsaKey, RS384, RS384},
		{"rsa RS512", rsaKey, RS512, RS512},
		{"rsa PS256", rsaKey, PS256, PS256},
		{"rsa PS384", rsaKey, PS384, PS384},
		{"rsa PS512", rsaKey, PS512, PS512},
		{"p256 ES256", p256, ES256, ES256},
		{"p521 ES512", p521, ES512, ES512},
		{"ed25519 EdDSA", ed, EdDSA, EdDSA},
		{"p256 ES384", p256, ES384, ""},
		{"p256 ES512", p256, ES512, ""},
		{"p521 ES256", p521, ES256, ""},
		{"p256 RS256", p256, RS256, ""},
		{"rsa EdDSA", rsaKey, EdDSA, ""},
		{"rsa ES256", rsaKey, ES256, ""},
		{"ed25519 ES256", ed, ES256, ""},
		{"ed25519 RS512", ed, RS512, ""},
		{"rsa HS256", rsaKey, "HS256", ""},
		{"ed25519 HS512", ed, "HS512", ""},
		{"rsa none", rsaKey, "none", ""},
		{"rsa None", rsaKey, "None", ""},
		{"rsa lower-case rs256", rsaKey, "rs256", ""},
		{"ed25519 Ed25519", ed, "Ed25519", ""},
		{"empty", ed, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []SignerOption
			if tt.name != "rsa default" {
				opts = append(opts, WithAlgorithm(tt.alg))
			}
			s, err := NewSigner("alice", tt.key, opts...)
			if tt.want == "" {
				if !errors.Is(err, ErrUnsupportedAlgorithm) {
					t.Fatalf("NewSigner(WithAlgorithm(%q)) err = %v, want ErrUnsupportedAlgorithm", tt.alg, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Algorithm() != tt.want {
				t.Fatalf("Algorithm() = %s, want %s", s.Algorithm(), tt.want)
			}
			tok, err := s.Sign(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			verifyWithGolangJWT(t, tok, tt.key.Public(), tt.want)
			if alg := tokenSegment(t, tok, 0)["alg"]; alg != string(tt.want) {
				t.Fatalf("header alg = %v, want %s", alg, tt.want)
			}
		})
	}
}

func TestNewSignerUsername(t *testing.T) {
	key := loadTestKey(t, "openssh_ed25519")
	tests := []struct {
		name     string
		username string
		ok       bool
	}{
		{"empty", "", false},
		{"257 bytes", strings.Repeat("a", 257), false},
		{"129 two-byte runes", strings.Repeat("é", 129), false},
		{"NUL", "a\x00b", false},
		{"newline", "alice\n", false},
		{"tab", "al\tice", false},
		{"escape", "\x1b[31m", false},
		{"DEL", "al\x7fice", false},
		{"C1 control", "al\u0085ice", false},
		{"invalid UTF-8", "al\xffice", false},
		{"truncated UTF-8", "al\xc3", false},
		{"UTF-8 surrogate", "\xed\xa0\x80", false},
		{"256 bytes", strings.Repeat("a", 256), true},
		{"one byte", "a", true},
		{"non-ASCII", "José Ñúñez", true},
		{"quotes and backslash", `a"b\c`, true},
		{"email-like", "svc+deploy@example.com", true},
		{"U+2028", "a\u2028b", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSigner(tt.username, key)
			if !tt.ok {
				if !errors.Is(err, ErrInvalidUsername) {
					t.Fatalf("NewSigner(%q) err = %v, want ErrInvalidUsername", tt.username, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Username() != tt.username {
				t.Fatalf("Username() = %q", s.Username())
			}
			tok, err := s.Sign(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := verifyWithGolangJWT(t, tok, key.Public(), EdDSA)["username"]; got != tt.username {
				t.Fatalf("username claim = %q, want %q", got, tt.username)
			}
		})
	}
}

func TestNewSignerRefuses(t *testing.T) {
	key := loadTestKey(t, "openssh_ed25519")
	tests := []struct {
		name string
		key  Key
		opts []SignerOption
		want error
	}{
		{"nil key", nil, nil, ErrUnsupportedKey},
		{"nil clock", key, []SignerOption{WithClock(nil)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSigner("alice", tt.key, tt.opts...)
			if err == nil || s != nil {
				t.Fatalf("NewSigner = %v, %v; want an error", s, err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestSignClockOffset: the offset a Transport learned for a host moves the
// time of the tokens signed for it.
func TestSignClockOffset(t *testing.T) {
	key := loadTestKey(t, "openssh_ed25519")
	s, err := NewSigner("alice", key, WithClock(signerTestClock))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		offset time.Duration
		want   int64
	}{
		{0, signerTestTime.Unix()},
		{90 * time.Second, signerTestTime.Unix() + 90},
		{-30 * time.Second, signerTestTime.Unix() - 30},
		{1500 * time.Millisecond, signerTestTime.Unix() + 1},
		{-500 * time.Millisecond, signerTestTime.Unix() - 1}, // Unix() floors
		{time.Hour, signerTestTime.Unix() + 3600},
	}
	for _, tt := range tests {
		t.Run(tt.offset.String(), func(t *testing.T) {
			auth, err := s.authorization(context.Background(), nil, tt.offset)
			if err != nil {
				t.Fatal(err)
			}
			tok, ok := strings.CutPrefix(auth, "JWT ")
			if !ok {
				t.Fatalf("authorization = %q, want a JWT prefix", auth)
			}
			got, err := tokenSegment(t, tok, 1)["time"].(json.Number).Int64()
			if err != nil || got != tt.want {
				t.Fatalf("time = %d (%v), want %d", got, err, tt.want)
			}
		})
	}
}

// TestSignConcurrent signs from many goroutines while one rotates the key
// back and forth: every token is whole, signed by the key its kid names.
func TestSignConcurrent(t *testing.T) {
	const goroutines, each = 16, 25
	key := loadTestKey(t, "openssh_ed25519")
	other := loadTestKey(t, "sec1_p256.pem")
	pubByKid := map[string]crypto.PublicKey{}
	for _, k := range []Key{key, other} {
		kid, err := Fingerprint(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		pubByKid[kid] = k.Public()
	}
	s, err := NewSigner("alice", key, WithClock(signerTestClock))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "https://api.example.com/x", nil)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		tokens []string
	)
	start := make(chan struct{})
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range each {
				if g == 0 {
					next := key
					if i%2 == 0 {
						next = other
					}
					if err := s.SetKey(next); err != nil {
						t.Error(err)
					}
					continue
				}
				tok, err := s.Sign(context.Background(), req)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				tokens = append(tokens, tok)
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(tokens) != (goroutines-1)*each {
		t.Fatalf("%d tokens, want %d", len(tokens), (goroutines-1)*each)
	}
	nonces := map[string]bool{}
	for _, tok := range tokens {
		hdr := tokenSegment(t, tok, 0)
		alg := Algorithm(hdr["alg"].(string))
		verifyWithGolangJWT(t, tok, pubByKid[hdr["kid"].(string)], alg)
		claims := tokenSegment(t, tok, 1)
		checkOriginalClaims(t, claims, "alice", signerTestTime)
		n := claims["nonce"].(string)
		if nonces[n] {
			t.Fatalf("nonce %s used twice", n)
		}
		nonces[n] = true
	}
}

// ctxIgnoringKey signs whatever ctx says, to show that Sign itself refuses a
// done context rather than relying on the Key.
type ctxIgnoringKey struct{ Key }

func (k ctxIgnoringKey) SignJWS(_ context.Context, alg Algorithm, in []byte) ([]byte, error) {
	return k.Key.SignJWS(context.Background(), alg, in)
}

func TestSignDoneContext(t *testing.T) {
	key := loadTestKey(t, "openssh_ed25519")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	tests := []struct {
		name string
		key  Key
		ctx  context.Context
		want error
	}{
		{"cancelled", key, cancelled, context.Canceled},
		{"deadline passed", key, expired, context.DeadlineExceeded},
		{"cancelled, key ignores ctx", ctxIgnoringKey{key}, cancelled, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSigner("alice", tt.key)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := s.Sign(tt.ctx, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tok != "" {
				t.Fatalf("token %q returned with an error", tok)
			}
		})
	}
}

// TestSignPaths signs with keys this package loaded (signed in Sign itself,
// on the stack) and with the same keys behind an opaque crypto.Signer
// (through the Key interface): both must give tokens golang-jwt accepts,
// short and longer than the stack buffer, and ECDSA halves with leading
// zero bytes must keep their width (TestDERToJWS checks that exactly).
func TestSignPaths(t *testing.T) {
	long := map[string]any{"blob": strings.Repeat("x", 2*tokenBufSize)}
	tests := []struct {
		file   string
		alg    Algorithm
		direct bool
	}{
		{"openssh_ed25519", EdDSA, true},
		{"sec1_p256.pem", ES256, true},
		{"openssh_p384", ES384, true},
		{"pkcs8_p521.pem", ES512, true},
		{"pkcs1_rsa2048.pem", RS512, false},
	}
	for _, tt := range tests {
		key := loadTestKey(t, tt.file)
		opaque, err := KeyFromSigner(kmsSigner{key.(*signerKey).signer})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []struct {
			name   string
			key    Key
			direct bool
		}{{"loaded", key, tt.direct}, {"opaque", opaque, false}} {
			for _, size := range []string{"short", "long"} {
				t.Run(tt.file+"/"+k.name+"/"+size, func(t *testing.T) {
					opts := []SignerOption{WithClock(signerTestClock)}
					if size == "long" {
						opts = append(opts, WithClaims(long))
					}
					s, err := NewSigner("alice", k.key, opts...)
					if err != nil {
						t.Fatal(err)
					}
					if sk := s.key.Load(); (sk.ed != nil || sk.ec != nil) != k.direct {
						t.Fatalf("signs in process: %v, want %v", !k.direct, k.direct)
					}
					n := 200 // a leading zero half in about 4 of 5 runs
					switch {
					case tt.alg == RS512 || size == "long":
						n = 3
					case tt.alg == ES384 || tt.alg == ES512:
						n = 40
					}
					req, _ := http.NewRequest("GET", "https://api.example.com/x", nil)
					for range n {
						tok, err := s.Sign(context.Background(), req)
						if err != nil {
							t.Fatal(err)
						}
						claims := verifyWithGolangJWT(t, tok, key.Public(), tt.alg)
						if size == "long" && claims["blob"] != long["blob"] {
							t.Fatal("long claim lost")
						}
					}
				})
			}
		}
	}
}
