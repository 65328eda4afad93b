package redisnonce

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/asymjwt/asymjwt"
	"github.com/redis/go-redis/v9"
)

// DefaultRefreshKeyPrefix is the prefix of the keys a [RefreshStore]
// writes when no [WithKeyPrefix] option is given.
const DefaultRefreshKeyPrefix = "asymjwt:refresh:"

// RefreshStore keeps the refresh tokens of a fleet of token endpoints
// ([asymjwt.TokenEndpoint]) in Redis. Make one with [NewRefreshStore] and
// give it to each endpoint with asymjwt.WithRefreshStore. It is safe for
// concurrent use by multiple goroutines, and any number of RefreshStores
// may share one Redis.
//
// A chain (a grant and its successive refresh tokens) is two kinds of
// keys, all expiring with the chain:
//
//	<prefix>{<chain>}:c             the grant, as JSON: user, scope, key, end
//	<prefix>{<chain>}:t:<hex hash>  a token's SHA-256: "" unused, else the hash of its successor
//
// No token is stored, only hashes. The chain in braces is a hash tag, so a
// chain's keys share a Redis Cluster slot and each operation is one Lua
// script on one node: atomic, so of any number of endpoints rotating the
// same token at once exactly one succeeds, and a token presented after it
// was rotated deletes its chain's grant (revoking every token of the chain).
// A rotation the client retries after losing the answer is recognised by
// its successor's hash and succeeds again rather than being taken for a
// reuse.
//
// The availability rules are those of [Store]: a call waits at most the
// bound of [WithTimeout], and when Redis does not answer or answers with
// an error the call fails with an error wrapping [asymjwt.ErrUnavailable],
// so the endpoint refuses (503) rather than issue tokens unchecked. Unlike
// nonces, refresh state must not be lost before it expires: a Redis that
// restarts empty ends every chain (clients then sign a new assertion), and
// one that evicts keys may end chains early; use persistence if that
// matters, and maxmemory-policy noeviction.
type RefreshStore struct {
	s      *Store
	create *redis.Script
	rotate *redis.Script
}

// Compile-time check that RefreshStore is an asymjwt.RefreshStore.
var _ asymjwt.RefreshStore = (*RefreshStore)(nil)

// createScript records a chain and its first token, unless the chain
// exists; creating the same chain with the same grant again (a retry)
// succeeds.
const createScript = `
local set = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
if not set and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], '', 'PX', ARGV[2])
return 1
`

// rotateScript uses a token: {0} unknown (token, chain, or expired), {1,
// grant} rotated (or this rotation retried), {2} reused: the chain is
// deleted.
const rotateScript = `
local g = redis.call('GET', KEYS[1])
if not g then return {0} end
local u = redis.call('GET', KEYS[2])
if not u then return {0} end
if u == '' then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl <= 0 then return {0} end
  redis.call('SET', KEYS[2], ARGV[1], 'KEEPTTL')
  redis.call('SET', KEYS[3], '', 'PX', ttl)
  return {1, g}
end
if u == ARGV[1] then return {1, g} end
redis.call('DEL', KEYS[1])
return {2}
`

// NewRefreshStore returns a RefreshStore on client, with the options of
// [New] ([WithKeyPrefix], default [DefaultRefreshKeyPrefix];
// [WithTimeout]). The caller keeps ownership of client.
func NewRefreshStore(client redis.UniversalClient, opts ...Option) (*RefreshStore, error) {
	s, err := newStore("NewRefreshStore", client, DefaultRefreshKeyPrefix, opts)
	if err != nil {
		return nil, err
	}
	return &RefreshStore{s: s, create: redis.NewScript(createScript), rotate: redis.NewScript(rotateScript)}, nil
}

// grantJSON is a grant as stored.
type grantJSON struct {
	User    string `json:"user"`
	Scope   string `json:"scope,omitempty"`
	KeyID   string `json:"kid"`
	Expires int64  `json:"exp"` // unix milliseconds
}

