// Package redisnonce is an [asymjwt.NonceStore] on Redis, so that a fleet of
// verifiers behind a load balancer refuses a token that any one of them has
// already accepted, and an [asymjwt.RefreshStore] ([RefreshStore]), so that
// a fleet of token endpoints shares its refresh tokens.
//
// Each check is one atomic command,
//
//	SET <prefix><hex SHA-256 of username and nonce> <mark> NX PX <ttl>
//
// so of any number of verifiers racing the same token exactly one sees it
// first. The key is a hash, so its length is fixed whatever the claims hold,
// and a key expires by itself once the token can no longer pass the
// verifier's time check.
//
// The store fails closed: when Redis does not answer within the bound (see
// [WithTimeout]) or answers with an error, [Store.Use] returns an error
// wrapping [asymjwt.ErrUnavailable] and the verifier refuses the request
// with 503. There is no fallback to a local store: a verifier that kept its
// own memory while Redis was away would accept a token that another
// verifier had seen.
//
// # What Redis must guarantee
//
// Availability, and not forgetting a key before its expiry. Persistence is
// not needed: an entry only matters for the lifetime of a token (the
// verifier's window, seconds), so a Redis that restarts empty forgets at
// most the tokens of that last window. Keys must not be evicted early, so
// use maxmemory-policy noeviction (a full Redis then refuses writes, and
// verifiers answer 503) or a Redis of its own for nonces.
//
// # Module
//
// This package lives in the asymjwt module itself rather than in a nested
// module. With module graph pruning (go 1.17 and later), a program that
// imports only the root package neither compiles nor links go-redis: the go
// command reads go-redis's go.mod for version selection, and builds it only
// for importers of this package. A nested module would need replace directives during development
// and a version of its own to keep in step with the root package.
package redisnonce

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/asymjwt/asymjwt"
	"github.com/redis/go-redis/v9"
)

// DefaultKeyPrefix is the prefix of the keys a [Store] writes when no
// [WithKeyPrefix] option is given.
const DefaultKeyPrefix = "asymjwt:nonce:"

// DefaultTimeout is the longest a call to [Store.Use] waits for Redis when
// no [WithTimeout] option is given.
const DefaultTimeout = 500 * time.Millisecond

// MaxInputLen is the longest username, and the longest nonce, that
// [Store.Use] accepts, in bytes. The verifier bounds both far below this;
// the store bounds them again so no caller can make it hash megabytes.
const MaxInputLen = 4096

// ErrInputTooLong is wrapped by the error [Store.Use] returns for a username
// or nonce longer than [MaxInputLen]. Nothing is sent to Redis.
var ErrInputTooLong = errors.New("redisnonce: username or nonce too long")

// Store records nonces in Redis. Make one with [New]. A Store is safe for
// concurrent use by multiple goroutines; it holds no state of its own besides
// its configuration, so any number of Stores, in any number of processes,
// may share one Redis.
type Store struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration

	// mark makes the value of each SET unique, so that a SET the client
	// retried after losing the reply is recognised as this call's own.
	markBase [16]byte
	markSeq  atomic.Uint64
}

// Compile-time check that Store is an asymjwt.NonceStore.
var _ asymjwt.NonceStore = (*Store)(nil)

// Option configures a [Store]. An option given a value it cannot use makes
// [New] fail with an error wrapping [asymjwt.ErrInvalidOption].
type Option func(*Store) error

// WithKeyPrefix sets the prefix of every key the Store writes; the default
// is [DefaultKeyPrefix]. Give each fleet (or each environment sharing one
// Redis) its own prefix. In a Redis Cluster the keys spread over all slots;
// the prefix need not, and should not, carry a hash tag.
// prefix must not be empty.
func WithKeyPrefix(prefix string) Option {
	return func(s *Store) error {
		if prefix == "" {
			return fmt.Errorf("redisnonce: WithKeyPrefix: %w: empty prefix", asymjwt.ErrInvalidOption)
		}
		s.prefix = prefix
		return nil
	}
}

// WithTimeout bounds how long one call to [Store.Use] waits for Redis,
// including the client's own retries; the default is [DefaultTimeout]. It
// is applied as a context deadline unless the caller's context has an
// earlier one. d must be positive.
//
// The bound holds whatever the client's options, but a call that gives up
// leaves the command to finish in the background, within the client's
// ReadTimeout and WriteTimeout. Setting ContextTimeoutEnabled on the client
// makes it stop at once instead.
func WithTimeout(d time.Duration) Option {
	return func(s *Store) error {
		if d <= 0 {
			return fmt.Errorf("redisnonce: WithTimeout: %w: %v is not positive", asymjwt.ErrInvalidOption, d)
		}
		s.timeout = d
		return nil
	}
}

