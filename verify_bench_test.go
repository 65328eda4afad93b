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
	"net/http"
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

// swapNonces is a NonceStore a benchmark can empty (renew) when its pool of
// pre-signed tokens wraps around, so no token is ever a replay; the swap
// costs a few ns per verification, spread over the pool.
type swapNonces struct {
	p atomic.Pointer[MemoryNonceStore]
}

func newSwapNonces() *swapNonces {
	s := new(swapNonces)
	s.renew()
	return s
}

func (s *swapNonces) renew() { s.p.Store(mustNonceStore()) }

func (s *swapNonces) Use(ctx context.Context, user, nonce string, ttl time.Duration) error {
	return s.p.Load().Use(ctx, user, nonce, ttl)
}

// tokenPool holds pre-signed tokens for a benchmark that verifies one a
// call, and is the NonceStore its Verifier uses (WithNonceStore(pool)),
// emptied each time the pool wraps around.
type tokenPool struct {
	swapNonces
	req    *http.Request
	tokens []string // "JWT <token>"
	next   int
}

// newTokenPool signs 512 tokens for req with s.
func newTokenPool(b *testing.B, s *Signer, req *http.Request) *tokenPool {
	b.Helper()
	p := &tokenPool{req: req, tokens: make([]string, 512)}
	p.renew()
	for i := range p.tokens {
		tok, err := s.Sign(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		p.tokens[i] = "JWT " + tok
	}
	return p
}

// load puts the next token in req's Authorization header.
func (p *tokenPool) load() {
	if p.next == len(p.tokens) {
		p.reset()
	}
	p.req.Header.Set("Authorization", p.tokens[p.next])
	p.next++
}

// reset starts the pool over with an empty nonce store.
func (p *tokenPool) reset() {
	p.renew()
	p.next = 0
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
			s, err := NewSigner("svc", key, WithClock(func() time.Time { return testNow }))
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest("GET", "http://api.example.com/v1/items", nil)
			pool := newTokenPool(b, s, req)
			v, err := NewVerifier(keys, WithNonceStore(pool), WithClock(func() time.Time { return testNow }))
			if err != nil {
				b.Fatal(err)
			}
			loopCPU(b, func() {
				pool.load()
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
