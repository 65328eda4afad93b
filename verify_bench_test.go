package asymjwt

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"math/big"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// benchKeys are the keys BenchmarkVerify and BenchmarkRawVerify compare on.
func benchKeys(b *testing.B) map[string]Key {
	k := loadTestKeys(b)
	return map[string]Key{"RS512": k.rsa, "ES256": k.p256, "EdDSA": k.ed}
}

// swapNonces lets a benchmark start over with an empty store when its pool
// of pre-signed tokens wraps around.
type swapNonces struct {
	p atomic.Pointer[MemoryNonceStore]
}

func (s *swapNonces) Use(ctx context.Context, user, nonce string, ttl time.Duration) error {
	return s.p.Load().Use(ctx, user, nonce, ttl)
}

// BenchmarkVerify is the whole server-side check of one request: header,
// parse, key lookup, signature, time, binding and the in-memory nonce store.
// Compare with BenchmarkRawVerify, the bare signature check.
func BenchmarkVerify(b *testing.B) {
	for _, name := range []string{"RS512", "ES256", "EdDSA"} {
		key := benchKeys(b)[name]
		b.Run(name, func(b *testing.B) {
			keys := NewMemoryKeyStore()
			if err := keys.Add("svc", key.Public()); err != nil {
				b.Fatal(err)
			}
			var nonces swapNonces
			nonces.p.Store(mustNonceStore())
			v, err := NewVerifier(keys, WithNonceStore(&nonces), WithClock(func() time.Time { return testNow }))
			if err != nil {
				b.Fatal(err)
			}
			s, err := NewSigner("svc", key, WithClock(func() time.Time { return testNow }))
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest("GET", "http://api.example.com/v1/items", nil)
			pool := make([]string, 512)
			for i := range pool {
				tok, err := s.Sign(context.Background(), req)
				if err != nil {
					b.Fatal(err)
				}
				pool[i] = "JWT " + tok
			}
			i := 0
			loopCPU(b, func() {
				if i%len(pool) == 0 && i > 0 {
					// A fresh store for the next round of the pool: costs
					// a few ns per verification, spread over the pool.
					nonces.p.Store(mustNonceStore())
				}
				req.Header.Set("Authorization", pool[i%len(pool)])
				i++
				if _, err := v.Verify(req); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkRawVerify is the bare signature check of the same tokens:
// hashing the signing input and the primitive, nothing else.
func BenchmarkRawVerify(b *testing.B) {
	for _, name := range []string{"RS512", "ES256", "EdDSA"} {
		key := benchKeys(b)[name]
		b.Run(name, func(b *testing.B) {
			s, _ := NewSigner("svc", key, WithClock(func() time.Time { return testNow }))
			tok, err := s.Sign(context.Background(), httptest.NewRequest("GET", "http://api.example.com/v1/items", nil))
			if err != nil {
				b.Fatal(err)
			}
			dot := strings.LastIndexByte(tok, '.')
			input := []byte(tok[:dot])
			sig, _ := base64.RawURLEncoding.DecodeString(tok[dot+1:])
			var verify func() bool
			switch pub := key.Public().(type) {
			case *rsa.PublicKey:
				verify = func() bool {
					d := sha512.Sum512(input)
					return rsa.VerifyPKCS1v15(pub, crypto.SHA512, d[:], sig) == nil
				}
			case *ecdsa.PublicKey:
				r, ss := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
				verify = func() bool {
					d := sha256.Sum256(input)
					return ecdsa.Verify(pub, d[:], r, ss)
				}
			case ed25519.PublicKey:
				verify = func() bool { return ed25519.Verify(pub, input, sig) }
			}
			loopCPU(b, func() {
				if !verify() {
					b.Fatal("raw verify failed")
				}
			})
		})
	}
}
