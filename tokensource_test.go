package asymjwt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// grantCounter records the grant_type of every token request a handler
// gets.
type grantCounter struct {
	next http.Handler
	mu   sync.Mutex
	seen []string
}

func (g *grantCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	g.mu.Lock()
	g.seen = append(g.seen, form.Get("grant_type"))
	g.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	g.next.ServeHTTP(w, r)
}

func (g *grantCounter) grants() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.seen...)
}

// counted serves x's endpoint at /counted/token through a grantCounter.
func counted(x *exchange) (*grantCounter, string) {
	g := &grantCounter{next: x.ep}
	mux := x.srv.Config.Handler.(*http.ServeMux)
	mux.Handle("/counted/token", g)
	return g, x.srv.URL + "/counted/token"
}

// TestTokenSource: the source buys a token with an assertion, reuses it,
// refreshes with the refresh token, keeps that token to itself, and when
// the chain has ended begins again with a new assertion.
func TestTokenSource(t *testing.T) {
	keys := loadTestKeys(t)
	x := newExchange(t, nil)
	x.addUser("alice", keys.p256)
	g, tokenURL := counted(x)
	s, _ := NewSigner("alice", keys.p256, WithClock(x.now))
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, x.srv.Client())
	// The endpoint's URL for aud is x.tokenURL: the counted path is the same
	// endpoint under another path.
	src, err := NewTokenSource(ctx, s, tokenURL, WithAssertionAudience(x.tokenURL), WithScopes("read", "write"))
	if err != nil {
		t.Fatal(err)
	}
	client := oauth2.NewClient(ctx, src)
	for range 3 {
		resp, err := client.Get(x.srv.URL + "/api/hello")
		if err != nil {
			t.Fatal(err)
		}
		var id map[string]any
		json.NewDecoder(resp.Body).Decode(&id)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || id["kind"] != "access token" || id["scope"] != "read write" {
			t.Fatalf("API answered %s %v", resp.Status, id)
		}
	}
	if got := g.grants(); len(got) != 1 || got[0] != GrantTypeJWTBearer {
		t.Fatalf("three calls made exchanges %v, want one jwt-bearer", got)
	}
	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" || tok.Extra("refresh_token") != nil || tok.Extra("scope") != "read write" {
		t.Fatalf("the source hands out its refresh token or loses the scope: %+v", tok)
	}

	// The inner source, without the reuse layer: each call exchanges.
	inner := &bearerGrantSource{ctx: ctx, signer: s, tokenURL: tokenURL, cfg: exchangeConfig{audience: x.tokenURL}}
	for range 2 {
		if _, err := inner.Token(); err != nil {
			t.Fatal(err)
		}
	}
	x.advance(DefaultRefreshTokenLifetime + time.Minute) // the chain has ended
	if _, err := inner.Token(); err != nil {
		t.Fatal(err)
	}
	want := []string{GrantTypeJWTBearer, GrantTypeJWTBearer, "refresh_token", "refresh_token", GrantTypeJWTBearer}
	if got := g.grants(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("grants %v, want %v", got, want)
	}
}

// TestTokenSourceConcurrent: many goroutines through one oauth2.Transport
// make one exchange.
func TestTokenSourceConcurrent(t *testing.T) {
	keys := loadTestKeys(t)
	x := newExchange(t, nil)
	x.addUser("alice", keys.ed2)
	g, tokenURL := counted(x)
	s, _ := NewSigner("alice", keys.ed2)
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, x.srv.Client())
	src, err := NewTokenSource(ctx, s, tokenURL, WithAssertionAudience(x.tokenURL))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &oauth2.Transport{Source: src, Base: x.srv.Client().Transport}}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			resp, err := client.Get(x.srv.URL + "/api/hello")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = errors.New(resp.Status)
				}
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(g.grants()); n != 1 {
		t.Fatalf("%d exchanges, want 1", n)
	}
}

