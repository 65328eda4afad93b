package verifytest

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt"
	"golang.org/x/crypto/ssh"
)

func TestCertify(t *testing.T) {
	ca := NewCA(t)
	kp := GenerateKey(t, ECDSAP256)
	cert := ca.Certify(t, kp, []string{"alice", "ops"}, time.Hour, WithKeyID("alice@laptop"), WithSerial(42), WithCriticalOption("source-address", "127.0.0.0/8"))
	c := cert.Cert
	if c.KeyId != "alice@laptop" || c.Serial != 42 || c.CertType != ssh.UserCert || c.CriticalOptions["source-address"] != "127.0.0.0/8" {
		t.Fatalf("certificate %+v", c)
	}
	if now := uint64(time.Now().Unix()); c.ValidAfter > now || c.ValidBefore < now+3500 {
		t.Errorf("validity %d..%d", c.ValidAfter, c.ValidBefore)
	}
	if ck, ok := cert.Key.(asymjwt.CertifiedKey); !ok || ck.Certificate() == nil || !bytes.Equal(ck.Certificate().Marshal(), c.Marshal()) {
		t.Fatal("Key does not carry the certificate")
	}
	// Written beside the key, where KeyFromFile finds it.
	key, err := asymjwt.KeyFromFile(kp.PrivateFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := key.(asymjwt.CertifiedKey).Certificate(); got == nil || got.Serial != 42 {
		t.Fatalf("KeyFromFile found %v in %s", got, cert.File)
	}
	// ParseCertAuthorities reads the CA's public key file.
	data, err := os.ReadFile(ca.PublicFile)
	if err != nil {
		t.Fatal(err)
	}
	if cas, errs := asymjwt.ParseCertAuthorities(data); len(cas) != 1 || len(errs) != 0 || cas[0].Fingerprint != ca.Fingerprint {
		t.Fatalf("CA file: %v %v", cas, errs)
	}
	// Serials count up; forever is forever; a host certificate.
	if next := ca.Certify(t, kp, []string{"a"}, 0); next.Cert.Serial != 2 || next.Cert.ValidBefore != ssh.CertTimeInfinity || next.Cert.ValidAfter != 0 {
		t.Errorf("second certificate %+v", next.Cert)
	}
	from := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if w := ca.Certify(t, kp, []string{"a"}, time.Hour, WithValidity(from, from.Add(time.Hour))); w.Cert.ValidAfter != uint64(from.Unix()) {
		t.Errorf("WithValidity: %+v", w.Cert)
	}
	host := ca.Certify(t, kp, []string{"h"}, 0, AsHostCertificate())
	if host.Cert.CertType != ssh.HostCert || host.Key != kp.Key {
		t.Errorf("host certificate %+v, key %v", host.Cert, host.Key)
	}
}

// TestCertificatesThroughServer: a CA trusted for every user, or for one,
// and a certificate held by the in-process agent.
func TestCertificatesThroughServer(t *testing.T) {
	ca, other := NewCA(t), NewCA(t)
	srv := NewServer(WithVerifierOptions(asymjwt.WithTrustedCAs(ca.Authority())))
	defer srv.Close()
	srv.AddCertAuthority("bob", other.Authority())

	get := func(user string, key asymjwt.Key) Request {
		t.Helper()
		srv.Reset()
		signer, err := asymjwt.NewSigner(user, key)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.SignedClient(signer).Get(srv.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return srv.Requests()[0]
	}
	alice, bob := GenerateKey(t, Ed25519), GenerateKey(t, RSA2048)
	if r := get("alice", ca.Certify(t, alice, []string{"alice"}, time.Hour, WithKeyID("alice-job")).Key); !r.Authorized || r.Certificate == nil || r.Certificate.KeyID != "alice-job" || r.Certificate.CA != ca.Fingerprint {
		t.Fatalf("alice: %+v", r)
	}
	if r := get("bob", other.Certify(t, bob, []string{"bob"}, time.Hour).Key); !r.Authorized {
		t.Fatalf("bob with his own CA: %+v", r)
	}
	if r := get("alice", other.Certify(t, alice, []string{"alice"}, time.Hour).Key); r.Authorized || !errors.Is(r.Err, asymjwt.ErrUnknownUser) && !errors.Is(r.Err, asymjwt.ErrCertUntrusted) {
		t.Fatalf("alice with bob's CA: %+v", r)
	}
	if r := get("alice", ca.Certify(t, alice, []string{"alice"}, time.Hour, WithValidity(time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))).Key); r.Authorized || r.Kind != "cert_expired" {
		t.Fatalf("expired: %+v", r)
	}
	if r := get("alice", ca.Certify(t, alice, []string{"alice"}, time.Hour, WithCriticalOption("force-command", "true")).Key); r.Authorized || r.Kind != "cert_option" {
		t.Fatalf("force-command: %+v", r)
	}

	// Through the in-process agent, which lists the key as its certificate.
	carol := GenerateKey(t, ECDSAP384)
	ag := NewAgent(t)
	ag.AddCertificate(t, carol, ca.Certify(t, carol, []string{"carol"}, time.Hour, WithKeyID("carol-agent")))
	a, err := asymjwt.DialAgent(ag.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	key, err := a.Key(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if r := get("carol", key); !r.Authorized || r.Certificate.KeyID != "carol-agent" {
		t.Fatalf("carol through the agent: %+v", r)
	}
}

func TestAddKeyFileCertAuthority(t *testing.T) {
	ca := NewCA(t)
	data, err := os.ReadFile(ca.PublicFile)
	if err != nil {
		t.Fatal(err)
	}
	file := t.TempDir() + "/alice.pub"
	if err := os.WriteFile(file, append([]byte(`cert-authority,principals="ops" `), data...), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := NewServer()
	defer srv.Close()
	srv.AddKeyFile("alice", file)
	kp := GenerateKey(t, Ed25519)
	signer, err := asymjwt.NewSigner("alice", ca.Certify(t, kp, []string{"ops"}, time.Hour).Key)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.SignedClient(signer).Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if r := srv.Requests()[0]; !r.Authorized {
		t.Fatalf("%+v", r)
	}
}
