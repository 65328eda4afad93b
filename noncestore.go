package asymjwt

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
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
	// minTable is the fewest slots a shard's table has once used.
	minTable = 8
)

// MemoryNonceStore is a [NonceStore] in the memory of one process: right for
// a single verifier (a fleet needs a shared store, see package redisnonce).
// It is safe for concurrent use by multiple goroutines.
//
// Entries are keyed by a 128-bit keyed hash of the username and nonce, so an
// entry takes the same memory (about 40 to 60 bytes, see BENCHMARKS.md)
// whatever the nonce's length, and each is forgotten once its ttl has
// passed: a shard is swept of expired entries whenever it has grown by a
// quarter since its last sweep, and its table is rebuilt smaller when it is
// less than a quarter full, so memory follows the number of live nonces
// (within a factor of four, as load falls) without a background goroutine.
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

// A nonceShard is an open-addressing hash table with linear probing, kept
// between a quarter and three quarters full: an entry is found within a
// few adjacent 24-byte slots (a new key probes about 2.5 of them at half
// full, 8.5 at three quarters), where a Go map touches its directory,
// group control word and slots and hashes the already uniform key again. Entries leave only by a sweep, which closes the gaps
// it makes by moving later entries back (Knuth's algorithm R), so the table
// never holds tombstones.
type nonceShard struct {
	mu      sync.Mutex
	tab     []nonceEntry // at most 3/4 full; nil until first used
	n       int          // entries in tab, expired or not
	sweepAt int          // n at which to sweep next
	_       [16]byte     // keeps shards on separate cache lines
}

// A nonceEntry is a slot of a shard's table.
type nonceEntry struct {
	key [16]byte
	exp int64 // unix nanos the entry is kept until; 0 marks a free slot
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
	// another's, that all land in one shard or that crowd one stretch of a
	// table.
	rand.Read(s.seed[:])
	for i := range s.shards {
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
	return s.use(s.key(username, nonce), ttl)
}

// use is Use for the key of a username and nonce.
func (s *MemoryNonceStore) use(key [16]byte, ttl time.Duration) error {
	sh := &s.shards[binary.LittleEndian.Uint64(key[8:])&(nonceShards-1)]
	now := s.now().UnixNano()
	expiry := now + int64(ttl)
	if expiry < now { // overflow
		expiry = math.MaxInt64
	}
	if expiry == 0 { // a clock before 1970; 0 marks a free slot
		expiry = 1
	}

	for swept := false; ; swept = true {
		sh.mu.Lock()
		if sh.n >= sh.sweepAt {
			s.sweep(sh, now)
		}
		if 4*(sh.n+1) > 3*len(sh.tab) {
			sh.resize(tableFor(sh.n + 1))
		}
		e := &sh.tab[sh.find(&key)]
		if e.exp != 0 { // the key is there
			if e.exp > now {
				sh.mu.Unlock()
				return ErrReplay
			}
			e.exp = expiry // expired: reuse the entry
			sh.mu.Unlock()
			return nil
		}
		if s.live.Add(1) <= s.limit {
			*e = nonceEntry{key: key, exp: expiry}
			sh.n++
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
// it has grown by a quarter: the whole table, in order, every n/4 inserts,
// some 7 to 12 slot visits per insert in steady state, where sweeping at
// doubling would hold more expired entries and so more memory. A table
// left less than a quarter full is rebuilt half full, so memory follows the
// live nonces. sh.mu must be held.
func (s *MemoryNonceStore) sweep(sh *nonceShard, now int64) int {
	before := sh.n
	for i := 0; i < len(sh.tab); {
		if exp := sh.tab[i].exp; exp != 0 && exp <= now {
			// Slot i now holds a later entry moved back, or is free:
			// look at it again.
			sh.deleteAt(i)
			sh.n--
			continue
		}
		i++
	}
	freed := before - sh.n
	s.live.Add(-int64(freed))
	if len(sh.tab) > minTable && 4*sh.n < len(sh.tab) {
		sh.resize(tableFor(sh.n))
	}
	sh.sweepAt = max(sh.n+sh.n/4, minSweepLen)
	return freed
}

// tableFor is the size of a table rebuilt to hold n entries: half full, so
// it grows by about half again before it is 3/4 full and rebuilt larger.
func tableFor(n int) int { return max(2*n, minTable) }

// home is the slot where key's probe sequence starts: the key is a keyed
// hash, so its bits are uniform and are used as they are.
func (sh *nonceShard) home(key *[16]byte) int {
	hi, _ := bits.Mul64(binary.LittleEndian.Uint64(key[:8]), uint64(len(sh.tab)))
	return int(hi)
}

// find returns the slot holding key, or the free slot where its probe
// sequence ends. The table must have a free slot.
func (sh *nonceShard) find(key *[16]byte) int {
	for i := sh.home(key); ; {
		if e := &sh.tab[i]; e.exp == 0 || e.key == *key {
			return i
		}
		if i++; i == len(sh.tab) {
			i = 0
		}
	}
}

// deleteAt frees slot i and moves back, into the gap, each later entry of
// the same run of full slots whose probe sequence passes the gap, so every
// entry stays reachable from its home slot without tombstones.
func (sh *nonceShard) deleteAt(i int) {
	for j := i; ; {
		if j++; j == len(sh.tab) {
			j = 0
		}
		e := &sh.tab[j]
		if e.exp == 0 {
			break
		}
		// The entry at j may move to i unless its home lies cyclically in
		// (i, j]: then its probe sequence does not pass i.
		k := sh.home(&e.key)
		if (i <= j && i < k && k <= j) || (i > j && (i < k || k <= j)) {
			continue
		}
		sh.tab[i] = *e
		i = j
	}
	sh.tab[i] = nonceEntry{}
}

// resize rebuilds sh's table with size slots, which must exceed sh.n.
func (sh *nonceShard) resize(size int) {
	old := sh.tab
	sh.tab = make([]nonceEntry, size)
	for i := range old {
		if old[i].exp != 0 {
			sh.tab[sh.find(&old[i].key)] = old[i]
		}
	}
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
