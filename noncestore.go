package asymjwt

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// NonceStore remembers which nonces have been used, so no token is accepted
// twice. The verifier calls it only after a token's signature has verified.
//
// Implementations must be safe for concurrent use and must make Use atomic:
// of any number of concurrent calls with the same username and nonce, exactly
// one may return nil.
type NonceStore interface {
	// Use records that username used nonce, to be remembered for at least
	// ttl from now (by the store's own clock: the verifier's clock may be
	// injected or skewed, so it hands over a duration, not an instant). It
	// returns nil on the first use, an error wrapping ErrReplay on any later
	// one, and any other error when it cannot tell; the verifier then refuses
	// the token (fails closed).
	Use(ctx context.Context, username, nonce string, ttl time.Duration) error
}

var _ NonceStore = (*MemoryNonceStore)(nil)

// DefaultNonceLimit is the number of live nonces a [MemoryNonceStore] holds
// unless told otherwise with [WithNonceLimit]: 1<<20 entries, at most some 70
// MiB, enough for over 20,000 verified requests a second when each nonce is
// kept for 40 s (twice the default ±20 s window).
const DefaultNonceLimit = 1 << 20

const (
	nonceShards = 64 // a power of two
	// minSweepLen is the shard size below which no sweep is attempted, so a
	// small store does no bookkeeping.
	minSweepLen = 64
)

// MemoryNonceStore is a [NonceStore] in the memory of one process: right for
// a single verifier (a fleet needs a shared store, see package redisnonce).
// It is safe for concurrent use by multiple goroutines.
//
// Entries are keyed by a 128-bit keyed hash of the username and nonce, so an
// entry takes the same memory (35 to 70 bytes, see BENCHMARKS-noncestore.md)
// whatever the nonce's length, and each is forgotten once its ttl has passed:
// a shard is swept of expired entries whenever it has grown by a quarter since
// its last sweep, and its map is rebuilt smaller when most of it was freed, so
// memory follows the number of live nonces without a background goroutine.
//
// At most the limit (see [WithNonceLimit]) entries are held, counting expired
// ones not yet swept. When the store is full it sweeps every shard; if that
// frees nothing, Use fails closed with an error wrapping [ErrUnavailable]
// rather than accept a nonce it cannot remember.
type MemoryNonceStore struct {
	now        func() time.Time
	limit      int64
	seed       [16]byte
	live       atomic.Int64 // entries held in all shards, expired or not
	nextFullAt atomic.Int64 // unix nanos before which a full store does not sweep all shards again
	shards     [nonceShards]nonceShard
}

type nonceShard struct {
	mu      sync.Mutex
	m       map[[16]byte]int64 // key -> expiry, unix nanos
	sweepAt int                // len(m) at which to sweep next
	peak    int                // largest len(m) since m was made
	_       [32]byte           // keeps shards on separate cache lines
}

// WithNonceLimit sets the most entries the store holds; beyond it, Use fails
// closed. The default is [DefaultNonceLimit]; n must be positive.
func WithNonceLimit(n int) MemoryNonceOption {
	return nonceOptionFunc(func(s *MemoryNonceStore) error {
		if n < 1 {
			return optionError("WithNonceLimit", fmt.Sprintf("%d entries", n))
		}
		s.limit = int64(n)
		return nil
	})
}

// NewMemoryNonceStore returns an empty MemoryNonceStore. Its clock, which
// measures how long a nonce is kept, is set with [WithClock]; tests use it
// to expire entries without waiting.
func NewMemoryNonceStore(opts ...MemoryNonceOption) (*MemoryNonceStore, error) {
	s := &MemoryNonceStore{now: time.Now, limit: DefaultNonceLimit}
	for _, opt := range opts {
		if err := opt.applyNonceStore(s); err != nil {
			return nil, err
		}
	}
	// A secret seed keeps anyone from choosing nonces that collide with
	// another's or that all land in one shard.
	rand.Read(s.seed[:])
	for i := range s.shards {
		s.shards[i].m = make(map[[16]byte]int64)
		s.shards[i].sweepAt = minSweepLen
	}
	return s, nil
}

