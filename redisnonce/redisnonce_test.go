package redisnonce_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt"
	"github.com/asymjwt/asymjwt/redisnonce"
	"github.com/redis/go-redis/v9"
)

// use is one call to Store.Use and the error it must wrap (nil for success).
type use struct {
	user, nonce string
	want        error
}

func TestUse(t *testing.T) {
	srv := startRedis(t)
	client := srv.Client(t)
	tests := []struct {
		name  string
		calls []use
	}{
		{"first use, then replay", []use{
			{"alice", "n1", nil},
			{"alice", "n1", asymjwt.ErrReplay},
			{"alice", "n1", asymjwt.ErrReplay},
		}},
		{"same nonce, other user", []use{
			{"alice", "n1", nil},
			{"bob", "n1", nil},
			{"bob", "n1", asymjwt.ErrReplay},
		}},
		{"same user, other nonce", []use{
			{"alice", "n1", nil},
			{"alice", "n2", nil},
		}},
		{"no ambiguity between username and nonce", []use{
			{"ab", "c", nil},
			{"a", "bc", nil},
			{"abc", "", nil},
			{"", "abc", nil},
		}},
		{"numeric nonce of the Python client", []use{
			{"alice", "0.8444218515250481", nil},
			{"alice", "0.8444218515250481", asymjwt.ErrReplay},
		}},
		{"inputs at the bound", []use{
			{strings.Repeat("u", redisnonce.MaxInputLen), strings.Repeat("n", redisnonce.MaxInputLen), nil},
			{strings.Repeat("u", redisnonce.MaxInputLen), strings.Repeat("n", redisnonce.MaxInputLen), asymjwt.ErrReplay},
		}},
		{"inputs over the bound", []use{
			{"alice", strings.Repeat("n", redisnonce.MaxInputLen+1), redisnonce.ErrInputTooLong},
			{strings.Repeat("u", redisnonce.MaxInputLen+1), "n1", redisnonce.ErrInputTooLong},
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A prefix per case keeps the cases apart in one Redis.
			s := mustNew(client, redisnonce.WithKeyPrefix(fmt.Sprintf("test%d:", i)))
			for j, c := range tt.calls {
				err := s.Use(t.Context(), c.user, c.nonce, time.Minute)
				if !matches(err, c.want) {
					t.Fatalf("call %d: Use(%.16q, %.16q) = %v, want %v", j, c.user, c.nonce, err, c.want)
				}
			}
		})
	}
	t.Run("nothing written for oversized input", func(t *testing.T) {
		n, err := client.Keys(t.Context(), "test6:*").Result()
		if err != nil || len(n) != 0 {
			t.Fatalf("keys under the oversized case's prefix: %v, %v; want none", n, err)
		}
	})
}

func matches(err, want error) bool {
	if want == nil {
		return err == nil
	}
	return errors.Is(err, want)
}

func TestUseTTL(t *testing.T) {
	srv := startRedis(t)
	client := srv.Client(t)
	s := mustNew(client)
	tests := []struct {
		ttl      time.Duration
		min, max time.Duration // bounds of the key's PTTL right after Use
	}{
		{40 * time.Second, 39 * time.Second, 40 * time.Second},
		{20*time.Second + time.Nanosecond, 19 * time.Second, 20*time.Second + time.Millisecond},
		{1500 * time.Millisecond, time.Second, 1500 * time.Millisecond},
		{time.Nanosecond, 0, time.Millisecond},
		{0, 0, time.Millisecond},
		{-time.Hour, 0, time.Millisecond},
	}
	for i, tt := range tests {
		t.Run(tt.ttl.String(), func(t *testing.T) {
			nonce := fmt.Sprint("ttl", i)
			if err := s.Use(t.Context(), "alice", nonce, tt.ttl); err != nil {
				t.Fatalf("Use: %v", err)
			}
			pttl, err := client.PTTL(t.Context(), s.Key("alice", nonce)).Result()
			if err != nil {
				t.Fatal(err)
			}
			// A 1ms key may be gone already: PTTL then says -2ns (no key).
			if tt.min == 0 && pttl == -2*time.Nanosecond {
				return
			}
			if pttl < tt.min || pttl > tt.max {
				t.Fatalf("PTTL = %v, want within [%v, %v]", pttl, tt.min, tt.max)
			}
		})
	}
}

