package asymjwt

import (
	"context"
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
