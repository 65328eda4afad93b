package asymjwt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// nonceClock is an injected clock tests move by hand.
type nonceClock struct{ ns atomic.Int64 }

func newNonceClock() *nonceClock {
	c := &nonceClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *nonceClock) now() time.Time           { return time.Unix(0, c.ns.Load()) }
func (c *nonceClock) advance(d time.Duration)  { c.ns.Add(int64(d)) }
func nonceN(i int) string                      { return "nonce-" + strconv.Itoa(i) }
func nonceUse(s NonceStore, u, n string) error { return s.Use(context.Background(), u, n, time.Minute) }

func TestMemoryNonceStore(t *testing.T) {
	clock := newNonceClock()
	s := mustNonceStore(WithClock(clock.now))
	const ttl = 40 * time.Second
	use := func(u, n string) error { return s.Use(context.Background(), u, n, ttl) }

	steps := []struct {
		name    string
		advance time.Duration
		user    string
		nonce   string
		want    error
	}{
		{"first use", 0, "alice", "n1", nil},
		{"reuse", 0, "alice", "n1", ErrReplay},
		{"reuse later within ttl", ttl - time.Nanosecond, "alice", "n1", ErrReplay},
		{"same nonce, other user", 0, "bob", "n1", nil},
		{"other nonce", 0, "alice", "n2", nil},
		// Concatenation must not collide: ("ab","c") vs ("a","bc").
		{"split a", 0, "ab", "c", nil},
		{"split b", 0, "a", "bc", nil},
		{"empty nonce", 0, "alice", "", nil},
		{"empty nonce again", 0, "alice", "", ErrReplay},
		{"long nonce", 0, "alice", strings.Repeat("x", 10000), nil},
		{"long nonce again", 0, "alice", strings.Repeat("x", 10000), ErrReplay},
		{"after expiry", time.Nanosecond, "alice", "n1", nil},
		{"replay of the renewed entry", ttl - time.Nanosecond, "alice", "n1", ErrReplay},
	}
	for _, st := range steps {
		clock.advance(st.advance)
		if err := use(st.user, st.nonce); !errors.Is(err, st.want) || (st.want == nil && err != nil) {
			t.Fatalf("%s: Use(%q, %q) = %v, want %v", st.name, st.user, st.nonce, err, st.want)
		}
	}

	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := s.Use(context.Background(), "alice", "fresh", ttl); err == nil || errors.Is(err, ErrReplay) {
			t.Errorf("ttl %v: Use = %v, want an error that is not ErrReplay", ttl, err)
		}
	}
	if err := s.Use(context.Background(), "alice", "forever", time.Duration(1<<63-1)); err != nil {
		t.Fatalf("huge ttl: %v", err)
	}
	clock.advance(100 * 365 * 24 * time.Hour)
	if err := nonceUse(s, "alice", "forever"); !errors.Is(err, ErrReplay) {
		t.Fatalf("huge ttl must not overflow into the past: %v", err)
	}
}

