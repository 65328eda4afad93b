package asymjwt

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// BenchmarkVerifyCertificate compares, in one run, verifying a token whose
// key is stored for the user (StoredKey, as BenchmarkVerify) with one whose
// key is vouched for by an OpenSSH certificate of a trusted Ed25519 CA:
// Certificate is the usual case, a client's certificate already seen, whose
// CA signature is cached; FirstSight clears the cache before each token, so
// it also parses the certificate and verifies the CA's signature through
// x/crypto/ssh's CertChecker.
func BenchmarkVerifyCertificate(b *testing.B) {
	_, caPriv, _ := ed25519.GenerateKey(rand.Reader)
	caSigner, err := ssh.NewSignerFromKey(caPriv)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"EdDSA", "ES256", "RS512"} {
		key := benchKeys(b)[name]
		pub, _ := ssh.NewPublicKey(key.Public())
		c := &ssh.Certificate{Key: pub, CertType: ssh.UserCert, KeyId: "bench", Serial: 1, ValidPrincipals: []string{"svc"},
			ValidAfter: uint64(testNow.Add(-time.Hour).Unix()), ValidBefore: uint64(testNow.Add(time.Hour).Unix()),
			Permissions: ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}}}
		if err := c.SignCert(rand.Reader, caSigner); err != nil {
			b.Fatal(err)
		}
		certified, err := KeyWithCertificate(key, ssh.MarshalAuthorizedKey(c))
		if err != nil {
			b.Fatal(err)
		}
		for _, mode := range []string{"StoredKey", "Certificate", "FirstSight"} {
			b.Run(name+"/"+mode, func(b *testing.B) {
				keys := NewMemoryKeyStore()
				signWith := certified
				if mode == "StoredKey" {
					signWith = key
					if err := keys.Add("svc", key.Public()); err != nil {
						b.Fatal(err)
					}
				}
				s, err := NewSigner("svc", signWith, WithClock(func() time.Time { return testNow }))
				if err != nil {
					b.Fatal(err)
				}
				req := httptest.NewRequest("GET", "http://api.example.com/v1/items", nil)
				pool := newTokenPool(b, s, req)
				v, err := NewVerifier(keys, WithNonceStore(pool), WithClock(func() time.Time { return testNow }),
					WithTrustedCAs(CertAuthority{Key: caPriv.Public()}))
				if err != nil {
					b.Fatal(err)
				}
				loopCPU(b, func() {
					if mode == "FirstSight" {
						v.certs.mu.Lock()
						clear(v.certs.m)
						v.certs.mu.Unlock()
					}
					pool.load()
					id, err := v.Verify(req)
					if err != nil {
						b.Fatal(err)
					}
					if (id.Certificate != nil) != (mode != "StoredKey") {
						b.Fatal("verified the wrong way")
					}
				})
			})
		}
	}
}
