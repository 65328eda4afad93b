package asymjwt_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/asymjwt/asymjwt"
	"golang.org/x/crypto/ssh"
)

// A server that trusts a CA rather than storing keys, and a client key that
// carries a certificate of that CA (here made in process; in life by
// ssh-keygen -s, and picked up from FILE-cert.pub by KeyFromFile).
func ExampleWithTrustedCAs() {
	// The CA, and a certificate for the client's key.
	_, caPriv, _ := ed25519.GenerateKey(rand.Reader)
	caSigner, _ := ssh.NewSignerFromKey(caPriv)
	key, _ := asymjwt.KeyFromFile("testdata/keys/openssh_p256", asymjwt.WithoutCertificate())
	pub, _ := ssh.NewPublicKey(key.Public())
	cert := &ssh.Certificate{Key: pub, CertType: ssh.UserCert, KeyId: "deploy@ci", Serial: 1001,
		ValidPrincipals: []string{"deploy"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, caSigner); err != nil {
		panic(err)
	}

	// Client: the key carries its certificate, and so do its tokens.
	certified, err := asymjwt.KeyWithCertificate(key, ssh.MarshalAuthorizedKey(cert))
	if err != nil {
		panic(err)
	}
	signer, _ := asymjwt.NewSigner("deploy", certified)
	tok, _ := signer.Sign(context.Background(), nil)

	// Server: no key stored for "deploy", only the CA trusted.
	v, err := asymjwt.NewVerifier(asymjwt.NewMemoryKeyStore(),
		asymjwt.WithTrustedCAs(asymjwt.CertAuthority{Key: caPriv.Public()}))
	if err != nil {
		panic(err)
	}
	id, err := v.VerifyToken(context.Background(), tok, "", "")
	if err != nil {
		panic(err)
	}
	fmt.Println(id.Username, id.Certificate.KeyID, id.Certificate.Serial)

	// A token for a user the certificate does not name.
	other, _ := asymjwt.NewSigner("admin", certified)
	tok, _ = other.Sign(context.Background(), nil)
	_, err = v.VerifyToken(context.Background(), tok, "", "")
	fmt.Println(errors.Is(err, asymjwt.ErrCertPrincipal), asymjwt.ErrorKind(err))
	// Output:
	// deploy deploy@ci 1001
	// true cert_principal
}

// An authorized_keys file with options: what can be honoured is kept with
// the key or CA, what cannot makes the line skipped and reported.
func ExampleParseAuthorizedKeys() {
	ed, _ := os.ReadFile("testdata/keys/openssh_ed25519.pub.ssh")
	p256, _ := os.ReadFile("testdata/keys/openssh_p256.pub.ssh")
	text := `from="10.0.0.0/8",expiry-time="20300101Z",no-pty ` + string(ed) +
		`command="/usr/bin/backup" ` + string(p256) +
		`cert-authority,principals="ops" ` + string(p256)

	ak, skipped := asymjwt.ParseAuthorizedKeys([]byte(text))
	for _, k := range ak.Keys {
		fmt.Println("key", k.Comment, k.Restrictions.From, k.Restrictions.ExpiresAt.Format(time.DateOnly))
	}
	for _, ca := range ak.Authorities {
		fmt.Println("CA", ca.Comment, ca.Principals)
	}
	for _, err := range skipped {
		fmt.Println(strings.TrimPrefix(err.Error(), "asymjwt: "))
	}
	// Output:
	// key openssh-ed25519 [10.0.0.0/8] 2030-01-01
	// CA openssh-p256 [ops]
	// key line 2: authorized_keys option cannot be honoured: command= (a forced command; an HTTP request runs none) (key ecdsa-sha2-nistp256 "openssh-p256")
}
