package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/asymjwt/asymjwt"
	"golang.org/x/oauth2"
)

// TestVerifyProxyIssuer: with -issuer-key, verify-proxy serves the token
// endpoint and its JWK set itself, and accepts the access tokens it issues
// as Bearer (upstream sees the same identity headers); without it, a
// Bearer token never passes.
func TestVerifyProxyIssuer(t *testing.T) {
	t.Parallel()
	env := newProxyEnv(t)
	issuerKey := newTestUser(t, env.dir, "", "issuer")
	p := env.verifyProxy(t, "-issuer-key", issuerKey.keyFile, "-token-ttl", "2m")

	resp, err := http.Get(p.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []struct{ Kid string } `json:"keys"`
	}
	err = json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(set.Keys) != 1 || set.Keys[0].Kid == "" {
		t.Fatalf("JWK set: %d %+v %v", resp.StatusCode, set, err)
	}

	ctx := context.Background()
	src, err := asymjwt.NewTokenSource(ctx, env.alice.signer, p.URL+"/oauth/token")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "Bearer" || tok.AccessToken == "" {
		t.Fatalf("token type %q, empty: %v", tok.TokenType, tok.AccessToken == "")
	}
	client := oauth2.NewClient(ctx, oauth2.StaticTokenSource(tok))
	for i := range 2 { // an access token is good for many requests
		resp, err := client.Get(p.URL + "/echo")
		if err != nil {
			t.Fatal(err)
		}
		var e echoed
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("Bearer request %d: %d %v", i, resp.StatusCode, err)
		}
		if got := e.Header["Asymjwt-User"]; len(got) != 1 || got[0] != "alice" || len(e.Header["Authorization"]) != 0 {
			t.Fatalf("upstream saw %v", e.Header)
		}
	}

	// The same access token at a proxy that issues nothing: refused, and
	// upstream never sees it.
	plain := env.verifyProxy(t)
	before := env.up.hits.Load()
	req, _ := http.NewRequest("GET", plain.URL+"/echo", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || env.up.hits.Load() != before {
		t.Fatalf("Bearer without -issuer-key: %d, upstream hits %d -> %d", resp.StatusCode, before, env.up.hits.Load())
	}
	if strings.Contains(p.stderr.String(), tok.AccessToken) {
		t.Fatal("the access token is in the proxy's log")
	}
}
