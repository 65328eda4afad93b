package asymjwt

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakeMetrics records what a Verifier reports.
type fakeMetrics struct {
	mu     sync.Mutex
	events []string
	durs   []time.Duration
}

func (m *fakeMetrics) add(event string, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, event)
	m.durs = append(m.durs, d)
}

func (m *fakeMetrics) Verified(result string, d time.Duration) { m.add("verified "+result, d) }

func (m *fakeMetrics) KeyStoreLookup(d time.Duration, err error) { m.add("keys "+errName(err), d) }

func (m *fakeMetrics) NonceStoreUse(d time.Duration, err error) { m.add("nonce "+errName(err), d) }

func (m *fakeMetrics) BodyRefused(result string) { m.add("body refused "+result, 0) }

func errName(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrReplay):
		return "replay"
	}
	return "error"
}

func (m *fakeMetrics) take() ([]string, []time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, d := m.events, m.durs
	m.events, m.durs = nil, nil
	return e, d
}

// slowKeys answers after a pause, so the lookup's duration can be seen.
type slowKeys struct {
	KeyStore
	pause time.Duration
}

func (s slowKeys) PublicKeys(ctx context.Context, user string) ([]PublicKey, error) {
	time.Sleep(s.pause)
	return s.KeyStore.PublicKeys(ctx, user)
}

func TestWithMetrics(t *testing.T) {
	k := loadTestKeys(t)
	m := &fakeMetrics{}
	h := newHarness(t, WithMetrics(m))
	h.add("alice", k.ed)
	good := h.token("alice", k.ed, h.now, nil)

	tests := []struct {
		name  string
		auth  string
		want  []string
		token bool // checked with VerifyToken instead of Verify
	}{
		{"accepted", "JWT " + good, []string{"keys ok", "nonce ok", "verified ok"}, false},
		{"replay", "JWT " + good, []string{"keys ok", "nonce replay", "verified replay"}, false},
		{"no token", "", []string{"verified no_token"}, false},
		{"malformed: no store asked", "JWT a.b", []string{"verified malformed"}, false},
		{"unknown user", "JWT " + h.token("bob", k.ed, h.now, nil), []string{"keys ok", "verified invalid_signature"}, false},
		{"bad signature: nonce store not asked", "JWT " + h.token("alice", k.ed2, h.now, nil), []string{"keys ok", "verified invalid_signature"}, false},
		{"stale", "JWT " + h.token("alice", k.ed, h.now.Add(-time.Minute), nil), []string{"keys ok", "verified stale"}, false},
		{"VerifyToken accepted", h.token("alice", k.ed, h.now, nil), []string{"keys ok", "nonce ok", "verified ok"}, true},
		{"VerifyToken malformed", "x", []string{"verified malformed"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.token {
				h.v.VerifyToken(context.Background(), tt.auth, "", "")
			} else {
				h.verify("GET", "http://x/", tt.auth)
			}
			got, durs := m.take()
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("reported %q, want %q", got, tt.want)
			}
			for i, d := range durs {
				if d < 0 || d > time.Minute {
					t.Fatalf("%s: duration %v", got[i], d)
				}
			}
		})
	}

	t.Run("stores that cannot answer", func(t *testing.T) {
		for name, v := range map[string]*Verifier{
			"keys":  mustVerifier(t, failingKeys{}, WithMetrics(m), WithClock(func() time.Time { return testNow })),
			"nonce": mustVerifier(t, h.keys, WithMetrics(m), WithClock(func() time.Time { return testNow }), WithNonceStore(failingNonces{})),
		} {
			r := httptest.NewRequest("GET", "http://x/", nil)
			r.Header.Set("Authorization", "JWT "+h.token("alice", k.ed, testNow, nil))
			v.Verify(r)
			got, _ := m.take()
			want := []string{"keys error", "verified unavailable"}
			if name == "nonce" {
				want = []string{"keys ok", "nonce error", "verified unavailable"}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s: reported %q, want %q", name, got, want)
			}
		}
	})

	t.Run("durations are measured on the wall clock", func(t *testing.T) {
		// The verifier's own clock is fixed; the metrics must still see time pass.
		v := mustVerifier(t, slowKeys{h.keys, 20 * time.Millisecond}, WithMetrics(m), WithClock(func() time.Time { return testNow }))
		r := httptest.NewRequest("GET", "http://x/", nil)
		r.Header.Set("Authorization", "JWT "+h.token("alice", k.ed, testNow, nil))
		if _, err := v.Verify(r); err != nil {
			t.Fatal(err)
		}
		got, durs := m.take()
		if len(durs) != 3 || durs[0] < 20*time.Millisecond || durs[2] < durs[0] || durs[1] > durs[2] {
			t.Fatalf("reported %q with durations %v: want keys >= 20ms and verified >= keys", got, durs)
		}
	})

	t.Run("nil is an invalid option", func(t *testing.T) {
		_, err := NewVerifier(h.keys, WithMetrics(nil))
		if !errors.Is(err, ErrInvalidOption) || err.Error() != "asymjwt: WithMetrics: invalid option: nil VerifierMetrics" {
			t.Fatalf("err = %v", err)
		}
	})
}

func mustVerifier(t testing.TB, keys KeyStore, opts ...VerifierOption) *Verifier {
	t.Helper()
	v, err := NewVerifier(keys, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// noMetrics is a VerifierMetrics that does nothing, to measure what the
// timing itself costs.
type noMetrics struct{}

func (noMetrics) Verified(string, time.Duration)      {}
func (noMetrics) KeyStoreLookup(time.Duration, error) {}
func (noMetrics) NonceStoreUse(time.Duration, error)  {}

// BenchmarkVerifyMetrics is BenchmarkVerify/EdDSA without and with a
// (no-op) VerifierMetrics: the cost of the three pairs of clock readings and the
// calls, against the cheapest signature check.
func BenchmarkVerifyMetrics(b *testing.B) {
	key := benchKeys(b)["EdDSA"]
	for _, name := range []string{"without", "with"} {
		b.Run(name, func(b *testing.B) {
			keys := NewMemoryKeyStore()
			if err := keys.Add("svc", key.Public()); err != nil {
				b.Fatal(err)
			}
			s, err := NewSigner("svc", key, WithClock(func() time.Time { return testNow }))
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest("GET", "http://api.example.com/v1/items", nil)
			pool := newTokenPool(b, s, req)
			opts := []VerifierOption{WithNonceStore(pool), WithClock(func() time.Time { return testNow })}
			if name == "with" {
				opts = append(opts, WithMetrics(noMetrics{}))
			}
			v := mustVerifier(b, keys, opts...)
			loopCPU(b, func() {
				pool.load()
				if _, err := v.Verify(req); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}
