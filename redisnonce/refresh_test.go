package redisnonce_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt"
	"github.com/asymjwt/asymjwt/redisnonce"
	"github.com/redis/go-redis/v9"
)

func hashOf(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func mustRefreshStore(t testing.TB, client redis.UniversalClient, opts ...redisnonce.Option) *redisnonce.RefreshStore {
	t.Helper()
	s, err := redisnonce.NewRefreshStore(client, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRefreshStore walks a chain through rotation, a retried rotation,
// reuse (which revokes the chain), revocation and expiry, in a real Redis.
func TestRefreshStore(t *testing.T) {
	srv := startRedis(t)
	client := srv.Client(t)
	s := mustRefreshStore(t, client)
	ctx := t.Context()
	g := asymjwt.RefreshGrant{Chain: "chain1", Username: "bob", Scope: "a b", KeyID: "SHA256:abc", Expires: time.UnixMilli(time.Now().Add(time.Hour).UnixMilli())}
	if err := s.Create(ctx, g, hashOf("t1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, g, hashOf("t1"), time.Hour); err != nil {
		t.Fatalf("a retried Create: %v", err)
	}
	other := g
	other.Username = "mallory"
	if err := s.Create(ctx, other, hashOf("m1"), time.Hour); err == nil {
		t.Fatal("a chain was created over another")
	}
	steps := []struct {
		chain, used, next string
		want              error
	}{
		{"chain1", "t1", "t2", nil},
		{"chain1", "t1", "t2", nil}, // a retry
		{"chain2", "t2", "t3", asymjwt.ErrInvalidGrant},
		{"chain1", "nope", "t3", asymjwt.ErrInvalidGrant},
		{"chain1", "t2", "t3", nil},
		{"chain1", "t1", "t9", asymjwt.ErrRefreshReused},
		{"chain1", "t3", "t4", asymjwt.ErrInvalidGrant},
		{"{chain1}", "t3", "t4", asymjwt.ErrInvalidGrant},
	}
	for i, c := range steps {
		got, err := s.Rotate(ctx, c.chain, hashOf(c.used), hashOf(c.next))
		switch {
		case c.want == nil && (err != nil || got != g):
			t.Fatalf("step %d: Rotate = %+v, %v; want %+v", i, got, err, g)
		case c.want != nil && !errors.Is(err, c.want):
			t.Fatalf("step %d: Rotate error %v, want %v", i, err, c.want)
		case errors.Is(err, asymjwt.ErrRefreshReused) && !errors.Is(err, asymjwt.ErrInvalidGrant):
			t.Fatalf("step %d: reuse is not ErrInvalidGrant", i)
		}
	}

	g2 := g
	g2.Chain = "chain2"
	s.Create(ctx, g2, hashOf("u1"), time.Hour)
	if err := s.Revoke(ctx, "chain2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotate(ctx, "chain2", hashOf("u1"), hashOf("u2")); !errors.Is(err, asymjwt.ErrInvalidGrant) {
		t.Fatalf("a revoked chain: %v", err)
	}

	g3 := g
	g3.Chain = "chain3"
	s.Create(ctx, g3, hashOf("v1"), 50*time.Millisecond)
	// Redis expires keys by its own clock: poll, bounded, until it has.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for client.Exists(ctx, redisnonce.DefaultRefreshKeyPrefix+"{chain3}:c").Val() != 0 {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("chain still present 5s after a 50ms TTL")
		}
	}
	if _, err := s.Rotate(ctx, "chain3", hashOf("v1"), hashOf("v2")); !errors.Is(err, asymjwt.ErrInvalidGrant) {
		t.Fatalf("an expired chain: %v", err)
	}

	// Every key expires, and none holds anything but hashes and the grant.
	keys, err := client.Keys(ctx, redisnonce.DefaultRefreshKeyPrefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("KEYS: %v, %v", keys, err)
	}
	for _, k := range keys {
		if ttl := client.PTTL(ctx, k).Val(); ttl <= 0 {
			t.Errorf("key %s has no expiry (%v)", k, ttl)
		}
	}
}

// TestRefreshStoreRace: two endpoints' stores rotating one token at once:
// exactly one succeeds.
func TestRefreshStoreRace(t *testing.T) {
	srv := startRedis(t)
	stores := []*redisnonce.RefreshStore{mustRefreshStore(t, srv.Client(t)), mustRefreshStore(t, newClient(t, srv.Addr))}
	ctx := t.Context()
	for round := range 10 {
		chain := fmt.Sprint("race", round)
		stores[0].Create(ctx, asymjwt.RefreshGrant{Chain: chain, Username: "bob"}, hashOf(chain), time.Minute)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				if _, err := stores[i%2].Rotate(ctx, chain, hashOf(chain), hashOf(fmt.Sprint(chain, i))); err == nil {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d rotations succeeded", round, wins.Load())
		}
	}
}

// TestRefreshStoreUnavailable: a Redis that is down, or hangs, fails
// closed within the bound; after a restart the store works again.
func TestRefreshStoreUnavailable(t *testing.T) {
	srv := startRedis(t)
	s := mustRefreshStore(t, srv.Client(t), redisnonce.WithTimeout(300*time.Millisecond))
	ctx := t.Context()
	srv.Stop()
	start := time.Now()
	err := s.Create(ctx, asymjwt.RefreshGrant{Chain: "c"}, hashOf("c"), time.Minute)
	if !errors.Is(err, asymjwt.ErrUnavailable) || time.Since(start) > 2*time.Second {
		t.Fatalf("Redis down: %v after %v", err, time.Since(start))
	}
	if _, err := s.Rotate(ctx, "c", hashOf("c"), hashOf("d")); !errors.Is(err, asymjwt.ErrUnavailable) {
		t.Fatalf("Rotate with Redis down: %v", err)
	}
	srv.Restart(t)
	if err := s.Create(ctx, asymjwt.RefreshGrant{Chain: "c"}, hashOf("c"), time.Minute); err != nil {
		t.Fatalf("after the restart: %v", err)
	}

	hung := mustRefreshStore(t, newClient(t, silentServer(t)), redisnonce.WithTimeout(200*time.Millisecond))
	start = time.Now()
	if _, err := hung.Rotate(ctx, "c", hashOf("c"), hashOf("d")); !errors.Is(err, asymjwt.ErrUnavailable) || time.Since(start) > 2*time.Second {
		t.Fatalf("a hanging Redis: %v after %v", err, time.Since(start))
	}
}

// TestRefreshStoreFleet: two token endpoints sharing Redis: a refresh token
// rotated at one and presented again at the other is a reuse, and revokes
// the chain for both; Redis holds no refresh token.
func TestRefreshStoreFleet(t *testing.T) {
	srv := startRedis(t)
	client := srv.Client(t)
	pub, priv, _ := ed25519.GenerateKey(nil)
	userKey, _ := asymjwt.KeyFromSigner(priv)
	_, issuerPriv, _ := ed25519.GenerateKey(nil)
	issuerKey, _ := asymjwt.KeyFromSigner(issuerPriv)
	keys := asymjwt.NewMemoryKeyStore()
	keys.Add("alice", pub)
	signer, _ := asymjwt.NewSigner("alice", userKey)

	var endpoints []*httptest.Server
	for range 2 {
		mux := http.NewServeMux()
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		issuer, err := asymjwt.NewIssuer("https://auth.example.com", issuerKey)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := asymjwt.NewVerifier(keys, asymjwt.WithNonceStore(mustNew(client)))
		ep, err := asymjwt.NewTokenEndpoint(v, issuer, "https://auth.example.com/oauth/token", asymjwt.WithRefreshStore(mustRefreshStore(t, client)))
		if err != nil {
			t.Fatal(err)
		}
		mux.Handle("/oauth/token", ep)
		endpoints = append(endpoints, srv)
	}
	post := func(i int, form url.Values) map[string]any {
		t.Helper()
		resp, err := http.PostForm(endpoints[i].URL+"/oauth/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &m)
		return m
	}
	assertion, _ := signer.SignAssertion(t.Context(), "https://auth.example.com/oauth/token")
	first := post(0, url.Values{"grant_type": {asymjwt.GrantTypeJWTBearer}, "assertion": {assertion}})
	if first["refresh_token"] == nil {
		t.Fatalf("the grant: %v", first)
	}
	if again := post(1, url.Values{"grant_type": {asymjwt.GrantTypeJWTBearer}, "assertion": {assertion}}); again["error"] != "invalid_grant" {
		t.Fatalf("the assertion at the other endpoint: %v", again)
	}
	rt1 := first["refresh_token"].(string)
	second := post(1, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}})
	rt2, _ := second["refresh_token"].(string)
	if rt2 == "" {
		t.Fatalf("refresh at the other endpoint: %v", second)
	}
	if reuse := post(0, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}}); reuse["error"] != "invalid_grant" ||
		!strings.Contains(fmt.Sprint(reuse["error_description"]), "reused") {
		t.Fatalf("reuse: %v", reuse)
	}
	if after := post(1, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}}); after["error"] != "invalid_grant" {
		t.Fatalf("the chain's newest token after the reuse: %v", after)
	}

	keysInRedis, _ := client.Keys(context.Background(), "*").Result()
	for _, k := range keysInRedis {
		v, _ := client.Get(context.Background(), k).Result()
		for _, rt := range []string{rt1, rt2} {
			_, secret, _ := strings.Cut(rt, ".")
			if strings.Contains(k, secret) || strings.Contains(v, secret) {
				t.Fatalf("Redis holds a refresh token's secret in %s", k)
			}
		}
	}
}

func TestNewRefreshStoreRefusesInvalidOptions(t *testing.T) {
	if _, err := redisnonce.NewRefreshStore(nil); !errors.Is(err, asymjwt.ErrInvalidOption) {
		t.Fatalf("nil client: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := redisnonce.NewRefreshStore(c, redisnonce.WithTimeout(0)); !errors.Is(err, asymjwt.ErrInvalidOption) {
		t.Fatalf("zero timeout: %v", err)
	}
}
