package asymjwt

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// The Verifier reads the keys of this package's own stores without a copy
// (Verifier.lookupKeys); these tests hold it to what that must not change.

// TestIdentityKeyIsACopy: the Verifier reads its own stores' keys without
// copying them, so what it hands out in an Identity must be a copy.
func TestIdentityKeyIsACopy(t *testing.T) {
	k := loadTestKeys(t)
	h := newHarness(t)
	if err := h.keys.AddPublicKeys("alice", PublicKey{Key: k.ed.Public(), Restrictions: KeyRestrictions{From: []string{"192.0.2.0/24"}}}); err != nil {
		t.Fatal(err)
	}
	verify := func() (*Identity, error) {
		h.now = h.now.Add(1)
		r := httptest.NewRequest("GET", "http://api.example.com/v1/items", nil)
		r.RemoteAddr = "192.0.2.9:1234"
		r.Header.Set("Authorization", "JWT "+h.token("alice", k.ed, h.now, nil))
		return h.v.Verify(r)
	}
	id, err := verify()
	if err != nil {
		t.Fatal(err)
	}
	id.Key.Restrictions.From[0] = "0.0.0.0/0"
	keys, err := h.keys.PublicKeys(context.Background(), "alice")
	if err != nil || len(keys) != 1 || keys[0].Restrictions.From[0] != "192.0.2.0/24" {
		t.Fatalf("store's key changed through an Identity: %+v, %v", keys, err)
	}
	if _, err := verify(); err != nil {
		t.Fatalf("after changing an Identity: %v", err)
	}
}

// refusingStore embeds one of the package's stores and refuses every user
// in its own PublicKeys, as a policy wrapper would.
type refusingMemoryStore struct{ *MemoryKeyStore }

func (refusingMemoryStore) PublicKeys(context.Context, string) ([]PublicKey, error) { return nil, nil }

type refusingDirStore struct{ *DirKeyStore }

func (refusingDirStore) PublicKeys(context.Context, string) ([]PublicKey, error) { return nil, nil }

// TestVerifierAsksAWrappingStore: a KeyStore that embeds a MemoryKeyStore or
// DirKeyStore and has its own PublicKeys is asked through it; the
// Verifier's faster path for the package's own stores does not bypass it.
func TestVerifierAsksAWrappingStore(t *testing.T) {
	k := loadTestKeys(t)
	mem := NewMemoryKeyStore()
	if err := mem.Add("alice", k.ed.Public()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sshPub, err := ssh.NewPublicKey(k.ed.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alice.pub"), ssh.MarshalAuthorizedKey(sshPub), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := NewDirKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		store KeyStore
		want  error
	}{
		{"MemoryKeyStore", mem, nil},
		{"DirKeyStore", ds, nil},
		{"wrapped MemoryKeyStore", refusingMemoryStore{mem}, ErrUnknownUser},
		{"wrapped DirKeyStore", refusingDirStore{ds}, ErrUnknownUser},
	} {
		t.Run(tt.name, func(t *testing.T) {
			now := testNow
			v, err := NewVerifier(tt.store, WithClock(func() time.Time { return now }))
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewSigner("alice", k.ed, WithClock(func() time.Time { return now }))
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "http://api.example.com/v1/items", nil)
			tok, err := s.Sign(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Authorization", "JWT "+tok)
			if _, err := v.Verify(r); !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// mutableKeyStore hands over the same key slice every time, whose bytes
// the test changes in place.
type mutableKeyStore struct{ key ed25519.PublicKey }

func (s *mutableKeyStore) PublicKeys(context.Context, string) ([]PublicKey, error) {
	return []PublicKey{{Key: s.key}}, nil
}

// TestVerifierEd25519KeysFollowTheStore: the Verifier keeps the decoded
// form of the Ed25519 keys it verifies with (internal/edverify). A key the
// store no longer gives must stop verifying at once, and a new one verify
// at once, even when a store changes a key's bytes in place.
func TestVerifierEd25519KeysFollowTheStore(t *testing.T) {
	newKey := func(seed byte) (Key, ed25519.PublicKey) {
		priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
		k, err := KeyFromSigner(priv)
		if err != nil {
			t.Fatal(err)
		}
		return k, priv.Public().(ed25519.PublicKey)
	}
	keyA, pubA := newKey(1)
	keyB, pubB := newKey(2)

	t.Run("MemoryKeyStore", func(t *testing.T) {
		h := newHarness(t)
		check := func(step string, key Key, want error) {
			t.Helper()
			h.now = h.now.Add(time.Second)
			_, err := h.verify("GET", "http://api.example.com/v1/items", "JWT "+h.token("alice", key, h.now, nil))
			if !errors.Is(err, want) {
				t.Fatalf("%s: err = %v, want %v", step, err, want)
			}
		}
		if err := h.keys.Set("alice", []PublicKey{{Key: pubA}}); err != nil {
			t.Fatal(err)
		}
		check("A stored", keyA, nil)
		check("A stored, again", keyA, nil)
		if err := h.keys.Set("alice", []PublicKey{{Key: pubB}}); err != nil {
			t.Fatal(err)
		}
		check("A replaced by B: A", keyA, ErrBadSignature)
		check("A replaced by B: B", keyB, nil)
		if n := h.v.ed.Len(); n != 2 {
			t.Errorf("%d decoded keys cached, want 2", n)
		}
	})

	t.Run("key changed in place", func(t *testing.T) {
		store := &mutableKeyStore{key: bytes.Clone(pubA)}
		v, err := NewVerifier(store, WithClock(func() time.Time { return testNow }))
		if err != nil {
			t.Fatal(err)
		}
		verify := func(key Key) error {
			h := &harness{t: t, now: testNow}
			r := httptest.NewRequest("GET", "http://api.example.com/v1/items", nil)
			r.Header.Set("Authorization", "JWT "+h.token("alice", key, testNow, nil))
			_, err := v.Verify(r)
			return err
		}
		if err := verify(keyA); err != nil {
			t.Fatalf("A: %v", err)
		}
		copy(store.key, pubB)
		if err := verify(keyA); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("A after the store's key became B: err = %v, want ErrBadSignature", err)
		}
		if err := verify(keyB); err != nil {
			t.Fatalf("B: %v", err)
		}
	})
}
