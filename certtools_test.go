package asymjwt

import (
	"crypto"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/asymjwt/asymjwt/internal/testenv"
	"golang.org/x/crypto/ssh"
)

// Helpers that make keys, CAs and certificates with the real ssh-keygen.

// keygenKind is a key type as ssh-keygen -t and -b name it.
type keygenKind struct {
	name string
	typ  string
	bits int
	alg  Algorithm
}

var keygenKinds = []keygenKind{
	{"ed25519", "ed25519", 0, EdDSA},
	{"p256", "ecdsa", 256, ES256},
	{"p384", "ecdsa", 384, ES384},
	{"p521", "ecdsa", 521, ES512},
	{"rsa2048", "rsa", 2048, RS512},
}

// keygen writes dir/name and dir/name.pub with ssh-keygen and returns the
// private key's path.
func keygen(t testing.TB, dir, name string, kind keygenKind) string {
	t.Helper()
	path := filepath.Join(dir, name)
	args := []string{"-q", "-t", kind.typ, "-N", "", "-C", name, "-f", path}
	if kind.bits > 0 {
		args = append(args, "-b", fmt.Sprint(kind.bits))
	}
	runKeygen(t, args...)
	return path
}

func runKeygen(t testing.TB, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(testenv.LookPath(t, "ssh-keygen"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
	}
	return out
}

// keygenCA is a CA key made by ssh-keygen.
type keygenCA struct {
	path string // private key; path+".pub" is its public key
	pub  crypto.PublicKey
	fp   string
}

func newKeygenCA(t testing.TB, dir, name string, kind keygenKind) *keygenCA {
	t.Helper()
	path := keygen(t, dir, name, kind)
	sshPub := readSSHPub(t, path+".pub")
	return &keygenCA{path: path, pub: sshPub.(ssh.CryptoPublicKey).CryptoPublicKey(), fp: ssh.FingerprintSHA256(sshPub)}
}

// authority is the CA as a verifier trusts it.
func (ca *keygenCA) authority() CertAuthority { return CertAuthority{Key: ca.pub, Comment: "test CA"} }

// certify runs `ssh-keygen -s CA -I id args... key.pub` and returns the
// certificate it wrote (key-cert.pub), as the file holds it.
func (ca *keygenCA) certify(t testing.TB, keyPath string, args ...string) []byte {
	t.Helper()
	cmd := append([]string{"-q", "-s", ca.path}, args...)
	runKeygen(t, append(cmd, keyPath+".pub")...)
	data, err := os.ReadFile(keyPath + certFileSuffix)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func readSSHPub(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// certifiedKey loads the private key at path with the certificate cert.
func loadCertified(t testing.TB, path string, cert []byte) Key {
	t.Helper()
	k, err := KeyFromFile(path, WithoutCertificate())
	if err != nil {
		t.Fatal(err)
	}
	ck, err := KeyWithCertificate(k, cert)
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

// verifyFrom verifies authorization for a request from the client address
// remote ("ip:port").
func (h *harness) verifyFrom(remote, authorization string) (*Identity, error) {
	r := httptest.NewRequest("GET", "http://api.example.com/v1/items", nil)
	r.RemoteAddr = remote
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	return h.v.Verify(r)
}