// TestUseExpires checks that Redis's own expiry frees the nonce: the store
// keeps no state of its own that would still refuse it.
func TestUseExpires(t *testing.T) {
	srv := startRedis(t)
	client := srv.Client(t)
	s := mustNew(client)
	ctx := t.Context()
	if err := s.Use(ctx, "alice", "short", 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := s.Use(ctx, "alice", "short", 50*time.Millisecond); !errors.Is(err, asymjwt.ErrReplay) {
		t.Fatalf("second Use within the TTL = %v, want ErrReplay", err)
	}
	// Poll Redis, bounded, until it has expired the key.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for client.Exists(ctx, s.Key("alice", "short")).Val() != 0 {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("key still present 5s after a 50ms TTL")
		}
	}
	if err := s.Use(ctx, "alice", "short", 50*time.Millisecond); err != nil {
		t.Fatalf("Use after expiry = %v, want nil", err)
	}
}

func TestKey(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer client.Close()
	def := mustNew(client)
	custom := mustNew(client, redisnonce.WithKeyPrefix("fleet-a:"))
	inputs := []struct{ user, nonce string }{
		{"", ""},
		{"alice", "n1"},
		{strings.Repeat("u", 256), strings.Repeat("n", 4096)},
		{"ab", "c"},
		{"a", "bc"},
		{"alice", "n1\x00\xff"},
	}
	seen := map[string]bool{}
	for _, in := range inputs {
		for _, tt := range []struct {
			s      *redisnonce.Store
			prefix string
		}{{def, redisnonce.DefaultKeyPrefix}, {custom, "fleet-a:"}} {
			k := tt.s.Key(in.user, in.nonce)
			if !strings.HasPrefix(k, tt.prefix) || len(k) != len(tt.prefix)+64 {
				t.Errorf("Key(%.10q, %.10q) = %q, want %q and 64 hex digits", in.user, in.nonce, k, tt.prefix)
			}
			if seen[k] {
				t.Errorf("Key(%.10q, %.10q) = %q, same as another input's", in.user, in.nonce, k)
			}
			seen[k] = true
		}
	}
}

func TestKeyPrefixInRedis(t *testing.T) {
	srv := startRedis(t)
	client := srv.Client(t)
	a := mustNew(client, redisnonce.WithKeyPrefix("fleet-a:"))
	b := mustNew(client, redisnonce.WithKeyPrefix("fleet-b:"))
	ctx := t.Context()
	for _, s := range []*redisnonce.Store{a, b} {
		if err := s.Use(ctx, "alice", "n1", time.Minute); err != nil {
			t.Fatalf("Use under its own prefix = %v, want nil", err)
		}
	}
	for _, pattern := range []string{"fleet-a:*", "fleet-b:*"} {
		keys, err := client.Keys(ctx, pattern).Result()
		if err != nil || len(keys) != 1 {
			t.Errorf("KEYS %s = %v, %v; want one key", pattern, keys, err)
		}
	}
	if n := client.DBSize(ctx).Val(); n != 2 {
		t.Errorf("DBSIZE = %d, want 2 (nothing outside the prefixes)", n)
	}
}

// TestUseConcurrent races many calls with the same nonce through two Stores
// sharing one Redis: exactly one may succeed.
func TestUseConcurrent(t *testing.T) {
	srv := startRedis(t)
	// A long bound: this test is about atomicity, not about slow machines.
	long := redisnonce.WithTimeout(time.Minute)
	stores := []*redisnonce.Store{mustNew(srv.Client(t), long), mustNew(srv.Client(t), long)}
	for round := range 5 {
		nonce := fmt.Sprint("race", round)
		var wg sync.WaitGroup
		errs := make([]error, 64)
		start := make(chan struct{})
		for i := range errs {
			wg.Go(func() {
				<-start
				errs[i] = stores[i%2].Use(t.Context(), "alice", nonce, time.Minute)
			})
		}
		close(start)
		wg.Wait()
		requireOneWinner(t, round, "Use", errs)
	}
}

