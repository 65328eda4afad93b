//go:build unix

package asymjwt

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// TestAgentCertificateOpenSSH: ssh-add adds a key and the -cert.pub beside
// it as two entries; the Agent pairs them, and a token signed in the agent
// carries the certificate and verifies through the CA, for every key type.
func TestAgentCertificateOpenSSH(t *testing.T) {
	dir := agentSocketDir(t)
	p := startSSHAgent(t, filepath.Join(dir, "agent.sock"))
	ca := newKeygenCA(t, dir, "ca", keygenKinds[0])
	type added struct {
		kind keygenKind
		path string
	}
	var keys []added
	for _, kind := range keygenKinds {
		path := keygen(t, dir, "id_"+kind.name, kind)
		ca.certify(t, path, "-I", "agent-"+kind.name, "-z", "77", "-n", "svc", "-V", "-5m:+1h")
		sshAdd(t, p.socket, path, "") // also adds path-cert.pub
		keys = append(keys, added{kind, path})
	}
	// A key with no certificate, too.
	plainPath := keygen(t, dir, "plain", keygenKinds[0])
	sshAdd(t, p.socket, plainPath, "")

	a, err := DialAgent(p.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	infos, err := a.Keys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2*len(keys)+1 {
		t.Fatalf("the agent lists %d entries, want a key and a certificate each: %v", len(infos), infos)
	}
	v, err := NewVerifier(NewMemoryKeyStore(), WithTrustedCAs(ca.authority()))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		t.Run(k.kind.name, func(t *testing.T) {
			fp := ssh.FingerprintSHA256(readSSHPub(t, k.path+".pub"))
			// By fingerprint, and by comment: the key and its certificate
			// are one key, not two.
			for _, sel := range []string{fp, "id_" + k.kind.name} {
				key, err := a.Key(t.Context(), sel)
				if err != nil {
					t.Fatal(err)
				}
				cert := key.(CertifiedKey).Certificate()
				if cert == nil || cert.KeyId != "agent-"+k.kind.name {
					t.Fatalf("Key(%q) carries certificate %v", sel, cert)
				}
				s, err := NewSigner("svc", key)
				if err != nil {
					t.Fatal(err)
				}
				tok, err := s.Sign(t.Context(), nil)
				if err != nil {
					t.Fatal(err)
				}
				id, err := v.VerifyToken(t.Context(), tok, "", "")
				if err != nil {
					t.Fatal(err)
				}
				if id.Certificate.KeyID != "agent-"+k.kind.name || id.Certificate.Serial != 77 || id.Key.Fingerprint != fp {
					t.Errorf("identity %+v, certificate %+v", id, id.Certificate)
				}
			}
		})
	}
	key, err := a.Key(t.Context(), "plain")
	if err != nil {
		t.Fatal(err)
	}
	if key.(CertifiedKey).Certificate() != nil {
		t.Error("a key without certificate carries one")
	}
	sshPub := readSSHPub(t, keys[0].path+certFileSuffix)
	if key, err := a.KeyForPublicKey(t.Context(), sshPub); err != nil || key.(CertifiedKey).Certificate() == nil {
		t.Errorf("KeyForPublicKey(certificate) = %v, %v", key, err)
	}
}

// TestAgentCertificateKeyring: x/crypto's keyring lists a key added with
// its certificate only as the certificate; the Agent signs through that
// entry. Of several certificates, one valid now is chosen.
func TestAgentCertificateKeyring(t *testing.T) {
	_, caPriv, _ := ed25519.GenerateKey(rand.Reader)
	caSigner, _ := ssh.NewSignerFromKey(caPriv)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	pub, _ := ssh.NewPublicKey(priv.Public())
	now := time.Now()
	cert := func(id string, from, to time.Time) *ssh.Certificate {
		c := &ssh.Certificate{Key: pub, CertType: ssh.UserCert, KeyId: id, ValidPrincipals: []string{"svc"},
			ValidAfter: uint64(from.Unix()), ValidBefore: uint64(to.Unix())}
		if err := c.SignCert(rand.Reader, caSigner); err != nil {
			t.Fatal(err)
		}
		return c
	}
	kr := agent.NewKeyring().(agent.ExtendedAgent)
	for _, c := range []*ssh.Certificate{
		cert("expired", now.Add(-2*time.Hour), now.Add(-time.Hour)),
		cert("current", now.Add(-time.Hour), now.Add(time.Hour)),
		cert("future", now.Add(time.Hour), now.Add(2*time.Hour)),
	} {
		if err := kr.Add(agent.AddedKey{PrivateKey: priv, Certificate: c, Comment: "svc-key"}); err != nil {
			t.Fatal(err)
		}
	}
	a := NewAgent(kr)
	key, err := a.Key(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if id := key.(CertifiedKey).Certificate().KeyId; id != "current" {
		t.Fatalf("chose %q", id)
	}
	v, err := NewVerifier(NewMemoryKeyStore(), WithTrustedCAs(CertAuthority{Key: caPriv.Public()}))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner("svc", key)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyToken(context.Background(), tok, "", ""); err != nil {
		t.Fatal(err)
	}

	if got := chooseCertificate([]*ssh.Certificate{cert("a", now.Add(-2*time.Hour), now.Add(-time.Hour)), cert("b", now.Add(time.Hour), now.Add(2*time.Hour))}, now); got.KeyId != "a" {
		t.Errorf("none valid: chose %q, want the first", got.KeyId)
	}
	if chooseCertificate(nil, now) != nil {
		t.Error("chose a certificate from none")
	}
}
