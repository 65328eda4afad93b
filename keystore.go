package asymjwt

import (
	"context"
	"crypto"
)

// PublicKey is one public key a user may sign with.
type PublicKey struct {
	// Key is *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	Key crypto.PublicKey
	// Fingerprint is the key's SHA-256 fingerprint (see [Fingerprint]); a
	// token's "kid" is compared with it.
	Fingerprint string
	// Comment is the authorized_keys comment or the file it came from; it is
	// for logs and may be empty.
	Comment string
}

// KeyStore gives the public keys of a user. Implementations must be safe for
// concurrent use. A user without keys is reported as an empty slice and a nil
// error; an error means the store could not answer, and the verifier refuses
// the request as unavailable.
type KeyStore interface {
	PublicKeys(ctx context.Context, username string) ([]PublicKey, error)
}