// TestUseRetriedSet loses the reply to the first SET after Redis has done
// it; the client retries on a new connection and finds the key. The store
// must recognise its own write and not report a replay.
func TestUseRetriedSet(t *testing.T) {
	srv := startRedis(t)
	proxy := replyLosingProxy(t, srv.Addr, "\r\nnx\r\n")
	s := mustNew(newClient(t, proxy))
	if err := s.Use(t.Context(), "alice", "n1", time.Minute); err != nil {
		t.Fatalf("first Use with its reply lost and retried = %v, want nil", err)
	}
	if err := s.Use(t.Context(), "alice", "n1", time.Minute); !errors.Is(err, asymjwt.ErrReplay) {
		t.Fatalf("second Use = %v, want ErrReplay", err)
	}
}

// TestUseUnavailable checks that the store fails closed, within its bound,
// whatever the client's options.
func TestUseUnavailable(t *testing.T) {
	const bound = 300 * time.Millisecond
	srv := startRedis(t)
	full := srv.Client(t)
	// A full Redis under noeviction refuses writes: that must be a failure,
	// never a success and never a replay.
	if err := full.ConfigSet(t.Context(), "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := full.ConfigSet(t.Context(), "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name string
		addr string
		opts *redis.Options
		ctx  context.Context
	}{
		{"connection refused", freeLoopbackAddr(t), nil, context.Background()},
		{"never answers, default client", silentServer(t), nil, context.Background()},
		{"never answers, no retries, long timeouts", silentServer(t), &redis.Options{
			MaxRetries: -1, ReadTimeout: time.Minute, WriteTimeout: time.Minute, DialTimeout: time.Minute}, context.Background()},
		{"never answers, context timeouts", silentServer(t), &redis.Options{ContextTimeoutEnabled: true}, context.Background()},
		{"out of memory", srv.Addr, nil, context.Background()},
		{"caller's context cancelled", srv.Addr, nil, cancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			if opts == nil {
				opts = &redis.Options{}
			}
			opts.Addr = tt.addr
			client := redis.NewClient(opts)
			defer client.Close()
			s := mustNew(client, redisnonce.WithTimeout(bound))
			start := time.Now()
			err := s.Use(tt.ctx, "alice", "n1", time.Minute)
			took := time.Since(start)
			if !errors.Is(err, asymjwt.ErrUnavailable) || errors.Is(err, asymjwt.ErrReplay) {
				t.Fatalf("Use = %v, want ErrUnavailable", err)
			}
			// Only an upper bound: the machine may be slow, never fast.
			if took > bound+2*time.Second {
				t.Errorf("Use took %v, bound %v", took, bound)
			}
			t.Logf("%v after %v", err, took)
		})
	}
}

func TestNewRefusesInvalidOptions(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer client.Close()
	tests := []struct {
		name   string
		client redis.UniversalClient
		opts   []redisnonce.Option
	}{
		{"nil client", nil, nil},
		{"empty prefix", client, []redisnonce.Option{redisnonce.WithKeyPrefix("")}},
		{"zero timeout", client, []redisnonce.Option{redisnonce.WithTimeout(0)}},
		{"negative timeout", client, []redisnonce.Option{redisnonce.WithTimeout(-time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := redisnonce.New(tt.client, tt.opts...)
			if s != nil || !errors.Is(err, asymjwt.ErrInvalidOption) || !strings.HasPrefix(err.Error(), "redisnonce: ") {
				t.Fatalf("New = %v, %v; want an ErrInvalidOption", s, err)
			}
		})
	}
}

// mustNew is redisnonce.New for arguments known to be valid.
func mustNew(client redis.UniversalClient, opts ...redisnonce.Option) *redisnonce.Store {
	s, err := redisnonce.New(client, opts...)
	if err != nil {
		panic(err)
	}
	return s
}

// requireOneWinner checks the results of callers racing one nonce: exactly
// one nil, every other a replay.
func requireOneWinner(t *testing.T, round int, call string, errs []error) {
	t.Helper()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, asymjwt.ErrReplay):
			t.Errorf("%s = %v, want nil or ErrReplay", call, err)
		}
	}
	if ok != 1 {
		t.Fatalf("round %d: %d of %d calls to %s succeeded, want exactly 1", round, ok, len(errs), call)
	}
}