// TestTokenSourceRefused: a refusal is an *oauth2.RetrieveError with the
// endpoint's error code; bad arguments are errors from the constructor.
func TestTokenSourceRefused(t *testing.T) {
	keys := loadTestKeys(t)
	x := newExchange(t, nil)
	s, _ := NewSigner("nobody", keys.ed)
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, x.srv.Client())
	src, err := NewTokenSource(ctx, s, x.tokenURL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("Token: %v, want a RetrieveError with invalid_grant", err)
	}
	for name, f := range map[string]func() error{
		"nil signer": func() error { _, err := NewTokenSource(ctx, nil, x.tokenURL); return err },
		"relative URL": func() error {
			_, err := NewTokenSource(ctx, s, "/oauth/token")
			return err
		},
		"scope with a space": func() error {
			_, err := NewClientCredentialsTokenSource(ctx, s, x.tokenURL, WithScopes("a b"))
			return err
		},
		"empty audience": func() error {
			_, err := NewTokenSource(ctx, s, x.tokenURL, WithAssertionAudience(""))
			return err
		},
	} {
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestClientCredentialsTokenSource: each exchange is a client_credentials
// grant authenticated by a new private_key_jwt assertion (RFC 7523 §2.2),
// and no secret.
func TestClientCredentialsTokenSource(t *testing.T) {
	keys := loadTestKeys(t)
	var mu sync.Mutex
	var forms []url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		forms = append(forms, r.PostForm)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"at-`+r.PostForm.Get("client_assertion")[:8]+`","token_type":"Bearer","expires_in":1}`)
	}))
	defer srv.Close()
	s, _ := NewSigner("svc-42", keys.rsa)
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, srv.Client())
	src, err := NewClientCredentialsTokenSource(ctx, s, srv.URL+"/token", WithScopes("api"))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		// expires_in 1 s is within oauth2's expiry delta: every call exchanges.
		if _, err := src.Token(); err != nil {
			t.Fatal(err)
		}
	}
	if len(forms) != 2 {
		t.Fatalf("%d exchanges, want 2", len(forms))
	}
	if forms[0].Get("client_assertion") == forms[1].Get("client_assertion") {
		t.Fatal("an assertion was sent twice")
	}
	for _, f := range forms {
		if f.Get("grant_type") != "client_credentials" || f.Get("client_assertion_type") != ClientAssertionTypeJWTBearer ||
			f.Get("scope") != "api" || f.Has("client_secret") {
			t.Fatalf("form %v", f)
		}
		claims := verifyWithGolangJWT(t, f.Get("client_assertion"), keys.rsa.Public(), RS512)
		iat, _ := claims["iat"].(float64)
		exp, _ := claims["exp"].(float64)
		if claims["iss"] != "svc-42" || claims["sub"] != "svc-42" || claims["aud"] != srv.URL+"/token" || claims["jti"] == nil || exp-iat != 60 {
			t.Fatalf("assertion claims %v", claims)
		}
		if fp, _ := Fingerprint(keys.rsa.Public()); !strings.Contains(headerOf(t, f.Get("client_assertion")), `"kid":"`+fp+`"`) {
			t.Fatalf("header %s: want the key's fingerprint as kid", headerOf(t, f.Get("client_assertion")))
		}
	}

	src, err = NewClientCredentialsTokenSource(ctx, s, srv.URL+"/token", WithAssertionKeyID("key-7"), WithAssertionAudience("https://id.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Token(); err != nil {
		t.Fatal(err)
	}
	a := forms[2].Get("client_assertion")
	if h := headerOf(t, a); h != `{"alg":"RS512","typ":"JWT","kid":"key-7"}` {
		t.Fatalf("header %s", h)
	}
	if c := verifyWithGolangJWT(t, a, keys.rsa.Public(), RS512); c["aud"] != "https://id.example.com" {
		t.Fatalf("aud %v", c["aud"])
	}
}