// Create records a new chain and its first token, for ttl (rounded up to
// a whole millisecond).
func (r *RefreshStore) Create(ctx context.Context, grant asymjwt.RefreshGrant, first [32]byte, ttl time.Duration) error {
	if !validChain(grant.Chain) {
		return fmt.Errorf("redisnonce: chain id %q is not base64url of at most 64 bytes", grant.Chain)
	}
	value, err := json.Marshal(grantJSON{grant.Username, grant.Scope, grant.KeyID, grant.Expires.UnixMilli()})
	if err != nil {
		return fmt.Errorf("redisnonce: %w", err)
	}
	keys := []string{r.chainKey(grant.Chain), r.tokenKey(grant.Chain, first)}
	return r.s.bounded(ctx, func(ctx context.Context) error {
		n, err := r.create.Run(ctx, r.s.client, keys, value, roundTTL(ttl).Milliseconds()).Int()
		switch {
		case err != nil:
			return fmt.Errorf("redisnonce: %w: %w", asymjwt.ErrUnavailable, err)
		case n != 1:
			return fmt.Errorf("redisnonce: chain %s exists already", grant.Chain)
		}
		return nil
	})
}

// Rotate uses a token and records its successor, as asymjwt.RefreshStore
// describes, in one script.
func (r *RefreshStore) Rotate(ctx context.Context, chain string, used, next [32]byte) (asymjwt.RefreshGrant, error) {
	if !validChain(chain) {
		return asymjwt.RefreshGrant{}, fmt.Errorf("redisnonce: %w: not a chain of this store", asymjwt.ErrInvalidGrant)
	}
	var grant asymjwt.RefreshGrant
	keys := []string{r.chainKey(chain), r.tokenKey(chain, used), r.tokenKey(chain, next)}
	err := r.s.bounded(ctx, func(ctx context.Context) error {
		res, err := r.rotate.Run(ctx, r.s.client, keys, hex.EncodeToString(next[:])).Slice()
		if err != nil {
			return fmt.Errorf("redisnonce: %w: %w", asymjwt.ErrUnavailable, err)
		}
		code, _ := res[0].(int64)
		switch code {
		case 0:
			return fmt.Errorf("redisnonce: %w: unknown, expired or revoked refresh token", asymjwt.ErrInvalidGrant)
		case 2:
			return fmt.Errorf("redisnonce: %w: %w", asymjwt.ErrInvalidGrant, asymjwt.ErrRefreshReused)
		}
		var g grantJSON
		if len(res) != 2 {
			return fmt.Errorf("redisnonce: %w: unexpected answer from the rotate script", asymjwt.ErrUnavailable)
		}
		s, _ := res[1].(string)
		if err := json.Unmarshal([]byte(s), &g); err != nil {
			return fmt.Errorf("redisnonce: %w: stored grant of chain %s: %w", asymjwt.ErrUnavailable, chain, err)
		}
		grant = asymjwt.RefreshGrant{Chain: chain, Username: g.User, Scope: g.Scope, KeyID: g.KeyID, Expires: time.UnixMilli(g.Expires)}
		return nil
	})
	return grant, err
}

// Revoke deletes a chain's grant, so no token of it is accepted again.
func (r *RefreshStore) Revoke(ctx context.Context, chain string) error {
	if !validChain(chain) {
		return nil
	}
	return r.s.bounded(ctx, func(ctx context.Context) error {
		if err := r.s.client.Del(ctx, r.chainKey(chain)).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("redisnonce: %w: %w", asymjwt.ErrUnavailable, err)
		}
		return nil
	})
}

func (r *RefreshStore) chainKey(chain string) string { return r.s.prefix + "{" + chain + "}:c" }

func (r *RefreshStore) tokenKey(chain string, h [32]byte) string {
	return r.s.prefix + "{" + chain + "}:t:" + hex.EncodeToString(h[:])
}

// validChain accepts the chain ids a token endpoint makes: base64url, so
// no brace can break the hash tag.
func validChain(c string) bool {
	if c == "" || len(c) > 64 {
		return false
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}
