package verifytest

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// CA is a throw-away OpenSSH certificate authority made by [NewCA], for
// testing code that signs with certified keys or verifies them: what
// `ssh-keygen -s` does, in process. Its methods are safe for concurrent use.
type CA struct {
	// Signer is the CA's private key, to sign certificates of your own.
	Signer ssh.Signer
	// Public is the CA's public key.
	Public crypto.PublicKey
	// Fingerprint is the CA key's SHA-256 fingerprint, as
	// asymjwt.CertificateInfo.CA names it.
	Fingerprint string
	// PublicFile is a file holding the CA's public key as one
	// authorized_keys line: a TrustedUserCAKeys file for
	// asymjwt.ParseCertAuthorities and `asymjwt verify -ca`.
	PublicFile string

	serial atomic.Uint64
}

// NewCA makes a new Ed25519 CA and writes its public key to t.TempDir(). It
// fails the test on any error.
func NewCA(t testing.TB) *CA {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("verifytest: NewCA: %v", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("verifytest: NewCA: %v", err)
	}
	ca := &CA{Signer: signer, Public: priv.Public(), Fingerprint: ssh.FingerprintSHA256(signer.PublicKey())}
	ca.PublicFile = filepath.Join(t.TempDir(), "ca.pub")
	line := fmt.Appendf(nil, "%s verifytest-ca\n", bytes.TrimSpace(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	if err := os.WriteFile(ca.PublicFile, line, 0o644); err != nil {
		t.Fatalf("verifytest: NewCA: %v", err)
	}
	return ca
}

// Authority returns the CA as a verifier trusts it: for every user
// (asymjwt.WithTrustedCAs) or for one ([Server.AddCertAuthority],
// asymjwt.MemoryKeyStore.SetCertAuthorities).
func (ca *CA) Authority() asymjwt.CertAuthority {
	return asymjwt.CertAuthority{Key: ca.Public, Fingerprint: ca.Fingerprint, Comment: "verifytest-ca"}
}

// Certificate is a certificate made by [CA.Certify].
type Certificate struct {
	// Cert is the certificate.
	Cert *ssh.Certificate
	// Key is the key pair's key carrying the certificate: its tokens
	// carry the certificate (asymjwt.CertifiedKey).
	Key asymjwt.Key
	// File is the key pair's PrivateFile + "-cert.pub", where the
	// certificate was written, so asymjwt.KeyFromFile(kp.PrivateFile)
	// and ssh-add pick it up.
	File string
}

// CertOption changes a certificate [CA.Certify] makes.
type CertOption func(*ssh.Certificate)

// WithKeyID sets the certificate's key ID (ssh-keygen -I); the default is
// the key pair's comment.
func WithKeyID(id string) CertOption { return func(c *ssh.Certificate) { c.KeyId = id } }

// WithSerial sets the certificate's serial number (ssh-keygen -z); by
// default each certificate of a CA gets the next one, from 1.
func WithSerial(serial uint64) CertOption { return func(c *ssh.Certificate) { c.Serial = serial } }

// WithCriticalOption adds a critical option (ssh-keygen -O), such as
// "source-address" with "10.0.0.0/8", or "force-command".
func WithCriticalOption(name, value string) CertOption {
	return func(c *ssh.Certificate) {
		if c.CriticalOptions == nil {
			c.CriticalOptions = map[string]string{}
		}
		c.CriticalOptions[name] = value
	}
}

// WithValidity sets the validity period to [from, to) instead of the one
// Certify's validity gives.
func WithValidity(from, to time.Time) CertOption {
	return func(c *ssh.Certificate) {
		c.ValidAfter, c.ValidBefore = uint64(from.Unix()), uint64(to.Unix())
	}
}

// AsHostCertificate makes a host certificate (ssh-keygen -h), which
// verifiers refuse for tokens.
func AsHostCertificate() CertOption { return func(c *ssh.Certificate) { c.CertType = ssh.HostCert } }

// Certify signs a user certificate of kp's key for principals, valid from a
// minute ago (for clock skew) until validity from now, or forever when
// validity is 0; opts change it further. It writes the certificate beside
// kp's private key and returns it with kp's key carrying it. It fails the
// test on any error.
func (ca *CA) Certify(t testing.TB, kp *KeyPair, principals []string, validity time.Duration, opts ...CertOption) *Certificate {
	t.Helper()
	pub, err := ssh.NewPublicKey(kp.Public)
	if err != nil {
		t.Fatalf("verifytest: Certify: %v", err)
	}
	c := &ssh.Certificate{
		Key:             pub,
		Serial:          ca.serial.Add(1),
		CertType:        ssh.UserCert,
		KeyId:           kp.Comment,
		ValidPrincipals: append([]string(nil), principals...),
		ValidBefore:     ssh.CertTimeInfinity,
		Permissions:     ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}},
	}
	if validity != 0 {
		now := time.Now()
		c.ValidAfter, c.ValidBefore = uint64(now.Add(-time.Minute).Unix()), uint64(now.Add(validity).Unix())
	}
	for _, opt := range opts {
		opt(c)
	}
	if err := c.SignCert(rand.Reader, ca.Signer); err != nil {
		t.Fatalf("verifytest: Certify: %v", err)
	}
	line := ssh.MarshalAuthorizedKey(c)
	cert := &Certificate{Cert: c, File: kp.PrivateFile + "-cert.pub"}
	if err := os.WriteFile(cert.File, line, 0o644); err != nil {
		t.Fatalf("verifytest: Certify: %v", err)
	}
	if cert.Key, err = asymjwt.KeyWithCertificate(kp.Key, line); err != nil && c.CertType == ssh.UserCert {
		t.Fatalf("verifytest: Certify: %v", err)
	}
	if cert.Key == nil { // a host certificate: no Key carries it
		cert.Key = kp.Key
	}
	return cert
}

// AddCertificate adds kp's private key with cert to the agent, as ssh-add
// adds a key with the -cert.pub beside it. It fails the test on any error.
func (a *Agent) AddCertificate(t testing.TB, kp *KeyPair, cert *Certificate) {
	t.Helper()
	if err := a.Keyring.Add(agent.AddedKey{PrivateKey: kp.Private, Certificate: cert.Cert, Comment: kp.Comment}); err != nil {
		t.Fatalf("verifytest: AddCertificate: %v", err)
	}
}
