package asymjwt

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/ssh"
)

// The three benchmarks below share sub-benchmark names, so the cost the
// token layer adds over the raw signature can be read from one run:
//
//	go test -run '^$' -bench 'Sign' -benchmem -count 5 .
//
//   - BenchmarkSign: Signer.Sign, a whole token bound to a request.
//   - BenchmarkRawSign: the digest and signature alone, over an input as long
//     as that token's signing input.
//   - BenchmarkGolangJWTSign: the same claims through golang-jwt, for
//     reference.
//
// Besides ns/op (wall time) each reports cpu-ns/op, the CPU time of the
// whole process per operation (GC workers included). On a shared machine
// wall time also counts waiting for a core, so compare cpu-ns/op there.

var signBenchKeys = []struct {
	name string
	file string
	alg  Algorithm
}{
	{"RS512", "pkcs1_rsa2048.pem", RS512},
	{"ES256", "sec1_p256.pem", ES256},
	{"EdDSA", "openssh_ed25519", EdDSA},
}

// signBenchKey reads a fixture as the raw private key and as a Key.
func signBenchKey(b *testing.B, file string) (crypto.Signer, Key) {
	b.Helper()
	data, err := os.ReadFile(keyPath(file))
	if err != nil {
		b.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKey(data)
	if err != nil {
		b.Fatal(err)
	}
	if k, ok := raw.(*ed25519.PrivateKey); ok {
		raw = *k
	}
	priv := raw.(crypto.Signer)
	key, err := KeyFromSigner(priv)
	if err != nil {
		b.Fatal(err)
	}
	return priv, key
}

func signBenchRequest(b *testing.B) *http.Request {
	req, err := http.NewRequest("GET", "https://api.example.com/v1/items?page=2", nil)
	if err != nil {
		b.Fatal(err)
	}
	return req
}

func BenchmarkSign(b *testing.B) {
	for _, k := range signBenchKeys {
		b.Run(k.name, func(b *testing.B) {
			_, key := signBenchKey(b, k.file)
			s, err := NewSigner("benchmark-user", key)
			if err != nil {
				b.Fatal(err)
			}
			req := signBenchRequest(b)
			ctx := context.Background()
			loopCPU(b, func() {
				if _, err := s.Sign(ctx, req); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

func BenchmarkRawSign(b *testing.B) {
	for _, k := range signBenchKeys {
		b.Run(k.name, func(b *testing.B) {
			priv, key := signBenchKey(b, k.file)
			s, err := NewSigner("benchmark-user", key)
			if err != nil {
				b.Fatal(err)
			}
			tok, err := s.Sign(context.Background(), signBenchRequest(b))
			if err != nil {
				b.Fatal(err)
			}
			// The same bytes a token's signature covers.
			msg := []byte(tok[:strings.LastIndexByte(tok, '.')])
			switch p := priv.(type) {
			case *rsa.PrivateKey:
				loopCPU(b, func() {
					d := sha512.Sum512(msg)
					if _, err := rsa.SignPKCS1v15(nil, p, crypto.SHA512, d[:]); err != nil {
						b.Fatal(err)
					}
				})
			case *ecdsa.PrivateKey:
				loopCPU(b, func() {
					d := sha256.Sum256(msg)
					if _, err := ecdsa.SignASN1(rand.Reader, p, d[:]); err != nil {
						b.Fatal(err)
					}
				})
			case ed25519.PrivateKey:
				loopCPU(b, func() {
					ed25519.Sign(p, msg)
				})
			default:
				b.Fatalf("unexpected key %T", priv)
			}
		})
	}
}

func BenchmarkGolangJWTSign(b *testing.B) {
	for _, k := range signBenchKeys {
		b.Run(k.name, func(b *testing.B) {
			priv, key := signBenchKey(b, k.file)
			kid, err := Fingerprint(key.Public())
			if err != nil {
				b.Fatal(err)
			}
			method := jwt.GetSigningMethod(string(k.alg))
			loopCPU(b, func() {
				var nonce [nonceBytes]byte
				rand.Read(nonce[:])
				tok := jwt.NewWithClaims(method, jwt.MapClaims{
					"username": "benchmark-user",
					"time":     time.Now().Unix(),
					"nonce":    base64.RawURLEncoding.EncodeToString(nonce[:]),
					"htm":      "GET",
					"htu":      "https://api.example.com/v1/items",
				})
				tok.Header["kid"] = kid
				if _, err := tok.SignedString(priv); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}
