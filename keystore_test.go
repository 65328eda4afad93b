package asymjwt

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt/internal/testenv"
	"golang.org/x/crypto/ssh"
)

// ksFixture returns a fixture file's content without its line end.
func ksFixture(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(keyPath(name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(string(data), "\r\n")
}

// ksFingerprint returns the fingerprint of a fixture's public key, computed
// without ParsePublicKeys.
func ksFingerprint(t testing.TB, name string) string {
	t.Helper()
	fp, err := Fingerprint(readPublicKey(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// ksPublicFixtures lists testdata/keys/*.pub.ssh and *.pub.pem.
func ksPublicFixtures(t testing.TB) []string {
	t.Helper()
	var names []string
	for _, pattern := range []string{"*.pub.ssh", "*.pub.pem"} {
		m, err := filepath.Glob(keyPath(pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			names = append(names, filepath.Base(p))
		}
	}
	if len(names) < 10 {
		t.Fatalf("only %d public key fixtures found", len(names))
	}
	return names
}

func TestParsePublicKeysLoadsEveryFixture(t *testing.T) {
	for _, name := range ksPublicFixtures(t) {
		t.Run(name, func(t *testing.T) {
			keys, errs := ParsePublicKeys([]byte(ksFixture(t, name) + "\n"))
			if len(errs) != 0 || len(keys) != 1 {
				t.Fatalf("got %d keys, errors %v; want 1 key", len(keys), errs)
			}
			// The fingerprint of the private key the public half was made from.
			var want, wantComment string
			if strings.HasSuffix(name, ".pub.pem") {
				k, err := KeyFromFile(keyPath(strings.TrimSuffix(name, ".pub.pem") + ".pem"))
				if err != nil {
					t.Fatal(err)
				}
				if want, err = Fingerprint(k.Public()); err != nil {
					t.Fatal(err)
				}
			} else {
				want = ksFingerprint(t, name)
				wantComment = strings.Fields(ksFixture(t, name))[2]
			}
			if keys[0].Fingerprint != want {
				t.Errorf("Fingerprint = %s, want %s", keys[0].Fingerprint, want)
			}
			if keys[0].Comment != wantComment {
				t.Errorf("Comment = %q, want %q", keys[0].Comment, wantComment)
			}
			if err := checkPublicKey(keys[0].Key); err != nil {
				t.Errorf("checkPublicKey: %v", err)
			}
		})
	}
}

// TestParsePublicKeysMatchesSSHKeygen compares fingerprints with ssh-keygen's
// for every fixture (PEM ones converted by ssh-keygen -i -m PKCS8), and
// checks that a certificate ssh-keygen makes is refused.
func TestParsePublicKeysMatchesSSHKeygen(t *testing.T) {
	sshKeygen := testenv.LookPath(t, "ssh-keygen")
	for _, name := range ksPublicFixtures(t) {
		t.Run(name, func(t *testing.T) {
			path := keyPath(name)
			if strings.HasSuffix(name, ".pub.pem") {
				if strings.Contains(name, "ed25519") {
					t.Skip("ssh-keygen -i cannot convert Ed25519 PKIX; TestParsePublicKeysLoadsEveryFixture checks it against the private key")
				}
				out, err := exec.Command(sshKeygen, "-i", "-m", "PKCS8", "-f", path).Output()
				if err != nil {
					t.Fatalf("ssh-keygen -i: %v", err)
				}
				path = filepath.Join(t.TempDir(), "key.pub")
				if err := os.WriteFile(path, out, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			out, err := exec.Command(sshKeygen, "-l", "-E", "sha256", "-f", path).Output()
			if err != nil {
				t.Fatalf("ssh-keygen -l: %v", err)
			}
			want := strings.Fields(string(out))[1]
			keys, errs := ParsePublicKeys([]byte(ksFixture(t, name)))
			if len(errs) != 0 || len(keys) != 1 {
				t.Fatalf("got %d keys, errors %v", len(keys), errs)
			}
			if keys[0].Fingerprint != want {
				t.Fatalf("Fingerprint = %s, ssh-keygen -l says %s", keys[0].Fingerprint, want)
			}
		})
	}

	t.Run("certificate", func(t *testing.T) {
		dir := t.TempDir()
		for _, args := range [][]string{
			{"-q", "-t", "ed25519", "-N", "", "-C", "ca", "-f", filepath.Join(dir, "ca")},
			{"-q", "-t", "ed25519", "-N", "", "-C", "user-key", "-f", filepath.Join(dir, "user")},
			{"-q", "-s", filepath.Join(dir, "ca"), "-I", "id", "-n", "user", filepath.Join(dir, "user.pub")},
		} {
			if out, err := exec.Command(sshKeygen, args...).CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
			}
		}
		cert, err := os.ReadFile(filepath.Join(dir, "user-cert.pub"))
		if err != nil {
			t.Fatal(err)
		}
		user, err := os.ReadFile(filepath.Join(dir, "user.pub"))
		if err != nil {
			t.Fatal(err)
		}
		text := "# a certificate, then its key\n" + string(cert) + string(user)
		keys, errs := ParsePublicKeys([]byte(text))
		if len(keys) != 1 || keys[0].Comment != "user-key" {
			t.Errorf("keys = %v, want the plain key only", keys)
		}
		ksCheckErrors(t, text, errs, []ksWantErr{{2, ErrUnsupportedKey}})
	})
}

type ksWantErr struct {
	line int
	err  error
}

// ksBase64Run finds runs of base64 text long enough to be key material.
var ksBase64Run = regexp.MustCompile(`[A-Za-z0-9+/=]{24,}`)

// ksCheckErrors asserts that errs are LineErrors with the wanted lines and
// sentinels, and that no message carries key material from text.
func ksCheckErrors(t *testing.T, text string, errs []error, want []ksWantErr) {
	t.Helper()
	if len(errs) != len(want) {
		t.Errorf("got %d errors %v, want %d", len(errs), errs, len(want))
	}
	for i, err := range errs {
		var le *LineError
		if !errors.As(err, &le) {
			t.Errorf("error %d is %T, not *LineError: %v", i, err, err)
			continue
		}
		if i < len(want) {
			if le.Line != want[i].line || !errors.Is(err, want[i].err) {
				t.Errorf("error %d = line %d %v; want line %d, errors.Is %v", i, le.Line, err, want[i].line, want[i].err)
			}
		}
		msg := err.Error()
		if !strings.Contains(msg, fmt.Sprintf("line %d", le.Line)) {
			t.Errorf("message %q does not name line %d", msg, le.Line)
		}
		for _, run := range ksBase64Run.FindAllString(text, -1) {
			for _, piece := range []string{run[:16], run[len(run)-16:]} {
				if strings.Contains(msg, piece) {
					t.Errorf("message %q contains key material %q", msg, piece)
				}
			}
		}
	}
}

// ksSSHLine returns the authorized_keys line of pub with comment.
func ksSSHLine(t testing.TB, pub any, comment string) string {
	t.Helper()
	var sshPub ssh.PublicKey
	switch k := pub.(type) {
	case ssh.PublicKey:
		sshPub = k
	default:
		var err error
		if sshPub, err = ssh.NewPublicKey(pub); err != nil {
			t.Fatal(err)
		}
	}
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(sshPub)), "\n") + " " + comment
}

// ksWireLine builds an authorized_keys line from a raw SSH wire blob.
func ksWireLine(typ string, blob []byte, comment string) string {
	return typ + " " + base64.StdEncoding.EncodeToString(blob) + " " + comment
}

func ksPEM(typ string, der []byte) string {
	return strings.TrimSuffix(string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})), "\n")
}

func ksPKIX(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestParsePublicKeysK4 is SECURITY.md row K4 (and the public-key half of
// K3): good lines load, every other line is skipped and reported.
func TestParsePublicKeysK4(t *testing.T) {
	ed := ksFixture(t, "openssh_ed25519.pub.ssh")
	p256 := ksFixture(t, "openssh_p256.pub.ssh")
	rsa2048 := ksFixture(t, "openssh_rsa2048.pub.ssh")
	pkix := ksFixture(t, "pkcs8_p521.pub.pem")
	fpEd := ksFingerprint(t, "openssh_ed25519.pub.ssh")
	fpP256 := ksFingerprint(t, "openssh_p256.pub.ssh")
	fpRSA := ksFingerprint(t, "openssh_rsa2048.pub.ssh")
	fpP521 := ksFingerprint(t, "pkcs8_p521.pub.pem")
	fpPKCS1 := ksFingerprint(t, "pkcs1_rsa2048.pub.pem")

	pkcs1Pub := readPublicKey(t, "pkcs1_rsa2048.pub.pem").(*rsa.PublicKey)
	pkcs1 := ksPEM("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(pkcs1Pub))

	// RSA 1024 from the fixture made by openssl.
	block, _ := pem.Decode([]byte(ksFixture(t, "bad_rsa1024.pem")))
	rsa1024Priv, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024 := &rsa1024Priv.PublicKey

	// A certificate, made here as ssh-keygen -s would.
	_, caPriv, _ := ed25519.GenerateKey(rand.Reader)
	caSigner, err := ssh.NewSignerFromKey(caPriv)
	if err != nil {
		t.Fatal(err)
	}
	certKey, err := ssh.NewPublicKey(readPublicKey(t, "openssh_p256.pub.ssh"))
	if err != nil {
		t.Fatal(err)
	}
	cert := &ssh.Certificate{Key: certKey, CertType: ssh.UserCert, KeyId: "id", ValidPrincipals: []string{"user"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, caSigner); err != nil {
		t.Fatal(err)
	}
	certLine := ksSSHLine(t, cert, "cert-comment")

	// Security keys: the wire formats of PROTOCOL.u2f.
	edPub := readPublicKey(t, "openssh_ed25519.pub.ssh").(ed25519.PublicKey)
	skEd := ksWireLine("sk-ssh-ed25519@openssh.com", ssh.Marshal(struct {
		Name, Key, Application string
	}{"sk-ssh-ed25519@openssh.com", string(edPub), "ssh:"}), "yubikey")
	p256Pub := readPublicKey(t, "openssh_p256.pub.ssh").(*ecdsa.PublicKey)
	p256ECDH, err := p256Pub.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	skECDSA := ksWireLine("sk-ecdsa-sha2-nistp256@openssh.com", ssh.Marshal(struct {
		Name, Curve, Key, Application string
	}{"sk-ecdsa-sha2-nistp256@openssh.com", "nistp256", string(p256ECDH.Bytes()), "ssh:"}), "sk-ecdsa")

	// DSA: OpenSSH no longer makes such keys, so the blob is built here.
	dss := ksWireLine("ssh-dss", ssh.Marshal(struct {
		Name       string
		P, Q, G, Y *big.Int
	}{"ssh-dss", new(big.Int).SetBit(big.NewInt(1), 1023, 1), new(big.Int).SetBit(big.NewInt(1), 159, 1), big.NewInt(4), big.NewInt(8)}), "old-dsa")

	// Unsupported curves in PKIX: P-224, secp256k1 (which x509 cannot
	// parse) and X25519.
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	k1DER, err := asn1.Marshal(struct {
		Algorithm struct{ Algorithm, Curve asn1.ObjectIdentifier }
		PublicKey asn1.BitString
	}{
		Algorithm: struct{ Algorithm, Curve asn1.ObjectIdentifier }{asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}, asn1.ObjectIdentifier{1, 3, 132, 0, 10}},
		PublicKey: asn1.BitString{Bytes: append([]byte{4}, bytes.Repeat([]byte{7}, 64)...), BitLength: 65 * 8},
	})
	if err != nil {
		t.Fatal(err)
	}
	x25519, _ := ecdh.X25519().GenerateKey(rand.Reader)

	edBlob := strings.Fields(ed)[1]
	trailingDER := append(ksPKIX(t, readPublicKey(t, "pkcs8_p521.pub.pem")), 0, 0)
	pemLines := strings.Split(pkix, "\n")

	tests := []struct {
		name string
		text string
		fps  []string
		errs []ksWantErr
	}{
		{"empty", "", nil, nil},
		{"only comments and blanks", "# keys\n\n   \n\t\n#ssh-ed25519 AAAA\n", nil, nil},
		{"comments and blank lines", "# alice\n\n" + ed + "\n   # indented comment\n\n" + p256 + "\n", []string{fpEd, fpP256}, nil},
		{"CRLF", ed + "\r\n\r\n" + p256 + "\r\n" + pkix + "\r\n", []string{fpEd, fpP256, fpP521}, nil},
		{"CRLF without final newline", "# c\r\n" + ed, []string{fpEd}, nil},
		{"leading and inner whitespace", "   " + strings.Replace(ed, " ", "\t", 1) + "  \n", []string{fpEd}, nil},
		{"options before the type", `from="10.0.0.1",no-pty ` + ed + "\n" +
			`command="echo hello world",restrict ` + p256 + "\n" +
			`no-agent-forwarding,environment="A=b c" ` + rsa2048, []string{fpEd, fpRSA}, []ksWantErr{{2, ErrKeyOption}}},
		{"no comment", strings.Join(strings.Fields(ed)[:2], " "), []string{fpEd}, nil},
		{"duplicate key loads once", ed + "\n" + ed + " again\n", []string{fpEd}, nil},
		{"certificate", ed + "\n" + certLine + "\n" + p256, []string{fpEd, fpP256}, []ksWantErr{{2, ErrUnsupportedKey}}},
		{"certificate with options", `cert-authority,principals="x" ` + certLine, nil, []ksWantErr{{1, ErrUnsupportedKey}}},
		{"sk-ssh-ed25519", skEd + "\n" + p256, []string{fpP256}, []ksWantErr{{1, ErrUnsupportedKey}}},
		{"sk-ecdsa", p256 + "\n\n" + skECDSA, []string{fpP256}, []ksWantErr{{3, ErrUnsupportedKey}}},
		{"DSA", dss + "\n" + ed, []string{fpEd}, []ksWantErr{{1, ErrUnsupportedKey}}},
		{"corrupt base64 among good lines", ed + "\nssh-ed25519 AAAA!!!not*base64 broken\n" + p256, []string{fpEd, fpP256}, []ksWantErr{{2, ErrKeyFormat}}},
		{"truncated blob", "ssh-ed25519 " + edBlob[:len(edBlob)-8] + " cut\n" + p256, []string{fpP256}, []ksWantErr{{1, ErrKeyFormat}}},
		{"type does not match blob", "ssh-rsa " + edBlob + " liar\n" + p256, []string{fpP256}, []ksWantErr{{1, ErrKeyFormat}}},
		{"option word where the type goes", "restrict " + edBlob + "\n" + p256, []string{fpP256}, []ksWantErr{{1, ErrKeyFormat}}},
		{"unknown key type", "ssh-foo " + edBlob + " x\n" + ed, []string{fpEd}, []ksWantErr{{1, ErrKeyFormat}}},
		{"lone words", "garbage\nnot a key at all\n" + ed, []string{fpEd}, []ksWantErr{{1, ErrKeyFormat}, {2, ErrKeyFormat}}},
		{"unmatched quote in options", `from="10.0.0.1 ` + ed, nil, []ksWantErr{{1, ErrKeyFormat}}},
		{"RSA 1024 authorized_keys", ksSSHLine(t, rsa1024, "weak") + "\n" + ed, []string{fpEd}, []ksWantErr{{1, ErrWeakKey}}},
		{"RSA 1024 PKIX", ksPEM("PUBLIC KEY", ksPKIX(t, rsa1024)) + "\n" + ed, []string{fpEd}, []ksWantErr{{1, ErrWeakKey}}},
		{"RSA 1024 PKCS#1", ed + "\n" + ksPEM("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(rsa1024)), []string{fpEd}, []ksWantErr{{2, ErrWeakKey}}},
		{"PEM PKCS#1 RSA PUBLIC KEY", pkcs1 + "\n", []string{fpPKCS1}, nil},
		{"PEM P-224", ksPEM("PUBLIC KEY", ksPKIX(t, &p224.PublicKey)), nil, []ksWantErr{{1, ErrUnsupportedKey}}},
		{"PEM secp256k1", ksPEM("PUBLIC KEY", k1DER), nil, []ksWantErr{{1, ErrUnsupportedKey}}},
		{"PEM X25519", ksPEM("PUBLIC KEY", ksPKIX(t, x25519.PublicKey())) + "\n" + ed, []string{fpEd}, []ksWantErr{{1, ErrUnsupportedKey}}},
		{"PEM with a garbage line after it", pkix + "\ntrailing garbage\n" + ed, []string{fpP521, fpEd}, []ksWantErr{{len(pemLines) + 1, ErrKeyFormat}}},
		{"PEM with garbage after the DER", "# x\n" + ksPEM("PUBLIC KEY", trailingDER) + "\n" + ed, []string{fpEd}, []ksWantErr{{2, ErrKeyFormat}}},
		{"PEM with garbage on the END line", strings.Join(pemLines[:len(pemLines)-1], "\n") + "\n-----END PUBLIC KEY-----junk\n" + ed, []string{fpEd}, []ksWantErr{{1, ErrKeyFormat}}},
		{"PEM with a corrupt body", strings.Replace(pkix, pemLines[1], "!!"+pemLines[1][2:], 1) + "\n" + ed, []string{fpEd}, []ksWantErr{{1, ErrKeyFormat}}},
		{"PEM with END of another type", strings.Replace(pkix, "-----END PUBLIC KEY-----", "-----END RSA PUBLIC KEY-----", 1) + "\n" + ed, []string{fpEd}, []ksWantErr{{1, ErrKeyFormat}}},
		{"PEM without END", "-----BEGIN PUBLIC KEY-----\n" + ed, []string{fpEd}, []ksWantErr{{1, ErrKeyFormat}}},
		{"PEM private key pasted", ksFixture(t, "pkcs8_ed25519.pem") + "\n" + p256, []string{fpP256}, []ksWantErr{{1, ErrKeyFormat}}},
		{"PEM certificate", ksPEM("CERTIFICATE", []byte("not really")) + "\n" + ed, []string{fpEd}, []ksWantErr{{1, ErrUnsupportedKey}}},
		{"mixed file", strings.Join([]string{
			"# alice's keys", // 1
			pkix,             // 2..
			"",
			`from="10.0.0.0/8" ` + ed,
			"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI!!!! broken",
			certLine,
			pkcs1,
			skEd,
			ksSSHLine(t, rsa1024, "weak"),
			p256 + "\r",
		}, "\n") + "\n", []string{fpP521, fpEd, fpPKCS1, fpP256}, []ksWantErr{
			{len(pemLines) + 4, ErrKeyFormat},
			{len(pemLines) + 5, ErrUnsupportedKey},
			{len(pemLines) + 6 + len(strings.Split(pkcs1, "\n")), ErrUnsupportedKey},
			{len(pemLines) + 7 + len(strings.Split(pkcs1, "\n")), ErrWeakKey},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, errs := ParsePublicKeys([]byte(tt.text))
			var fps []string
			for _, k := range keys {
				fps = append(fps, k.Fingerprint)
				if err := checkPublicKey(k.Key); err != nil {
					t.Errorf("returned key fails checkPublicKey: %v", err)
				}
			}
			if strings.Join(fps, " ") != strings.Join(tt.fps, " ") {
				t.Errorf("fingerprints = %v, want %v", fps, tt.fps)
			}
			ksCheckErrors(t, tt.text, errs, tt.errs)
		})
	}
}

func TestParsePublicKeysComments(t *testing.T) {
	ed := ksFixture(t, "openssh_ed25519.pub.ssh")
	fields := strings.Fields(ed)
	keys, errs := ParsePublicKeys([]byte(`restrict ` + fields[0] + " " + fields[1] + "  alice@laptop  (work)\r\n" + ksFixture(t, "sec1_p256.pub.pem")))
	if len(errs) != 0 || len(keys) != 2 {
		t.Fatalf("keys %v errors %v", keys, errs)
	}
	if keys[0].Comment != "alice@laptop  (work)" || keys[1].Comment != "" {
		t.Errorf("comments = %q, %q", keys[0].Comment, keys[1].Comment)
	}
}

func FuzzParsePublicKeys(f *testing.F) {
	for _, pattern := range []string{"*.pub.ssh", "*.pub.pem", "bad_*"} {
		m, _ := filepath.Glob(keyPath(pattern))
		for _, p := range m {
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	ed, _ := os.ReadFile(keyPath("openssh_ed25519.pub.ssh"))
	pkix, _ := os.ReadFile(keyPath("pkcs8_p256.pub.pem"))
	for _, s := range []string{
		"", "\n", "\r\n", "#", "# only a comment\n", " ", "ssh-ed25519", "ssh-ed25519 ", "ssh-ed25519 AAAA",
		`from="x ssh-ed25519 AAAA`, `"""" ssh-ed25519 AAAA`, "-----BEGIN ", "-----BEGIN PUBLIC KEY-----",
		"-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n", "-----END PUBLIC KEY-----\n",
		"-----BEGIN RSA PUBLIC KEY-----\nMAA=\n-----END RSA PUBLIC KEY-----",
		"sk-ssh-ed25519@openssh.com AAAA", "ssh-rsa-cert-v01@openssh.com AAAA", "\x00\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Add(append(append([]byte(`no-pty,from="a b" `), ed...), pkix...))
	f.Add(bytes.ReplaceAll(append(ed, pkix...), []byte("\n"), []byte("\r\n")))
	f.Add(append(pkix[:len(pkix)/2], ed...))

	f.Fuzz(func(t *testing.T, data []byte) {
		keys, errs := ParsePublicKeys(data)
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, k := range keys {
			if err := checkPublicKey(k.Key); err != nil {
				t.Fatalf("returned a key that fails checkPublicKey: %v", err)
			}
			if fp, err := Fingerprint(k.Key); err != nil || fp != k.Fingerprint {
				t.Fatalf("Fingerprint %q, want %q (%v)", k.Fingerprint, fp, err)
			}
		}
		for _, err := range errs {
			var le *LineError
			if !errors.As(err, &le) || le.Line < 1 || le.Line > lines {
				t.Fatalf("bad report %v", err)
			}
			if !errors.Is(err, ErrKeyFormat) && !errors.Is(err, ErrUnsupportedKey) && !errors.Is(err, ErrWeakKey) && !errors.Is(err, ErrKeyOption) {
				t.Fatalf("report without a sentinel: %v", err)
			}
		}
	})
}

// ksKeys returns public keys for store tests.
func ksKeys(t testing.TB) (ed, p256, rsaKey crypto.PublicKey) {
	t.Helper()
	return readPublicKey(t, "openssh_ed25519.pub.ssh"), readPublicKey(t, "openssh_p256.pub.ssh"), readPublicKey(t, "openssh_rsa2048.pub.ssh")
}

func ksFingerprints(keys []PublicKey) string {
	var fps []string
	for _, k := range keys {
		fps = append(fps, k.Fingerprint)
	}
	return strings.Join(fps, " ")
}

func TestMemoryKeyStore(t *testing.T) {
	ctx := context.Background()
	ed, p256, rsaKey := ksKeys(t)
	fpEd, _ := Fingerprint(ed)
	fpP256, _ := Fingerprint(p256)
	fpRSA, _ := Fingerprint(rsaKey)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)

	s := NewMemoryKeyStore()
	if keys, err := s.PublicKeys(ctx, "nobody"); keys != nil || err != nil {
		t.Fatalf("unknown user: %v, %v", keys, err)
	}
	if err := s.Add("alice", ed, p256); err != nil {
		t.Fatal(err)
	}
	if err := s.Add("alice", ed); err != nil { // already there: not added twice
		t.Fatal(err)
	}
	keys, _ := s.PublicKeys(ctx, "alice")
	if got := ksFingerprints(keys); got != fpEd+" "+fpP256 {
		t.Fatalf("alice = %s", got)
	}

	for _, tt := range []struct {
		name     string
		username string
		keys     []crypto.PublicKey
		want     error
	}{
		{"empty username", "", []crypto.PublicKey{ed}, ErrInvalidUsername},
		{"control character", "a\x00b", []crypto.PublicKey{ed}, ErrInvalidUsername},
		{"newline", "a\nb", []crypto.PublicKey{ed}, ErrInvalidUsername},
		{"too long", strings.Repeat("a", 257), []crypto.PublicKey{ed}, ErrInvalidUsername},
		{"weak RSA beside a good key", "alice", []crypto.PublicKey{rsaKey, &weak.PublicKey}, ErrWeakKey},
		{"unsupported", "alice", []crypto.PublicKey{"not a key"}, ErrUnsupportedKey},
		{"nil", "alice", []crypto.PublicKey{nil}, ErrUnsupportedKey},
		{"P-224", "alice", []crypto.PublicKey{func() any { k, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader); return &k.PublicKey }()}, ErrUnsupportedKey},
	} {
		t.Run("Add/"+tt.name, func(t *testing.T) {
			if err := s.Add(tt.username, tt.keys...); !errors.Is(err, tt.want) {
				t.Fatalf("Add = %v, want %v", err, tt.want)
			}
			keys, _ := s.PublicKeys(ctx, "alice")
			if got := ksFingerprints(keys); got != fpEd+" "+fpP256 {
				t.Fatalf("a failed Add changed alice: %s", got)
			}
		})
	}

	t.Run("AddPublicKeys", func(t *testing.T) {
		if err := s.AddPublicKeys("bob", PublicKey{Key: rsaKey, Comment: "bob@host"}); err != nil {
			t.Fatal(err)
		}
		keys, _ := s.PublicKeys(ctx, "bob")
		if len(keys) != 1 || keys[0].Fingerprint != fpRSA || keys[0].Comment != "bob@host" {
			t.Fatalf("bob = %+v", keys)
		}
		if err := s.AddPublicKeys("bob", PublicKey{Key: ed, Fingerprint: fpRSA}); !errors.Is(err, ErrKeyFormat) {
			t.Fatalf("mismatched fingerprint: %v", err)
		}
		if err := s.AddPublicKeys("bob", PublicKey{Key: ed, Fingerprint: fpEd}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("copies", func(t *testing.T) {
		keys, _ := s.PublicKeys(ctx, "alice")
		keys[0] = PublicKey{Fingerprint: "changed"}
		_ = append(keys[:1], PublicKey{Fingerprint: "appended"})
		again, _ := s.PublicKeys(ctx, "alice")
		if got := ksFingerprints(again); got != fpEd+" "+fpP256 {
			t.Fatalf("caller's changes reached the store: %s", got)
		}
		in := []PublicKey{{Key: rsaKey}}
		if err := s.Set("carol", in); err != nil {
			t.Fatal(err)
		}
		in[0] = PublicKey{Key: ed}
		if keys, _ := s.PublicKeys(ctx, "carol"); ksFingerprints(keys) != fpRSA {
			t.Fatalf("Set kept the caller's slice: %s", ksFingerprints(keys))
		}
	})

	t.Run("Set", func(t *testing.T) {
		if err := s.Set("alice", []PublicKey{{Key: rsaKey}, {Key: rsaKey}}); err != nil {
			t.Fatal(err)
		}
		if keys, _ := s.PublicKeys(ctx, "alice"); ksFingerprints(keys) != fpRSA {
			t.Fatalf("after Set: %s", ksFingerprints(keys))
		}
		if err := s.Set("alice", []PublicKey{{Key: ed}, {Key: &weak.PublicKey}}); !errors.Is(err, ErrWeakKey) {
			t.Fatalf("Set weak = %v", err)
		}
		if err := s.Set("", []PublicKey{{Key: ed}}); !errors.Is(err, ErrInvalidUsername) {
			t.Fatalf("Set empty username = %v", err)
		}
		if keys, _ := s.PublicKeys(ctx, "alice"); ksFingerprints(keys) != fpRSA {
			t.Fatalf("a failed Set changed alice: %s", ksFingerprints(keys))
		}
		if err := s.Set("alice", nil); err != nil {
			t.Fatal(err)
		}
		if keys, err := s.PublicKeys(ctx, "alice"); keys != nil || err != nil {
			t.Fatalf("Set(nil) left %v, %v", keys, err)
		}
	})

	t.Run("Remove", func(t *testing.T) {
		s.Remove("bob")
		s.Remove("never-there")
		if keys, err := s.PublicKeys(ctx, "bob"); keys != nil || err != nil {
			t.Fatalf("after Remove: %v, %v", keys, err)
		}
	})
}

func TestMemoryKeyStoreConcurrent(t *testing.T) {
	ctx := context.Background()
	ed, p256, rsaKey := ksKeys(t)
	s := NewMemoryKeyStore()
	var wg sync.WaitGroup
	for g := range 8 {
		user := fmt.Sprintf("user%d", g%3)
		wg.Go(func() {
			for i := range 200 {
				switch i % 4 {
				case 0:
					_ = s.Add(user, ed, p256)
				case 1:
					_ = s.Set(user, []PublicKey{{Key: rsaKey}})
				case 2:
					s.Remove(user)
				case 3:
					_ = s.AddPublicKeys(user, PublicKey{Key: p256})
				}
			}
		})
		wg.Go(func() {
			for range 400 {
				keys, err := s.PublicKeys(ctx, user)
				if err != nil {
					t.Error(err)
					return
				}
				for i := range keys { // reading and writing the copy must not race
					keys[i].Comment = "mine"
				}
			}
		})
	}
	wg.Wait()
}

// ksDir makes root/keys with files for DirKeyStore tests and files outside
// it that an escaping username would reach.
func ksDir(t *testing.T) (root, dir string) {
	t.Helper()
	root = t.TempDir()
	dir = filepath.Join(root, "keys")
	ed := ksFixture(t, "openssh_ed25519.pub.ssh")
	for name, content := range map[string]string{
		"x.pub":                   ed, // root/x.pub: what "../x" would read
		"keys/alice.pub":          "# alice\n" + ed + "\nssh-ed25519 AAAAbroken!!\n",
		"keys/.hidden.pub":        ed,
		"keys/.pub":               ed, // what "" would read
		"keys/a/b.pub":            ed,
		`keys/a\b.pub`:            ed, // a literal backslash on Unix
		"keys/..pub":              ed,
		"keys/evil:stream.pub":    ed,
		"keys/carol.pub/keep.txt": "", // carol.pub is a directory
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root, dir
}

func TestDirKeyStore(t *testing.T) {
	ctx := context.Background()
	_, dir := ksDir(t)
	var logBuf bytes.Buffer
	s, err := NewDirKeyStore(dir, WithLogger(slog.New(slog.NewTextHandler(&logBuf, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if s.Dir() != dir {
		t.Errorf("Dir = %s", s.Dir())
	}
	fpEd := ksFingerprint(t, "openssh_ed25519.pub.ssh")

	t.Run("lookup", func(t *testing.T) {
		for range 3 {
			keys, err := s.PublicKeys(ctx, "alice")
			if err != nil || ksFingerprints(keys) != fpEd {
				t.Fatalf("alice = %v, %v", keys, err)
			}
		}
		log := logBuf.String()
		if strings.Count(log, "skipped key line") != 1 {
			t.Errorf("want the bad line logged once (file parsed once), log:\n%s", log)
		}
		if !strings.Contains(log, "alice.pub") || !strings.Contains(log, "line=3") || strings.Contains(log, "AAAAbroken") {
			t.Errorf("log should name file and line and no key bytes:\n%s", log)
		}
	})

	t.Run("unknown user", func(t *testing.T) {
		if keys, err := s.PublicKeys(ctx, "nobody"); keys != nil || err != nil {
			t.Fatalf("= %v, %v", keys, err)
		}
	})

	t.Run("usernames that could escape", func(t *testing.T) {
		for _, name := range []string{
			"../x", "..", ".", "", ".hidden", ".", "a/b", `a\b`, "x\x00y", "/etc/passwd", "evil:stream",
			"keys/../x", "a/../alice", strings.Repeat("a", 252), "\x7f", "alice\n",
		} {
			keys, err := s.PublicKeys(ctx, name)
			if keys != nil || err != nil {
				t.Errorf("PublicKeys(%q) = %v, %v; want no keys and no error", name, keys, err)
			}
		}
		// The longest name that fits still works as a plain unknown user.
		if keys, err := s.PublicKeys(ctx, strings.Repeat("a", 251)); keys != nil || err != nil {
			t.Errorf("251-byte username = %v, %v", keys, err)
		}
	})

	t.Run("reload on change", func(t *testing.T) {
		path := filepath.Join(dir, "dave.pub")
		write := func(content string, mtime time.Time) {
			t.Helper()
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(path, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
		check := func(want string) {
			t.Helper()
			keys, err := s.PublicKeys(ctx, "dave")
			if err != nil || ksFingerprints(keys) != want {
				t.Fatalf("dave = %s, %v; want %s", ksFingerprints(keys), err, want)
			}
		}
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		write(ksFixture(t, "openssh_ed25519.pub.ssh"), t0)
		check(fpEd)
		fpP256 := ksFingerprint(t, "openssh_p256.pub.ssh")
		write(ksFixture(t, "openssh_p256.pub.ssh"), t0.Add(time.Second))
		check(fpP256)
		// Same size and mtime, but a new file put in place by rename.
		other := ksFixture(t, "openssh_p256.pub.ssh")
		otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		otherLine := ksSSHLine(t, &otherKey.PublicKey, strings.Fields(other)[2])
		if len(otherLine) != len(other) {
			t.Fatalf("test setup: lines differ in length")
		}
		tmp := filepath.Join(dir, "dave.tmp")
		if err := os.WriteFile(tmp, []byte(otherLine), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(tmp, t0.Add(time.Second), t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		fpOther, _ := Fingerprint(&otherKey.PublicKey)
		check(fpOther)
		// Deleted: no keys, no error.
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		check("")
		write(ksFixture(t, "openssh_ed25519.pub.ssh"), t0)
		check(fpEd)
	})

	t.Run("read error", func(t *testing.T) {
		keys, err := s.PublicKeys(ctx, "carol") // carol.pub is a directory
		if keys != nil || !errors.Is(err, ErrNotKeyFile) {
			t.Fatalf("= %v, %v; want ErrNotKeyFile", keys, err)
		}
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Path != filepath.Join(dir, "carol.pub") {
			t.Fatalf("error %v does not name the path", err)
		}
	})

	t.Run("unreadable file", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("running as root: chmod 000 does not stop reads (the directory case above covers read errors)")
		}
		path := filepath.Join(dir, "erin.pub")
		if err := os.WriteFile(path, []byte(ksFixture(t, "openssh_ed25519.pub.ssh")), 0o000); err != nil {
			t.Fatal(err)
		}
		if keys, err := s.PublicKeys(ctx, "erin"); keys != nil || !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("= %v, %v; want a permission error", keys, err)
		}
	})

	t.Run("too large", func(t *testing.T) {
		path := filepath.Join(dir, "frank.pub")
		if err := os.WriteFile(path, bytes.Repeat([]byte("#\n"), maxKeyFileSize), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PublicKeys(ctx, "frank"); !errors.Is(err, ErrKeyFormat) {
			t.Fatalf("= %v; want ErrKeyFormat", err)
		}
	})

	t.Run("canceled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.PublicKeys(cctx, "alice"); !errors.Is(err, context.Canceled) {
			t.Fatalf("= %v", err)
		}
	})

	t.Run("returns a copy", func(t *testing.T) {
		keys, _ := s.PublicKeys(ctx, "alice")
		keys[0].Fingerprint = "changed"
		again, _ := s.PublicKeys(ctx, "alice")
		if again[0].Fingerprint != fpEd {
			t.Fatal("caller's change reached the cache")
		}
	})
}

func TestNewDirKeyStoreErrors(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, dir string
		also      error
	}{
		{"missing", filepath.Join(root, "missing"), fs.ErrNotExist},
		{"a file", file, nil},
		{"empty path", "", fs.ErrNotExist},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewDirKeyStore(tt.dir)
			if s != nil || !errors.Is(err, ErrNotKeyDir) || (tt.also != nil && !errors.Is(err, tt.also)) {
				t.Fatalf("= %v, %v", s, err)
			}
		})
	}
}

func TestDirKeyStoreConcurrent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	lines := []string{ksFixture(t, "openssh_ed25519.pub.ssh"), ksFixture(t, "openssh_p256.pub.ssh")}
	path := filepath.Join(dir, "alice.pub")
	if err := os.WriteFile(path, []byte(lines[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewDirKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 50 {
			tmp := filepath.Join(dir, fmt.Sprintf("tmp%d", i))
			if err := os.WriteFile(tmp, []byte(lines[i%2]), 0o644); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(tmp, path); err != nil { // atomic: readers see one file or the other
				t.Error(err)
				return
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			for range 200 {
				keys, err := s.PublicKeys(ctx, "alice")
				if err != nil || len(keys) != 1 {
					t.Errorf("= %v, %v", keys, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestDirKeyStoreRecheckInterval: with WithRecheckInterval a user's file is
// looked at again only once the interval has passed on the store's clock;
// in between no system call is made and a change is not seen. A new user's
// file is seen at once, and an error is never remembered.
func TestDirKeyStoreRecheckInterval(t *testing.T) {
	ctx := context.Background()
	_, dir := ksDir(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := NewDirKeyStore(dir, WithRecheckInterval(time.Second), WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	opens := 0
	open := s.openDir
	s.openDir = func(dir string) (fs.FS, io.Closer, error) { opens++; return open(dir) }
	path := filepath.Join(dir, "dave.pub")
	write := func(fixture string) {
		t.Helper()
		if err := os.WriteFile(path+".tmp", []byte(ksFixture(t, fixture)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil { // a new inode
			t.Fatal(err)
		}
	}
	check := func(want string, wantOpens int) {
		t.Helper()
		keys, err := s.PublicKeys(ctx, "dave")
		if err != nil || ksFingerprints(keys) != want || opens != wantOpens {
			t.Fatalf("dave = %s, %v after %d directory opens; want %s after %d", ksFingerprints(keys), err, opens, want, wantOpens)
		}
	}
	fpEd, fpP256 := ksFingerprint(t, "openssh_ed25519.pub.ssh"), ksFingerprint(t, "openssh_p256.pub.ssh")

	check("", 1) // no file yet: not remembered
	write("openssh_ed25519.pub.ssh")
	check(fpEd, 2) // a new file is seen at once
	check(fpEd, 2)
	write("openssh_p256.pub.ssh")
	now = now.Add(999 * time.Millisecond)
	check(fpEd, 2) // within the interval: the old keys, no system call
	now = now.Add(time.Millisecond)
	check(fpP256, 3)
	now = now.Add(time.Second)
	check(fpP256, 4) // unchanged: checked again, then trusted for another second
	check(fpP256, 4)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	check("", 5)
	check("", 6) // an unknown user is looked up every time
	// A clock that goes back does not extend the trust.
	write("openssh_ed25519.pub.ssh")
	check(fpEd, 7)
	now = now.Add(-time.Hour)
	write("openssh_p256.pub.ssh")
	check(fpP256, 8)

	if _, err := NewDirKeyStore(dir, WithRecheckInterval(-time.Second)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("negative interval: %v", err)
	}
	if _, err := NewDirKeyStore(dir, WithClock(nil)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("nil clock: %v", err)
	}
}