func TestMemoryNonceStoreRace(t *testing.T) {
	s := mustNonceStore()
	for round := range 5 {
		var ok, replay atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 100 {
			wg.Go(func() {
				<-start
				switch err := nonceUse(s, "alice", nonceN(round)); {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrReplay):
					replay.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if ok.Load() != 1 || replay.Load() != 99 {
			t.Fatalf("round %d: %d accepted, %d replays; want 1 and 99", round, ok.Load(), replay.Load())
		}
	}
}

func TestMemoryNonceStoreLimit(t *testing.T) {
	for _, limit := range []int{1, 10, 1000, 5000} {
		t.Run(strconv.Itoa(limit), func(t *testing.T) {
			clock := newNonceClock()
			s := mustNonceStore(WithNonceLimit(limit), WithClock(clock.now))
			for i := range limit {
				if err := nonceUse(s, "alice", nonceN(i)); err != nil {
					t.Fatalf("Use %d under the limit: %v", i, err)
				}
			}
			if s.Len() != limit {
				t.Fatalf("Len = %d, want %d", s.Len(), limit)
			}
			// Full, nothing expired: fail closed, for new nonces...
			for i := limit; i < limit+3; i++ {
				err := nonceUse(s, "alice", nonceN(i))
				if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrReplay) {
					t.Fatalf("Use beyond the limit = %v, want ErrUnavailable", err)
				}
			}
			// ...while replays are still told apart.
			if err := nonceUse(s, "alice", nonceN(0)); !errors.Is(err, ErrReplay) {
				t.Fatalf("replay in a full store = %v", err)
			}
			if s.Len() != limit {
				t.Fatalf("Len = %d after refusals, want %d", s.Len(), limit)
			}
			// Once the entries expire, the full store sweeps and accepts again.
			clock.advance(time.Minute)
			for i := limit; i < 2*limit; i++ {
				if err := nonceUse(s, "bob", nonceN(i)); err != nil {
					t.Fatalf("Use %d after expiry: %v", i, err)
				}
			}
			if s.Len() > limit {
				t.Fatalf("Len = %d, over the limit %d", s.Len(), limit)
			}
			if err := nonceUse(s, "bob", nonceN(limit)); !errors.Is(err, ErrReplay) {
				t.Fatalf("replay after the sweep = %v", err)
			}
		})
	}
}

// TestMemoryNonceStoreSweeps checks that expired entries are forgotten as new
// ones come in, so memory follows the live nonces and not the total seen.
func TestMemoryNonceStoreSweeps(t *testing.T) {
	clock := newNonceClock()
	s := mustNonceStore(WithClock(clock.now))
	const batch = 20000
	for i := range batch {
		if err := nonceUse(s, "alice", nonceN(i)); err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() != batch {
		t.Fatalf("Len = %d, want %d", s.Len(), batch)
	}
	peak := s.Len()
	// Many windows later, each with a small batch: the store keeps only about
	// two windows' worth.
	for round := 1; round <= 20; round++ {
		clock.advance(2 * time.Minute)
		for i := range batch / 10 {
			if err := nonceUse(s, "bob", nonceN(round*batch+i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s.Len() > peak/4 {
		t.Fatalf("Len = %d after the old entries expired; want it to shrink well below %d", s.Len(), peak)
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n, size := sh.n, len(sh.tab)
		sh.mu.Unlock()
		if size > 4*max(n, minTable) {
			t.Errorf("shard %d: table of %d slots kept for %d entries; want it rebuilt", i, size, n)
		}
	}
}

// TestMemoryNonceStoreClockBefore1970: with the clock at exactly -ttl the
// expiry is 0, the mark of a free slot; the nonce must still be recorded.
func TestMemoryNonceStoreClockBefore1970(t *testing.T) {
	clock := newNonceClock()
	clock.ns.Store(-int64(time.Minute))
	s := mustNonceStore(WithClock(clock.now))
	if err := nonceUse(s, "alice", "n"); err != nil {
		t.Fatal(err)
	}
	if err := nonceUse(s, "alice", "n"); !errors.Is(err, ErrReplay) {
		t.Fatalf("second use = %v, want ErrReplay", err)
	}
	if s.Len() != 1 {
		t.Fatalf("Len = %d, want 1", s.Len())
	}
}

// TestMemoryNonceStoreKey pins the key derivation: length-prefixed, fixed
// size, seeded per store.
func TestMemoryNonceStoreKey(t *testing.T) {
	a, b := mustNonceStore(), mustNonceStore()
	if a.key("ab", "c") == a.key("a", "bc") {
		t.Error("(ab, c) and (a, bc) share a key")
	}
	if k1, k2 := a.key("alice", "n"), a.key("alice", "n"); k1 != k2 {
		t.Error("key is not deterministic")
	}
	if a.key("alice", "n") == b.key("alice", "n") {
		t.Error("two stores share a seed")
	}
}

func TestMemoryNonceStoreConcurrent(t *testing.T) {
	clock := newNonceClock()
	s := mustNonceStore(WithClock(clock.now), WithNonceLimit(5000))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 3000 {
				err := nonceUse(s, fmt.Sprintf("user%d", g), nonceN(i))
				if err != nil && !errors.Is(err, ErrUnavailable) {
					t.Error(err)
					return
				}
				if i%500 == 0 {
					clock.advance(30 * time.Second)
				}
				_ = s.Len()
			}
		})
	}
	wg.Wait()
	if s.Len() > 5000 || s.Len() < 0 {
		t.Fatalf("Len = %d", s.Len())
	}
}

// BenchmarkNonceStore measures Use in steady state: a fresh nonce per call,
// the store's clock moving 100 µs per call and a 20 s ttl, so some 200,000
// nonces are live and sweeping is part of the cost.
func BenchmarkNonceStore(b *testing.B) {
	var seq atomic.Int64
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	s := mustNonceStore(WithClock(func() time.Time {
		return time.Unix(0, base+seq.Load()*int64(100*time.Microsecond))
	}))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		// About 22 bytes, like the Go client's base64url of 128 bits.
		buf := make([]byte, 0, 32)
		for pb.Next() {
			buf = strconv.AppendInt(append(buf[:0], "AAAAAAAAAAAAAAAA"...), seq.Add(1), 36)
			if err := s.Use(context.Background(), "alice", string(buf), 20*time.Second); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(s.Len()), "held")
}

// BenchmarkNonceStoreMemory reports the heap held per live nonce.
func BenchmarkNonceStoreMemory(b *testing.B) {
	const n = 200_000
	nonces := make([]string, n)
	for i := range nonces {
		nonces[i] = fmt.Sprintf("%022d", i)
	}
	var perNonce float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := mustNonceStore()
		for _, nonce := range nonces {
			if err := s.Use(context.Background(), "alice", nonce, time.Minute); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perNonce = float64(after.HeapAlloc-before.HeapAlloc) / float64(s.Len())
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perNonce, "B/nonce")
}

// BenchmarkNonceStoreMemorySteady reports the heap held per live nonce in
// steady state, expired entries awaiting their sweep included: 1,000,000
// nonces at one per 100 µs of the store's clock with a 20 s ttl, so 200,000
// are live at the end.
func BenchmarkNonceStoreMemorySteady(b *testing.B) {
	const (
		n    = 1_000_000
		step = 100 * time.Microsecond
		ttl  = 20 * time.Second
		live = int(ttl / step)
	)
	var perLive, held float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		clock := newNonceClock()
		s := mustNonceStore(WithClock(clock.now))
		buf := make([]byte, 0, 32)
		for i := range n {
			clock.advance(step)
			buf = strconv.AppendInt(append(buf[:0], "AAAAAAAAAAAAAAAA"...), int64(i), 36)
			if err := s.Use(context.Background(), "alice", string(buf), ttl); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perLive = float64(after.HeapAlloc-before.HeapAlloc) / float64(live)
		held = float64(s.Len())
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perLive, "B/nonce")
	b.ReportMetric(held/float64(live), "held/live")
}

// TestMemoryNonceStoreBytesPerNonce holds the store to the target of at most
// 100 bytes per live nonce, fresh and in steady state.
func TestMemoryNonceStoreBytesPerNonce(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates over 200k entries")
	}
	for name, bench := range map[string]func(*testing.B){
		"fresh":  BenchmarkNonceStoreMemory,
		"steady": BenchmarkNonceStoreMemorySteady,
	} {
		t.Run(name, func(t *testing.T) {
			perNonce := testing.Benchmark(bench).Extra["B/nonce"]
			t.Logf("%.1f bytes per live nonce", perNonce)
			if perNonce > 100 {
				t.Fatalf("%.1f bytes per live nonce, want at most 100", perNonce)
			}
		})
	}
}

// mustNonceStore is NewMemoryNonceStore for options known to be valid.
func mustNonceStore(opts ...MemoryNonceOption) *MemoryNonceStore {
	s, err := NewMemoryNonceStore(opts...)
	if err != nil {
		panic(err)
	}
	return s
}

// FuzzNonceTable drives one shard's table through uses of a few hundred
// keys (crafted so that many share a home slot, and runs of full slots
// wrap around the table's end), clock moves and sweeps, and holds it to a
// map that does the same. After every step each entry must be reachable
// from its home slot, the count right and the table at most 3/4 full.
func FuzzNonceTable(f *testing.F) {
	f.Add([]byte{0, 1, 0, 2, 0, 255, 0, 254, 1, 1, 2, 10, 3, 0, 0, 1})
	f.Add([]byte{0, 250, 0, 251, 0, 252, 0, 253, 0, 254, 0, 255, 0, 0, 0, 1, 2, 200, 3, 0, 0, 253})
	seq := make([]byte, 0, 600)
	for i := range 200 {
		seq = append(seq, 0, byte(i*37), 4, byte(i))
	}
	f.Add(append(seq, 2, 255, 3, 0, 2, 255, 3, 0))
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) == 0 {
			return
		}
		// The clock starts in 2026, at 0, or before 1970.
		clock := newNonceClock()
		clock.ns.Store([]int64{clock.ns.Load(), 0, -5e9, -1e18}[ops[0]%4])
		ops = ops[1:]
		s := mustNonceStore(WithClock(clock.now))
		sh := &s.shards[0]
		model := map[[16]byte]int64{} // the entries the table holds: key -> expiry
		for ; len(ops) >= 2; ops = ops[2:] {
			op, arg := ops[0], ops[1]
			now := clock.now().UnixNano()
			switch op % 4 {
			case 0, 1: // use a key for 1 to 64 seconds
				// Home slot from the top byte, shard 0 from key[8:].
				var key [16]byte
				key[7], key[9] = arg, op/4
				ttl := time.Duration(1+op/4) * time.Second
				want := error(nil)
				if exp, ok := model[key]; ok && exp > now {
					want = ErrReplay
				} else {
					model[key] = cmp.Or(now+int64(ttl), 1) // 0 marks a free slot
				}
				if err := s.use(key, ttl); err != want {
					t.Fatalf("use(%x) = %v, want %v", key, err, want)
				}
			case 2: // move the clock by up to 32 s either way
				clock.advance(time.Duration(int8(arg)) * 250 * time.Millisecond)
			case 3:
				sh.mu.Lock()
				s.sweep(sh, now)
				sh.mu.Unlock()
				for k, exp := range model {
					if exp <= now {
						delete(model, k)
					}
				}
			}
			checkNonceTable(t, s, model, clock.now().UnixNano())
		}
	})
}

