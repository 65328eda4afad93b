package asymjwt

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// RefreshGrant is what a chain of refresh tokens stands for: each token of
// a chain is used once and replaced by the next (rotation), and all stand
// for the same grant.
type RefreshGrant struct {
	// Chain identifies the chain (RFC 9700's "token family"). It is part of
	// every refresh token of the chain, so it is not secret: a token is
	// its chain and a secret, and only the token's hash is stored.
	Chain string
	// Username is the user the chain's access tokens are for.
	Username string
	// Scope is the scope granted when the chain began, space-separated.
	Scope string
	// KeyID is the fingerprint of the user's key that signed the assertion
	// the chain began with: once the user no longer has that key, the chain
	// ends at its next use.
	KeyID string
	// Expires is when the chain ends, whatever its use: rotation does not
	// extend it.
	Expires time.Time
}

// RefreshStore keeps the state of refresh tokens for a [TokenEndpoint]:
// which are valid, which were used, which chains were revoked. It is given
// tokens only as their SHA-256 hashes, so a copy of its contents yields no
// usable token. A fleet of endpoints shares one (see package redisnonce).
//
// Implementations must be safe for concurrent use, and Rotate must be
// atomic: of any number of concurrent calls that use the same token, at
// most one succeeds. An error that is not about the token (the store could
// not answer) must wrap [ErrUnavailable]: the endpoint refuses the request
// (fails closed).
type RefreshStore interface {
	// Create records a new chain for grant and its first token, kept for
	// ttl (by the store's own clock).
	Create(ctx context.Context, grant RefreshGrant, first [32]byte, ttl time.Duration) error

	// Rotate uses the token whose hash is used, of chain, and records the
	// token whose hash is next as its successor, returning the chain's
	// grant. It fails with an error wrapping [ErrInvalidGrant] when the
	// token is unknown, of another chain, expired, or its chain revoked.
	// When the token was used before, it revokes the whole chain and fails
	// with an error wrapping [ErrRefreshReused] and ErrInvalidGrant; except
	// that a call repeating the one that used it, with the same next (a
	// retry after a lost answer), succeeds again.
	Rotate(ctx context.Context, chain string, used, next [32]byte) (RefreshGrant, error)

	// Revoke ends chain: no token of it is accepted again. Revoking an
	// unknown chain is not an error.
	Revoke(ctx context.Context, chain string) error
}

var _ RefreshStore = (*MemoryRefreshStore)(nil)

// DefaultRefreshLimit is the number of refresh tokens, used or not, that a
// [MemoryRefreshStore] holds unless told otherwise with [WithRefreshLimit].
const DefaultRefreshLimit = 1 << 20

// MemoryRefreshStore is a [RefreshStore] in the memory of one process, the
// default of a [TokenEndpoint]. It keeps every token of a chain, used or
// not, until the chain expires, so a reused token is recognised for the
// chain's whole life. It holds at most the limit of tokens
// ([WithRefreshLimit]); a full store that cannot free expired ones fails
// closed with an error wrapping [ErrUnavailable]. It is safe for concurrent
// use by multiple goroutines.
type MemoryRefreshStore struct {
	now   func() time.Time
	limit int

	mu      sync.Mutex
	chains  map[string]*memChain
	tokens  map[[32]byte]*memToken
	sweepAt int
}

type memChain struct {
	grant  RefreshGrant
	expiry int64 // unix nanos, by the store's clock
}

type memToken struct {
	chain string
	used  bool
	next  [32]byte // the successor, once used
}

// WithRefreshLimit sets the most refresh tokens a [MemoryRefreshStore]
// holds; beyond it, new ones fail closed. The default is
// [DefaultRefreshLimit]; n must be positive.
func WithRefreshLimit(n int) MemoryRefreshOption {
	return refreshOptionFunc(func(s *MemoryRefreshStore) error {
		if n < 1 {
			return optionError("WithRefreshLimit", fmt.Sprintf("%d tokens", n))
		}
		s.limit = n
		return nil
	})
}

// NewMemoryRefreshStore returns an empty MemoryRefreshStore; its clock
// ([WithClock]) measures how long a chain lives.
func NewMemoryRefreshStore(opts ...MemoryRefreshOption) (*MemoryRefreshStore, error) {
	s := &MemoryRefreshStore{
		now:     time.Now,
		limit:   DefaultRefreshLimit,
		chains:  make(map[string]*memChain),
		tokens:  make(map[[32]byte]*memToken),
		sweepAt: 1024,
	}
	for _, opt := range opts {
		if err := opt.applyRefreshStore(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Create records a new chain and its first token.
func (s *MemoryRefreshStore) Create(_ context.Context, grant RefreshGrant, first [32]byte, ttl time.Duration) error {
	if ttl <= 0 {
		return errorf("MemoryRefreshStore: refresh ttl %v is not positive", ttl)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	if err := s.room(now); err != nil {
		return err
	}
	if _, ok := s.chains[grant.Chain]; ok {
		return errorf("MemoryRefreshStore: chain exists already")
	}
	s.chains[grant.Chain] = &memChain{grant: grant, expiry: now + int64(ttl)}
	s.tokens[first] = &memToken{chain: grant.Chain}
	return nil
}

// Rotate uses a token and records its successor, as [RefreshStore]
// describes.
func (s *MemoryRefreshStore) Rotate(_ context.Context, chain string, used, next [32]byte) (RefreshGrant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	t, ok := s.tokens[used]
	c := s.chains[chain]
	switch {
	case !ok || t.chain != chain:
		return RefreshGrant{}, fmt.Errorf("%w: unknown refresh token", ErrInvalidGrant)
	case c == nil:
		return RefreshGrant{}, fmt.Errorf("%w: refresh token of a revoked chain", ErrInvalidGrant)
	case now >= c.expiry:
		return RefreshGrant{}, fmt.Errorf("%w: refresh token expired", ErrInvalidGrant)
	case t.used && t.next == next:
		return c.grant, nil // the same call again
	case t.used:
		delete(s.chains, chain)
		return RefreshGrant{}, fmt.Errorf("%w: %w", ErrInvalidGrant, ErrRefreshReused)
	}
	if err := s.room(now); err != nil {
		return RefreshGrant{}, err
	}
	t.used, t.next = true, next
	s.tokens[next] = &memToken{chain: chain}
	return c.grant, nil
}

// Revoke ends a chain.
func (s *MemoryRefreshStore) Revoke(_ context.Context, chain string) error {
	s.mu.Lock()
	delete(s.chains, chain)
	s.mu.Unlock()
	return nil
}

// Len returns the number of tokens held, used or not; those of expired
// or revoked chains count until they are swept.
func (s *MemoryRefreshStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tokens)
}

// room makes room for one more token: it sweeps tokens of ended chains
// when the store has doubled since the last sweep, or is full. s.mu is
// held.
func (s *MemoryRefreshStore) room(now int64) error {
	if len(s.tokens) < s.sweepAt && len(s.tokens) < s.limit {
		return nil
	}
	for id, c := range s.chains {
		if now >= c.expiry {
			delete(s.chains, id)
		}
	}
	for h, t := range s.tokens {
		if _, ok := s.chains[t.chain]; !ok {
			delete(s.tokens, h)
		}
	}
	s.sweepAt = max(2*len(s.tokens), 1024)
	if len(s.tokens) >= s.limit {
		return errorf("MemoryRefreshStore: %w: store full (%d refresh tokens)", ErrUnavailable, s.limit)
	}
	return nil
}
