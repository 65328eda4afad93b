package verifytest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/asymjwt/asymjwt"
	"golang.org/x/crypto/ssh"
)

// KeyKind names a kind of key for [GenerateKey].
type KeyKind string

// The kinds of key GenerateKey makes.
const (
	Ed25519   KeyKind = "ed25519"
	ECDSAP256 KeyKind = "ecdsa-p256"
	ECDSAP384 KeyKind = "ecdsa-p384"
	ECDSAP521 KeyKind = "ecdsa-p521"
	RSA2048   KeyKind = "rsa-2048"
	RSA3072   KeyKind = "rsa-3072"
)

// KeyPair is a throw-away key pair made by [GenerateKey].
type KeyPair struct {
	// Key signs tokens (asymjwt.NewSigner).
	Key asymjwt.Key
	// Private is the private key itself, for adding to an agent.
	Private crypto.Signer
	// Public is the public key, for a server's key store.
	Public crypto.PublicKey
	// Fingerprint is the key's SHA-256 fingerprint, the tokens' "kid".
	Fingerprint string
	// Comment is the comment on the public key line ("verifytest-<kind>").
	Comment string
	// PrivateFile is an unencrypted OpenSSH private key file.
	PrivateFile string
	// PublicFile is PrivateFile + ".pub", one authorized_keys line.
	PublicFile string
}

// GenerateKey makes a new key pair of the given kind and writes it to
// t.TempDir(). It fails the test on any error.
func GenerateKey(t testing.TB, kind KeyKind) *KeyPair {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch kind {
	case Ed25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case ECDSAP256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case ECDSAP521:
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case RSA2048:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		priv, err = rsa.GenerateKey(rand.Reader, 3072)
	default:
		t.Fatalf("verifytest: GenerateKey: unknown kind %q", kind)
	}
	if err != nil {
		t.Fatalf("verifytest: GenerateKey(%s): %v", kind, err)
	}
	kp := &KeyPair{Private: priv, Public: priv.Public(), Comment: "verifytest-" + string(kind)}
	if kp.Key, err = asymjwt.KeyFromSigner(priv); err != nil {
		t.Fatalf("verifytest: GenerateKey(%s): %v", kind, err)
	}
	if kp.Fingerprint, err = asymjwt.Fingerprint(kp.Public); err != nil {
		t.Fatalf("verifytest: GenerateKey(%s): %v", kind, err)
	}
	block, err := ssh.MarshalPrivateKey(priv, kp.Comment)
	if err != nil {
		t.Fatalf("verifytest: GenerateKey(%s): %v", kind, err)
	}
	sshPub, err := ssh.NewPublicKey(kp.Public)
	if err != nil {
		t.Fatalf("verifytest: GenerateKey(%s): %v", kind, err)
	}
	kp.PrivateFile = filepath.Join(t.TempDir(), "id_"+string(kind))
	kp.PublicFile = kp.PrivateFile + ".pub"
	pubLine := fmt.Appendf(nil, "%s %s\n", bytes.TrimSpace(ssh.MarshalAuthorizedKey(sshPub)), kp.Comment)
	if err := os.WriteFile(kp.PrivateFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatalf("verifytest: GenerateKey: %v", err)
	}
	if err := os.WriteFile(kp.PublicFile, pubLine, 0o644); err != nil {
		t.Fatalf("verifytest: GenerateKey: %v", err)
	}
	return kp
}

// Signer returns an asymjwt.Signer for username with the key pair's key. It
// fails the test on any error.
func (kp *KeyPair) Signer(t testing.TB, username string, opts ...asymjwt.SignerOption) *asymjwt.Signer {
	t.Helper()
	s, err := asymjwt.NewSigner(username, kp.Key, opts...)
	if err != nil {
		t.Fatalf("verifytest: NewSigner: %v", err)
	}
	return s
}
