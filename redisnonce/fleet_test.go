package redisnonce_test

import (
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt"
	"github.com/asymjwt/asymjwt/redisnonce"
	"github.com/redis/go-redis/v9"
)

const targetURL = "https://api.example/v1/things"

// fleet is one client and the verifiers of a fleet, all on one fixed clock.
type fleet struct {
	signer    *asymjwt.Signer
	verifiers []*asymjwt.Verifier
}

var clock = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func fixedClock() time.Time { return clock }

// newFleet makes a client signing as alice with an Ed25519 key, and a
// verifier for each store (nil: the verifier's default in-memory store).
func newFleet(t testing.TB, stores ...asymjwt.NonceStore) *fleet {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := asymjwt.KeyFromSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := asymjwt.NewSigner("alice", key, asymjwt.WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	keys := asymjwt.NewMemoryKeyStore()
	if err := keys.Add("alice", pub); err != nil {
		t.Fatal(err)
	}
	f := &fleet{signer: signer}
	for _, store := range stores {
		vopts := []asymjwt.VerifierOption{asymjwt.WithClock(fixedClock)}
		if store != nil {
			vopts = append(vopts, asymjwt.WithNonceStore(store))
		}
		v, err := asymjwt.NewVerifier(keys, vopts...)
		if err != nil {
			t.Fatal(err)
		}
		f.verifiers = append(f.verifiers, v)
	}
	return f
}

// redisStores returns n Stores on the Redis at addr, each with a client of
// its own, as n processes of a fleet would have.
func redisStores(t testing.TB, n int, addr string, opts ...redisnonce.Option) []asymjwt.NonceStore {
	var stores []asymjwt.NonceStore
	for range n {
		stores = append(stores, mustNew(newClient(t, addr), opts...))
	}
	return stores
}

// request returns a new request to targetURL carrying header, the
// Authorization value.
func request(header string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, targetURL, nil)
	r.Header.Set("Authorization", header)
	return r
}

// header signs a fresh token and returns the Authorization value.
func (f *fleet) header(t testing.TB) string {
	t.Helper()
	tok, err := f.signer.Sign(t.Context(), httptest.NewRequest(http.MethodGet, targetURL, nil))
	if err != nil {
		t.Fatal(err)
	}
	return "JWT " + tok
}

func TestFleetReplay(t *testing.T) {
	srv := startRedis(t)
	f := newFleet(t, redisStores(t, 2, srv.Addr)...)
	a, b := f.verifiers[0], f.verifiers[1]
	h := f.header(t)
	steps := []struct {
		name string
		v    *asymjwt.Verifier
		want error
	}{
		{"first verifier accepts", a, nil},
		{"second verifier refuses", b, asymjwt.ErrReplay},
		{"first verifier refuses", a, asymjwt.ErrReplay},
	}
	for _, st := range steps {
		id, err := st.v.Verify(request(h))
		if !matches(err, st.want) {
			t.Fatalf("%s: Verify = %v, want %v", st.name, err, st.want)
		}
		if err == nil && id.Username != "alice" {
			t.Fatalf("%s: Username = %q", st.name, id.Username)
		}
	}
	// A fresh token is accepted by the second verifier.
	if _, err := b.Verify(request(f.header(t))); err != nil {
		t.Fatalf("fresh token at the second verifier: %v", err)
	}
}

// TestFleetRace races 64 goroutines across two verifiers with one token:
// exactly one may get through.
func TestFleetRace(t *testing.T) {
	srv := startRedis(t)
	// A bound far above the default: this test is about atomicity, and 64
	// goroutines opening connections at once under -race on a loaded
	// machine can take longer than 500ms.
	f := newFleet(t, redisStores(t, 2, srv.Addr, redisnonce.WithTimeout(time.Minute))...)
	for round := range 3 {
		h := f.header(t)
		errs := make([]error, 64)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				r := request(h)
				<-start
				_, errs[i] = f.verifiers[i%2].Verify(r)
			})
		}
		close(start)
		wg.Wait()
		requireOneWinner(t, round, "Verify", errs)
	}
}