// New returns a Store that keeps nonces in Redis through client. client may
// be a *redis.Client (single node, or Sentinel through
// redis.NewFailoverClient), a *redis.ClusterClient, or anything made by
// redis.NewUniversalClient. The caller keeps ownership of client: the Store
// never closes it. A nil client is an error wrapping
// [asymjwt.ErrInvalidOption].
func New(client redis.UniversalClient, opts ...Option) (*Store, error) {
	return newStore("New", client, DefaultKeyPrefix, opts)
}

// newStore makes a Store of the given default prefix: the configuration
// that a Store and a RefreshStore share.
func newStore(op string, client redis.UniversalClient, prefix string, opts []Option) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("redisnonce: %s: %w: nil client", op, asymjwt.ErrInvalidOption)
	}
	s := &Store{client: client, prefix: prefix, timeout: DefaultTimeout}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, err
		}
	}
	// A mark only needs to differ from every other Store's; if the system
	// has no randomness it is no worse than a constant.
	_, _ = rand.Read(s.markBase[:])
	return s, nil
}

// Use records that username used nonce, for at least ttl (rounded up to a
// whole millisecond, and at least one). It returns nil on the first use,
// an error wrapping [asymjwt.ErrReplay] on any later one, an error wrapping
// [ErrInputTooLong] for oversized input, and an error wrapping
// [asymjwt.ErrUnavailable] and its cause when Redis does not answer within
// the Store's bound or answers with an error.
func (s *Store) Use(ctx context.Context, username, nonce string, ttl time.Duration) error {
	if len(username) > MaxInputLen || len(nonce) > MaxInputLen {
		return fmt.Errorf("%w (%d and %d bytes, at most %d)", ErrInputTooLong, len(username), len(nonce), MaxInputLen)
	}
	key := s.Key(username, nonce)
	mark := s.nextMark()
	ttl = roundTTL(ttl)

	return s.bounded(ctx, func(ctx context.Context) error { return s.setOnce(ctx, key, mark, ttl) })
}

// bounded runs f within the Store's time bound. f runs aside so the bound
// holds even when the client ignores context deadlines
// (ContextTimeoutEnabled is off by default); the buffered channel lets it
// finish without a reader. Past the bound the error wraps
// asymjwt.ErrUnavailable.
func (s *Store) bounded(ctx context.Context, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("redisnonce: %w: %w", asymjwt.ErrUnavailable, context.Cause(ctx))
	}
}

// setOnce does the SET NX. When the key exists, one more round trip tells a
// replay from this call's own write made by a retry of the client (a reply
// lost to a timeout or a dropped connection after Redis had done the SET):
// only this call knows its mark.
func (s *Store) setOnce(ctx context.Context, key, mark string, ttl time.Duration) error {
	// Built by hand rather than with SetArgs, which would switch to EX for a
	// whole number of seconds: the command is exactly the documented one.
	set := redis.NewStatusCmd(ctx, "set", key, mark, "nx", "px", ttl.Milliseconds())
	err := s.client.Process(ctx, set)
	if err == nil {
		return nil
	}
	if !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redisnonce: %w: %w", asymjwt.ErrUnavailable, err)
	}
	got, err := s.client.Get(ctx, key).Result()
	switch {
	case err == nil && got == mark:
		return nil
	case err == nil || errors.Is(err, redis.Nil):
		// Held by another call, or it held and has expired since: either
		// way the nonce was seen before this call.
		return fmt.Errorf("redisnonce: %w", asymjwt.ErrReplay)
	default:
		return fmt.Errorf("redisnonce: %w: %w", asymjwt.ErrUnavailable, err)
	}
}

// Key returns the Redis key that records username's use of nonce: the
// Store's prefix and the hex SHA-256 of the length-prefixed username
// followed by the nonce, so no two (username, nonce) pairs share a key and
// the key's length does not depend on the input. It is exported for
// operators and tests (for example to read a key's PTTL).
func (s *Store) Key(username, nonce string) string {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(username)))
	h.Write(n[:])
	h.Write([]byte(username))
	h.Write([]byte(nonce))
	var sum [sha256.Size]byte
	return s.prefix + hex.EncodeToString(h.Sum(sum[:0]))
}

func (s *Store) nextMark() string {
	var b [24]byte
	copy(b[:], s.markBase[:])
	binary.BigEndian.PutUint64(b[16:], s.markSeq.Add(1))
	return string(b[:])
}

// roundTTL rounds ttl up to a whole millisecond, at least one, since PX
// takes milliseconds and a zero or negative TTL is an error in Redis.
func roundTTL(ttl time.Duration) time.Duration {
	if ttl < time.Millisecond {
		return time.Millisecond
	}
	if r := ttl % time.Millisecond; r != 0 && ttl <= math.MaxInt64-time.Millisecond {
		ttl += time.Millisecond - r
	}
	return ttl
}