// Use records the first use of (username, nonce) for ttl. It returns nil the
// first time, ErrReplay itself while the entry lives (so a flood of replays
// allocates nothing), and an error wrapping [ErrUnavailable] when the store
// is full. A ttl that is not positive is refused with an error. ctx is not
// consulted: Use waits for nothing but a shard's lock.
func (s *MemoryNonceStore) Use(ctx context.Context, username, nonce string, ttl time.Duration) error {
	if ttl <= 0 {
		return errorf("MemoryNonceStore: nonce ttl %v is not positive", ttl)
	}
	key := s.key(username, nonce)
	sh := &s.shards[binary.LittleEndian.Uint64(key[8:])&(nonceShards-1)]
	now := s.now().UnixNano()
	expiry := now + int64(ttl)
	if expiry < now { // overflow
		expiry = math.MaxInt64
	}

	for swept := false; ; swept = true {
		sh.mu.Lock()
		if old, ok := sh.m[key]; ok {
			if old > now {
				sh.mu.Unlock()
				return ErrReplay
			}
			sh.m[key] = expiry // expired: reuse the entry
			sh.mu.Unlock()
			return nil
		}
		if s.live.Add(1) <= s.limit {
			sh.m[key] = expiry
			if n := len(sh.m); n >= sh.sweepAt {
				s.sweep(sh, now)
			} else if n > sh.peak {
				sh.peak = n
			}
			sh.mu.Unlock()
			return nil
		}
		s.live.Add(-1)
		sh.mu.Unlock()
		if swept || !s.sweepAll(now) {
			return errorf("MemoryNonceStore: %w: store full (%d nonces)", ErrUnavailable, s.limit)
		}
	}
}

// Len returns the number of entries held. Expired entries count until they
// are swept, which happens as new nonces are used.
func (s *MemoryNonceStore) Len() int { return int(s.live.Load()) }

// key hashes a length-prefixed username and the nonce, so no two pairs share
// an encoding, into a fixed-size key.
func (s *MemoryNonceStore) key(username, nonce string) [16]byte {
	var buf [512]byte // fits the usual sizes without allocating
	b := append(buf[:0], s.seed[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(username)))
	b = append(b, username...)
	b = append(b, nonce...)
	sum := sha256.Sum256(b)
	return [16]byte(sum[:16])
}

// sweep removes sh's expired entries and schedules its next sweep for when
// it has grown by a quarter: about five entry visits per insert, amortised,
// where doubling would hold more expired entries and, as maps grow in powers
// of two, often twice the memory. A map that has shrunk to a quarter of its
// peak is rebuilt, as Go maps never give memory back. sh.mu must be held.
func (s *MemoryNonceStore) sweep(sh *nonceShard, now int64) int {
	before := len(sh.m)
	if before > sh.peak {
		sh.peak = before
	}
	for k, exp := range sh.m {
		if exp <= now {
			delete(sh.m, k)
		}
	}
	n := len(sh.m)
	freed := before - n
	s.live.Add(-int64(freed))
	if n < sh.peak/4 {
		m := make(map[[16]byte]int64, n)
		for k, v := range sh.m {
			m[k] = v
		}
		sh.m, sh.peak = m, n
	}
	sh.sweepAt = max(n+n/4, minSweepLen)
	return freed
}

// sweepAll sweeps every shard when the store is full, and reports whether
// that freed anything. One caller sweeps at a time, and after a sweep that
// freed nothing none is tried for a second of the store's clock, so a full
// store does not turn every request into a scan of all entries.
func (s *MemoryNonceStore) sweepAll(now int64) bool {
	next := s.nextFullAt.Load()
	if now < next || !s.nextFullAt.CompareAndSwap(next, math.MaxInt64) {
		return false
	}
	freed := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		freed += s.sweep(sh, now)
		sh.mu.Unlock()
	}
	if freed == 0 {
		s.nextFullAt.Store(now + int64(time.Second))
		return false
	}
	s.nextFullAt.Store(now)
	return true
}
