// Package edverify verifies Ed25519 signatures exactly as crypto/ed25519
// does (RFC 8032 without the cofactor, S below the group order, any
// encoding of a valid point accepted as the key), but keeps each public
// key's decoded point between calls: decoding a key costs a square root
// modulo 2^255-19, some 6% of a verification, which a verifier that sees
// the same few keys again and again need not pay every time.
//
// The arithmetic is filippo.io/edwards25519, the module the standard
// library's own implementation was taken from. In FIPS 140-3 mode
// (crypto/fips140.Enabled) every call goes to crypto/ed25519 instead.
package edverify

import (
	"bytes"
	"crypto/ed25519"
	"crypto/fips140"
	"crypto/sha512"
	"sync"

	"filippo.io/edwards25519"
)

// MaxKeys is the most decoded keys a Cache holds. A Cache that would hold
// more starts over empty, so its memory (about 250 bytes a key) stays
// bounded whatever keys it is shown.
const MaxKeys = 4096

// A Cache verifies Ed25519 signatures and remembers the decoded points of
// the public keys that have verified one: a key enters only with a valid
// signature, so no one can fill the cache, or keep it cold, by sending
// tokens in the names of keys they do not hold. The zero value is ready to
// use; a nil *Cache verifies with crypto/ed25519 and remembers nothing. It
// is safe for concurrent use.
type Cache struct {
	mu    sync.RWMutex
	neg   map[[ed25519.PublicKeySize]byte]*edwards25519.Point // key -> -A
	limit int                                                 // 0: MaxKeys; lower in tests
}

// Verify reports whether sig is a valid signature of msg by pub, with the
// result crypto/ed25519.Verify would give. Unlike it, Verify does not
// panic on a key of another length: such a key verifies nothing.
func (c *Cache) Verify(pub ed25519.PublicKey, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize {
		return false
	}
	if c == nil || fips140.Enabled() {
		return ed25519.Verify(pub, msg, sig)
	}
	if len(sig) != ed25519.SignatureSize || sig[63]&224 != 0 {
		return false
	}
	// One copy of the key is hashed, decoded and remembered: a caller that
	// changed pub during the call must not have one key's point stored
	// under another key's bytes.
	key := [ed25519.PublicKeySize]byte(pub)
	c.mu.RLock()
	negA := c.neg[key]
	c.mu.RUnlock()
	if negA != nil {
		return verify(&key, negA, msg, sig)
	}
	a, err := new(edwards25519.Point).SetBytes(key[:])
	if err != nil {
		return false // not a point on the curve
	}
	negA = a.Negate(a)
	if !verify(&key, negA, msg, sig) {
		return false
	}
	c.mu.Lock()
	if c.neg[key] == nil {
		limit := c.limit
		if limit == 0 {
			limit = MaxKeys
		}
		if c.neg == nil || len(c.neg) >= limit {
			c.neg = make(map[[ed25519.PublicKeySize]byte]*edwards25519.Point)
		}
		c.neg[key] = negA
	}
	c.mu.Unlock()
	return true
}

// verify is crypto/ed25519's check of sig over msg by the key whose
// encoding is key and whose negated point is negA; sig is 64 bytes with
// the top three bits of S clear.
func verify(key *[ed25519.PublicKeySize]byte, negA *edwards25519.Point, msg, sig []byte) bool {
	// k = SHA-512(R || A || msg) mod l, over the key's bytes as given.
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(key[:])
	h.Write(msg)
	var digest [sha512.Size]byte
	h.Sum(digest[:0])
	var k, s edwards25519.Scalar
	if _, err := k.SetUniformBytes(digest[:]); err != nil {
		return false // cannot happen: the digest is 64 bytes
	}
	if _, err := s.SetCanonicalBytes(sig[32:]); err != nil {
		return false
	}
	// [S]B = R + [k]A, so R = [k](-A) + [S]B.
	var r edwards25519.Point
	r.VarTimeDoubleScalarBaseMult(&k, negA, &s)
	return bytes.Equal(sig[:32], r.Bytes())
}

// Len returns the number of decoded keys the cache holds.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.neg)
}