// checkNonceTable checks sh against model and its own invariants. An
// expired entry the table no longer holds was swept as a use grew the
// shard: it leaves the model too. Every live entry must be held.
func checkNonceTable(t *testing.T, s *MemoryNonceStore, model map[[16]byte]int64, now int64) {
	t.Helper()
	sh := &s.shards[0]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if 4*sh.n > 3*len(sh.tab) { // find needs a free slot
		t.Fatalf("%d entries in %d slots: over 3/4 full", sh.n, len(sh.tab))
	}
	for k, exp := range model {
		if exp <= now && sh.tab != nil && sh.tab[sh.find(&k)].exp == 0 {
			delete(model, k)
		}
	}
	held := 0
	for i, e := range sh.tab {
		if e.exp == 0 {
			continue
		}
		held++
		if j := sh.find(&e.key); j != i {
			t.Fatalf("entry %x at slot %d is found at %d: unreachable from its home %d", e.key, i, j, sh.home(&e.key))
		}
		if exp, ok := model[e.key]; !ok || exp != e.exp {
			t.Fatalf("table holds %x until %d; the model %d (held: %v)", e.key, e.exp, exp, ok)
		}
	}
	if held != sh.n || held != len(model) || int64(held) != s.live.Load() {
		t.Fatalf("table holds %d entries, counts %d, the store %d, the model %d", held, sh.n, s.live.Load(), len(model))
	}
}
