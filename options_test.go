package asymjwt

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// TestInvalidOptions: every option given a value it cannot use makes its
// constructor fail with ErrInvalidOption, naming the option; none falls
// back to a default.
func TestInvalidOptions(t *testing.T) {
	key := loadTestKey(t, "openssh_ed25519")
	keys := NewMemoryKeyStore()
	dir := t.TempDir()
	tests := []struct {
		option string
		make   func() error
	}{
		{"WithClock", func() error { _, err := NewSigner("a", key, WithClock(nil)); return err }},
		{"WithClock", func() error { _, err := NewVerifier(keys, WithClock(nil)); return err }},
		{"WithClock", func() error { _, err := NewMemoryNonceStore(WithClock(nil)); return err }},
		{"WithLogger", func() error { _, err := NewVerifier(keys, WithLogger(nil)); return err }},
		{"WithLogger", func() error { _, err := NewDirKeyStore(dir, WithLogger(nil)); return err }},
		{"WithAlgorithm", func() error { _, err := NewSigner("a", key, WithAlgorithm("HS256")); return err }},
		{"WithClaims", func() error { _, err := NewSigner("a", key, WithClaims(nil)); return err }},
		{"WithClaims", func() error { _, err := NewSigner("a", key, WithClaims(map[string]any{"Nonce": 1})); return err }},
		{"WithClaims", func() error {
			_, err := NewSigner("a", key, WithClaims(map[string]any{"role": 1, "Role": 2}))
			return err
		}},
		{"WithNonceLimit", func() error { _, err := NewMemoryNonceStore(WithNonceLimit(0)); return err }},
		{"WithNonceStore", func() error { _, err := NewVerifier(keys, WithNonceStore(nil)); return err }},
		{"WithMaxSkew", func() error { _, err := NewVerifier(keys, WithMaxSkew(0)); return err }},
		{"WithMaxSkew", func() error { _, err := NewVerifier(keys, WithMaxSkew(-time.Second)); return err }},
		{"WithMaxTokenSize", func() error { _, err := NewVerifier(keys, WithMaxTokenSize(10)); return err }},
		{"WithAlgorithms", func() error { _, err := NewVerifier(keys, WithAlgorithms()); return err }},
		{"WithAlgorithms", func() error { _, err := NewVerifier(keys, WithAlgorithms(RS256, "none")); return err }},
		{"WithPublicURL", func() error { _, err := NewVerifier(keys, WithPublicURL("api.example.com")); return err }},
		{"WithHosts", func() error { _, err := NewVerifier(keys, WithHosts()); return err }},
		{"WithHosts", func() error { _, err := NewVerifier(keys, WithHosts("a.example/x")); return err }},
		{"WithAudience", func() error { _, err := NewVerifier(keys, WithAudience("")); return err }},
		{"WithErrorHook", func() error { _, err := NewVerifier(keys, WithErrorHook(nil)); return err }},
		{"WithSuccessHook", func() error { _, err := NewVerifier(keys, WithSuccessHook(nil)); return err }},
		{"WithMetrics", func() error { _, err := NewVerifier(keys, WithMetrics(nil)); return err }},
		{"WithErrorBody", func() error { _, err := NewVerifier(keys, WithErrorBody(nil)); return err }},
		{"WithPassphraseFunc", func() error { _, err := ParseKey([]byte("x"), WithPassphraseFunc(nil)); return err }},
		{"WithPassphraseFunc", func() error { _, err := KeyFromFile(keyPath("openssh_ed25519"), WithPassphraseFunc(nil)); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.option, func(t *testing.T) {
			err := tt.make()
			if !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("err = %v, want ErrInvalidOption", err)
			}
			if !strings.HasPrefix(err.Error(), "asymjwt: "+tt.option+": ") {
				t.Fatalf("err = %q, want it to name %s", err, tt.option)
			}
		})
	}
}

