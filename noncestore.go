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
	// Use records that username used nonce, to be remembered at least until
	// expires. It returns nil on the first use, an error wrapping ErrReplay on
	// any later one, and any other error when it cannot tell; the verifier
	// then refuses the token (fails closed).
	Use(ctx context.Context, username, nonce string, expires time.Time) error
}