// serve runs one request with header through v's Middleware and returns
// the response and how long it took.
func serve(v *asymjwt.Verifier, header string) (*httptest.ResponseRecorder, time.Duration) {
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	rec := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(rec, request(header))
	return rec, time.Since(start)
}

// TestFleetRedisDown stops Redis mid-run: requests fail closed with 503
// within the bound, and pass again once Redis is back on the same port,
// with nothing restarted on the verifier's side.
func TestFleetRedisDown(t *testing.T) {
	const bound = 500 * time.Millisecond
	const limit = 5 * time.Second // generous: only an upper bound on a noisy machine
	srv := startRedis(t)
	f := newFleet(t, redisStores(t, 2, srv.Addr, redisnonce.WithTimeout(bound))...)

	check := func(phase string, want int) {
		t.Helper()
		for i, v := range f.verifiers {
			rec, took := serve(v, f.header(t))
			if rec.Code != want {
				t.Fatalf("%s, verifier %d: status %d (%s), want %d", phase, i, rec.Code, rec.Header().Get("WWW-Authenticate"), want)
			}
			if want == http.StatusServiceUnavailable {
				if rec.Header().Get("Retry-After") == "" {
					t.Errorf("%s, verifier %d: 503 without Retry-After", phase, i)
				}
				if took > limit {
					t.Errorf("%s, verifier %d: 503 after %v, bound %v", phase, i, took, bound)
				}
				t.Logf("%s, verifier %d: 503 after %v", phase, i, took)
			}
		}
	}
	check("Redis up", http.StatusNoContent)
	srv.Stop()
	for i := range 3 {
		check("Redis down, request "+string(rune('1'+i)), http.StatusServiceUnavailable)
	}
	srv.Restart(t)
	check("Redis back", http.StatusNoContent)
	check("Redis back, again", http.StatusNoContent)
}

// TestFleetSlowRedis puts the store on a server that accepts connections
// and never answers: 503 within the bound, whatever the client's timeouts.
func TestFleetSlowRedis(t *testing.T) {
	const bound = 500 * time.Millisecond
	addr := silentServer(t)
	for _, opts := range []*redis.Options{
		{Addr: addr},
		{Addr: addr, ReadTimeout: time.Minute, WriteTimeout: time.Minute},
	} {
		client := redis.NewClient(opts)
		t.Cleanup(func() { client.Close() })
		f := newFleet(t, mustNew(client, redisnonce.WithTimeout(bound)))
		v := f.verifiers[0]
		rec, took := serve(v, f.header(t))
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", rec.Code)
		}
		if took > 5*time.Second {
			t.Errorf("503 after %v, bound %v", took, bound)
		}
		t.Logf("ReadTimeout %v: 503 after %v", opts.ReadTimeout, took)
	}
}

// benchmarkVerify verifies b.N fresh tokens (signed before the timer
// starts) through a verifier with store.
func benchmarkVerify(b *testing.B, store asymjwt.NonceStore) {
	f := newFleet(b, store)
	v := f.verifiers[0]
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		reqs[i] = request(f.header(b))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := v.Verify(reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyMemory is one verification, EdDSA, with the verifier's
// default in-memory nonce store.
func BenchmarkVerifyMemory(b *testing.B) { benchmarkVerify(b, nil) }

// BenchmarkVerifyRedis is the same with the nonce recorded in a local
// redis-server: the difference is the cost of the round trip.
func BenchmarkVerifyRedis(b *testing.B) {
	benchmarkVerify(b, mustNew(startRedis(b).Client(b)))
}

// BenchmarkStoreUse is the round trip alone: one Store.Use of a fresh nonce
// on a local redis-server.
func BenchmarkStoreUse(b *testing.B) {
	s := mustNew(startRedis(b).Client(b))
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := s.Use(ctx, "alice", strconv.Itoa(i), time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}