// TestErrorsNamePackageOnce: errors of every layer, wrapped in each other
// (a key file error inside a key store error inside a verification error,
// an agent error inside a signing error), name the package exactly once, at
// their start.
func TestErrorsNamePackageOnce(t *testing.T) {
	key := loadTestKey(t, "openssh_ed25519")
	dir := t.TempDir()
	badStore, _ := NewDirKeyStore(dir)
	// A directory where bob's key file should be: the store cannot answer.
	if err := os.Mkdir(dir+"/bob.pub", 0o755); err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(badStore)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := NewSigner("bob", key)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "http://api.example/", nil)
	tok, _ := signer.Sign(context.Background(), req)
	req.Header.Set("Authorization", "JWT "+tok)
	_, storeErr := v.Verify(req)

	agentSigner, _ := NewSigner("bob", ctxKey{key})
	done, cancel := context.WithCancel(context.Background())
	cancel()
	_, signErr := agentSigner.Sign(done, nil)

	_, fileErr := KeyFromFile(keyPath("openssh_ed25519_enc"))
	_, wrongErr := KeyFromFile(keyPath("pkcs8enc_p256_scrypt.pem"), WithPassphrase([]byte("wrong")))
	_, weakErr := KeyFromFile(keyPath("bad_rsa1024.pem"))
	_, signerErr := KeyFromSigner(nil)
	_, dirErr := NewDirKeyStore(dir + "/nope")
	_, lineErrs := ParsePublicKeys([]byte("garbage line\n"))
	_, verifyErr := v.VerifyToken(context.Background(), "a.b.c", "", "")
	_, userErr := NewSigner("", key)
	store := mustNonceStore(WithNonceLimit(1))
	_ = store.Use(context.Background(), "a", "1", time.Minute)
	fullErr := store.Use(context.Background(), "a", "2", time.Minute)

	for name, err := range map[string]error{
		"key store inside verify": storeErr,
		"context inside sign":     signErr,
		"passphrase missing":      fileErr,
		"wrong passphrase":        wrongErr,
		"weak key":                weakErr,
		"nil signer":              signerErr,
		"no key dir":              dirErr,
		"skipped line":            lineErrs[0],
		"malformed token":         verifyErr,
		"bad username":            userErr,
		"nonce store full":        fullErr,
		"redirect refused":        (&Transport{}).checkRedirect(httptest.NewRequest("GET", "http://b.example/", nil), []*http.Request{httptest.NewRequest("GET", "http://a.example/", nil)}),
		"agent":                   &AgentError{Socket: "/s", Op: "sign", Err: errorf("%w", ErrAgentRefused)},
		"refused":                 &RefusedError{StatusCode: 401, Kind: "stale"},
	} {
		t.Run(name, func(t *testing.T) {
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "asymjwt: ") || strings.Count(msg, "asymjwt:") != 1 {
				t.Fatalf("%q names the package other than once, at its start", msg)
			}
		})
	}
	if !errors.Is(storeErr, ErrUnavailable) || !errors.Is(signErr, context.Canceled) || !errors.Is(fullErr, ErrUnavailable) {
		t.Fatalf("wrapping lost the cause: %v / %v / %v", storeErr, signErr, fullErr)
	}
	var ke *KeyError
	if !errors.As(storeErr, &ke) {
		t.Fatalf("%v: the key store's *KeyError is not reachable with errors.As", storeErr)
	}
}

// ctxKey is a Key that honours a done context itself, as an agent key does.
type ctxKey struct{ Key }

func (k ctxKey) SignJWS(ctx context.Context, alg Algorithm, in []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, &AgentError{Op: "sign", Err: err}
	}
	return k.Key.SignJWS(ctx, alg, in)
}

// TestVerifierWarnsOnceAboutHost: a Verifier that believes the request's
// Host says so once, at construction; one told its hosts says nothing.
func TestVerifierWarnsOnceAboutHost(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []VerifierOption
		warn bool
	}{
		{"no hosts", nil, true},
		{"WithHosts", []VerifierOption{WithHosts("api.example.com")}, false},
		{"WithPublicURL", []VerifierOption{WithPublicURL("https://api.example.com")}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			v, err := NewVerifier(NewMemoryKeyStore(), append(tt.opts, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))...)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				v.Verify(httptest.NewRequest("GET", "http://x/", nil))
			}
			if got := strings.Count(logs.String(), "without WithHosts or WithPublicURL"); got != map[bool]int{true: 1, false: 0}[tt.warn] {
				t.Fatalf("%d warnings, want warn=%v:\n%s", got, tt.warn, logs.String())
			}
		})
	}
}
