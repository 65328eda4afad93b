package asymjwt

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func hashOf(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// TestMemoryRefreshStore walks a chain through rotation, reuse, expiry and
// revocation.
func TestMemoryRefreshStore(t *testing.T) {
	var now atomic.Int64
	now.Store(testNow.UnixNano())
	s, err := NewMemoryRefreshStore(WithClock(func() time.Time { return time.Unix(0, now.Load()) }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	g := RefreshGrant{Chain: "c1", Username: "bob", Scope: "a", KeyID: "SHA256:x", Expires: testNow.Add(time.Hour)}
	if err := s.Create(ctx, g, hashOf("t1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	type call struct {
		chain, used, next string
		want              error // nil, ErrInvalidGrant or ErrRefreshReused
	}
	steps := []call{
		{"c1", "t1", "t2", nil},
		{"c1", "t1", "t2", nil}, // the same call again: a retry
		{"c2", "t2", "t3", ErrInvalidGrant},
		{"c1", "nope", "t3", ErrInvalidGrant},
		{"c1", "t2", "t3", nil},
		{"c1", "t1", "t9", ErrRefreshReused},
		{"c1", "t3", "t4", ErrInvalidGrant}, // the chain is revoked
	}
	for i, c := range steps {
		got, err := s.Rotate(ctx, c.chain, hashOf(c.used), hashOf(c.next))
		switch {
		case c.want == nil && (err != nil || got != g):
			t.Fatalf("step %d: Rotate = %+v, %v; want the grant", i, got, err)
		case c.want != nil && !errors.Is(err, c.want):
			t.Fatalf("step %d: Rotate error %v, want %v", i, err, c.want)
		case errors.Is(err, ErrRefreshReused) && !errors.Is(err, ErrInvalidGrant):
			t.Fatalf("step %d: a reuse error that is not ErrInvalidGrant", i)
		}
	}

	g2 := g
	g2.Chain = "c2"
	if err := s.Create(ctx, g2, hashOf("u1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, g2, hashOf("u9"), time.Hour); err == nil {
		t.Fatal("a chain was created twice")
	}
	now.Add(int64(time.Hour))
	if _, err := s.Rotate(ctx, "c2", hashOf("u1"), hashOf("u2")); !errors.Is(err, ErrInvalidGrant) {
		t.Fatalf("an expired chain: %v", err)
	}
	g3 := g
	g3.Chain = "c3"
	s.Create(ctx, g3, hashOf("v1"), time.Hour)
	s.Revoke(ctx, "c3")
	if _, err := s.Rotate(ctx, "c3", hashOf("v1"), hashOf("v2")); !errors.Is(err, ErrInvalidGrant) {
		t.Fatalf("a revoked chain: %v", err)
	}
	if _, err := s.Rotate(ctx, "c3", hashOf("v1"), hashOf("v2")); errors.Is(err, ErrRefreshReused) {
		t.Fatal("a revoked chain's token counts as reused")
	}
}

// TestMemoryRefreshStoreRace: of many concurrent rotations of one token,
// exactly one succeeds.
func TestMemoryRefreshStoreRace(t *testing.T) {
	s, _ := NewMemoryRefreshStore()
	ctx := t.Context()
	for round := range 20 {
		chain := fmt.Sprint("c", round)
		s.Create(ctx, RefreshGrant{Chain: chain, Username: "bob", Expires: time.Now().Add(time.Hour)}, hashOf(chain), time.Hour)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				if _, err := s.Rotate(ctx, chain, hashOf(chain), hashOf(fmt.Sprint(chain, "-", i))); err == nil {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d rotations of one token succeeded", round, wins.Load())
		}
	}
}

// TestMemoryRefreshStoreLimit: a full store sweeps ended chains, and fails
// closed when nothing can go.
func TestMemoryRefreshStoreLimit(t *testing.T) {
	var now atomic.Int64
	now.Store(testNow.UnixNano())
	s, err := NewMemoryRefreshStore(WithRefreshLimit(3), WithClock(func() time.Time { return time.Unix(0, now.Load()) }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for i := range 3 {
		if err := s.Create(ctx, RefreshGrant{Chain: fmt.Sprint(i)}, hashOf(fmt.Sprint(i)), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Create(ctx, RefreshGrant{Chain: "x"}, hashOf("x"), time.Minute); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a full store: %v, want ErrUnavailable", err)
	}
	now.Add(int64(time.Minute))
	if err := s.Create(ctx, RefreshGrant{Chain: "x"}, hashOf("x"), time.Minute); err != nil {
		t.Fatalf("after the chains expired: %v", err)
	}
	if s.Len() != 1 {
		t.Fatalf("Len = %d after the sweep, want 1", s.Len())
	}
	if _, err := NewMemoryRefreshStore(WithRefreshLimit(0)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("WithRefreshLimit(0): %v", err)
	}
}
