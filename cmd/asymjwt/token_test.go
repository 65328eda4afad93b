package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/asymjwt/asymjwt"
	"github.com/asymjwt/asymjwt/verifytest"
)

// tokenServer is a token endpoint on loopback and a Verifier that trusts
// it, for checking the access tokens the command buys.
type tokenServer struct {
	url    string
	keys   *asymjwt.MemoryKeyStore
	verify *asymjwt.Verifier
}

func newTokenServer(t *testing.T) *tokenServer {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ts := &tokenServer{url: srv.URL + "/oauth/token", keys: asymjwt.NewMemoryKeyStore()}
	issuer, err := asymjwt.NewIssuer(srv.URL, verifytest.GenerateKey(t, verifytest.Ed25519).Key)
	if err != nil {
		t.Fatal(err)
	}
	if ts.verify, err = asymjwt.NewVerifier(ts.keys, asymjwt.WithTrustedIssuer(issuer)); err != nil {
		t.Fatal(err)
	}
	ep, err := asymjwt.NewTokenEndpoint(ts.verify, issuer, ts.url)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/oauth/token", ep)
	return ts
}

// checkAnswer checks that stdout is the endpoint's JSON answer with an
// access token that verifies as user's, with scope.
func (ts *tokenServer) checkAnswer(t *testing.T, stdout, user, scope string) {
	t.Helper()
	var answer map[string]any
	if err := json.Unmarshal([]byte(stdout), &answer); err != nil || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("stdout is not one JSON object: %q", stdout)
	}
	if answer["token_type"] != "Bearer" || answer["refresh_token"] == nil {
		t.Fatalf("answer %v", answer)
	}
	r := httptest.NewRequest(http.MethodGet, "https://api.example.com/", nil)
	r.Header.Set("Authorization", "Bearer "+answer["access_token"].(string))
	id, err := ts.verify.Verify(r)
	if err != nil || id.Username != user || id.Scope != scope || id.Kind != asymjwt.AccessToken {
		t.Fatalf("the access token: %+v, %v", id, err)
	}
}

func TestToken(t *testing.T) {
	t.Parallel()
	ts := newTokenServer(t)
	for _, f := range []string{"openssh_ed25519", "pkcs1_rsa2048.pem", "sec1_p256.pem"} {
		k, err := asymjwt.KeyFromFile(fixturePath(f))
		if err != nil {
			t.Fatal(err)
		}
		user := "user-" + strings.ReplaceAll(f, ".", "_")
		ts.keys.Add(user, k.Public())
		t.Run(f, func(t *testing.T) {
			r := runCLI(t, "token", "-user", user, "-key", fixturePath(f), "-url", ts.url, "-scope", "read write").want(t, 0)
			if r.stderr != "" {
				t.Fatalf("stderr: %s", r.stderr)
			}
			ts.checkAnswer(t, r.stdout, user, "read write")
		})
	}

	t.Run("agent", func(t *testing.T) {
		ed := verifytest.GenerateKey(t, verifytest.Ed25519)
		ts.keys.Add("bob", ed.Public)
		ag := verifytest.NewAgent(t, ed)
		r := cli{env: []string{"SSH_AUTH_SOCK=" + ag.Socket}}.run(t, "token", "-user", "bob", "-agent", "-url", ts.url).want(t, 0)
		ts.checkAnswer(t, r.stdout, "bob", "")
	})

	t.Run("refused", func(t *testing.T) {
		r := runCLI(t, "token", "-user", "nobody", "-key", fixturePath("openssh_ed25519"), "-url", ts.url).
			want(t, 1, "refused: invalid_grant: assertion refused: invalid_signature (400 Bad Request)")
		if r.stdout != "" || strings.Contains(r.stderr, "eyJ") {
			t.Fatalf("stdout %q, stderr %q", r.stdout, r.stderr)
		}
	})

	t.Run("audience the endpoint does not answer to", func(t *testing.T) {
		runCLI(t, "token", "-user", "user-openssh_ed25519", "-key", fixturePath("openssh_ed25519"), "-url", ts.url, "-audience", "https://else.example.com").
			want(t, 1, "invalid_grant")
	})

	t.Run("unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		runCLI(t, "token", "-user", "a", "-key", fixturePath("openssh_ed25519"), "-url", "http://"+addr+"/token").want(t, 1, addr)
	})

	t.Run("not a token endpoint", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		runCLI(t, "token", "-user", "a", "-key", fixturePath("openssh_ed25519"), "-url", srv.URL).want(t, 1, "404 Not Found without a token")
	})
}

func TestTokenUsage(t *testing.T) {
	t.Parallel()
	key := fixturePath("openssh_ed25519")
	tests := []struct {
		name      string
		args      []string
		fragments []string
	}{
		{"no -user", []string{"-key", key, "-url", "https://a/token"}, []string{"-user"}},
		{"no key", []string{"-user", "a", "-url", "https://a/token"}, []string{"-key FILE or -agent"}},
		{"both keys", []string{"-user", "a", "-key", key, "-agent", "-url", "https://a/token"}, []string{"exclude"}},
		{"no -url", []string{"-user", "a", "-key", key}, []string{"-url"}},
		{"relative -url", []string{"-user", "a", "-key", key, "-url", "/token"}, []string{"absolute"}},
		{"http beyond loopback", []string{"-user", "a", "-key", key, "-url", "http://auth.example.com/token"}, []string{"https"}},
		{"extra argument", []string{"-user", "a", "-key", key, "-url", "https://a/token", "x"}, []string{`"x"`}},
		{"bad username", []string{"-user", "a\tb", "-key", key, "-url", "https://a/token"}, []string{"not a valid username"}},
		{"unknown flag", []string{"-user", "a", "-key", key, "-url", "https://a/token", "-nope"}, []string{"-nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			runCLI(t, append([]string{"token"}, tt.args...)...).wantUsageError(t, "token", tt.fragments...)
		})
	}
	runCLI(t, "token", "-user", "a", "-key", "/no/such/key", "-url", "https://a/token").want(t, 2, "/no/such/key")
	if r := runCLI(t, "token", "-h").want(t, 0); !strings.Contains(r.stdout, "Usage: asymjwt token") {
		t.Fatalf("-h: %s", r.stdout)
	}
}
