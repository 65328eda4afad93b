package asymjwt

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asymjwt/asymjwt/internal/testenv"
	"golang.org/x/crypto/ssh"
)

// testPassphrase is the passphrase of the encrypted fixtures (testdata/README.md).
const testPassphrase = "asymjwt-test-passphrase"

// fixture is a private key file in testdata/keys and what it should give.
type fixture struct {
	file    string
	pub     string // public half (".pub.ssh" authorized_keys line or ".pub.pem")
	alg     Algorithm
	encrypt bool
}

var goodFixtures = []fixture{
	{"openssh_ed25519", "openssh_ed25519.pub.ssh", EdDSA, false},
	{"openssh_p256", "openssh_p256.pub.ssh", ES256, false},
	{"openssh_p384", "openssh_p384.pub.ssh", ES384, false},
	{"openssh_p521", "openssh_p521.pub.ssh", ES512, false},
	{"openssh_rsa2048", "openssh_rsa2048.pub.ssh", RS512, false},
	{"openssh_ed25519_enc", "openssh_ed25519_enc.pub.ssh", EdDSA, true},
	{"openssh_rsa_enc", "openssh_rsa_enc.pub.ssh", RS512, true},
	{"pkcs1_rsa2048.pem", "pkcs1_rsa2048.pub.pem", RS512, false},
	{"sec1_p256.pem", "sec1_p256.pub.pem", ES256, false},
	{"sec1_p384.pem", "sec1_p384.pub.pem", ES384, false},
	{"sec1_p521.pem", "sec1_p521.pub.pem", ES512, false},
	{"pkcs8_rsa3072.pem", "pkcs8_rsa3072.pub.pem", RS512, false},
	{"pkcs8_p256.pem", "pkcs8_p256.pub.pem", ES256, false},
	{"pkcs8_p521.pem", "pkcs8_p521.pub.pem", ES512, false},
	{"pkcs8_ed25519.pem", "pkcs8_ed25519.pub.pem", EdDSA, false},
	{"pkcs8enc_ed25519_aes256.pem", "", EdDSA, true},
	{"pkcs8enc_rsa_aes128_sha1.pem", "pkcs1_rsa2048.pub.pem", RS512, true},
	{"pkcs8enc_p384_sha512.pem", "sec1_p384.pub.pem", ES384, true},
	{"pkcs8enc_p256_scrypt.pem", "pkcs8_p256.pub.pem", ES256, true},
	{"legacy_rsa_aes256.pem", "pkcs1_rsa2048.pub.pem", RS512, true},
	{"legacy_rsa_des3.pem", "pkcs1_rsa2048.pub.pem", RS512, true},
	{"legacy_p256_aes128.pem", "sec1_p256.pub.pem", ES256, true},
}

func keyPath(name string) string { return filepath.Join("testdata", "keys", name) }

// readPublicKey reads a fixture's public half: an authorized_keys line or a
// PKIX PEM block.
func readPublicKey(t testing.TB, name string) crypto.PublicKey {
	t.Helper()
	data, err := os.ReadFile(keyPath(name))
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(data); block != nil {
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return pub
	}
	sshPub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return sshPub.(ssh.CryptoPublicKey).CryptoPublicKey()
}

func TestKeyFromFileLoadsEveryFixture(t *testing.T) {
	for _, f := range goodFixtures {
		t.Run(f.file, func(t *testing.T) {
			var opts []KeyOption
			if f.encrypt {
				opts = append(opts, WithPassphrase([]byte(testPassphrase)))
			}
			key, err := KeyFromFile(keyPath(f.file), opts...)
			if err != nil {
				t.Fatalf("KeyFromFile: %v", err)
			}
			pub := key.Public()
			if f.pub != "" {
				want := readPublicKey(t, f.pub)
				if !want.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
					t.Fatalf("public key does not match %s", f.pub)
				}
			}
			s, err := NewSigner("alice", key, WithoutBinding())
			if err != nil {
				t.Fatal(err)
			}
			if s.Algorithm() != f.alg {
				t.Fatalf("algorithm %s, want %s", s.Algorithm(), f.alg)
			}
			tok, err := s.Sign(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			claims := verifyWithGolangJWT(t, tok, pub, f.alg)
			if claims["username"] != "alice" {
				t.Fatalf("username claim %v", claims["username"])
			}
		})
	}
}

func TestKeyIDIsSSHKeygenFingerprint(t *testing.T) {
	sshKeygen := testenv.LookPath(t, "ssh-keygen")
	for _, f := range goodFixtures {
		if !strings.HasSuffix(f.pub, ".pub.ssh") {
			continue
		}
		t.Run(f.file, func(t *testing.T) {
			out, err := exec.Command(sshKeygen, "-l", "-E", "sha256", "-f", keyPath(f.pub)).Output()
			if err != nil {
				t.Fatalf("ssh-keygen -l: %v", err)
			}
			want := strings.Fields(string(out))[1]
			got, err := Fingerprint(readPublicKey(t, f.pub))
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("Fingerprint = %s, ssh-keygen says %s", got, want)
			}
		})
	}
}

func TestKeyFromFileErrors(t *testing.T) {
	pass := WithPassphrase([]byte(testPassphrase))
	wrong := WithPassphrase([]byte("not-the-passphrase"))
	failing := WithPassphraseFunc(func() ([]byte, error) { return nil, io.ErrUnexpectedEOF })
	empty := WithPassphraseFunc(func() ([]byte, error) { return nil, nil })
	tests := []struct {
		name string
		path string
		opts []KeyOption
		want error
	}{
		{"openssh no passphrase", keyPath("openssh_ed25519_enc"), nil, ErrPassphraseRequired},
		{"openssh empty passphrase", keyPath("openssh_rsa_enc"), []KeyOption{empty}, ErrPassphraseRequired},
		{"pkcs8 no passphrase", keyPath("pkcs8enc_ed25519_aes256.pem"), nil, ErrPassphraseRequired},
		{"scrypt no passphrase", keyPath("pkcs8enc_p256_scrypt.pem"), nil, ErrPassphraseRequired},
		{"legacy no passphrase", keyPath("legacy_rsa_aes256.pem"), nil, ErrPassphraseRequired},
		{"openssh wrong passphrase", keyPath("openssh_ed25519_enc"), []KeyOption{wrong}, ErrIncorrectPassphrase},
		{"openssh rsa wrong passphrase", keyPath("openssh_rsa_enc"), []KeyOption{wrong}, ErrIncorrectPassphrase},
		{"pkcs8 wrong passphrase", keyPath("pkcs8enc_ed25519_aes256.pem"), []KeyOption{wrong}, ErrIncorrectPassphrase},
		{"pkcs8 sha1 wrong passphrase", keyPath("pkcs8enc_rsa_aes128_sha1.pem"), []KeyOption{wrong}, ErrIncorrectPassphrase},
		{"scrypt wrong passphrase", keyPath("pkcs8enc_p256_scrypt.pem"), []KeyOption{wrong}, ErrIncorrectPassphrase},
		{"legacy aes wrong passphrase", keyPath("legacy_rsa_aes256.pem"), []KeyOption{wrong}, ErrIncorrectPassphrase},
		{"legacy des3 wrong passphrase", keyPath("legacy_rsa_des3.pem"), []KeyOption{wrong}, ErrIncorrectPassphrase},
		{"legacy ec wrong passphrase", keyPath("legacy_p256_aes128.pem"), []KeyOption{wrong}, ErrIncorrectPassphrase},
		{"passphrase func fails", keyPath("openssh_ed25519_enc"), []KeyOption{failing}, io.ErrUnexpectedEOF},
		{"rsa 1024", keyPath("bad_rsa1024.pem"), nil, ErrWeakKey},
		{"secp256k1 sec1", keyPath("bad_secp256k1.pem"), nil, ErrUnsupportedKey},
		{"secp256k1 pkcs8", keyPath("bad_pkcs8_secp256k1.pem"), nil, ErrUnsupportedKey},
		{"x25519", keyPath("bad_x25519.pem"), nil, ErrUnsupportedKey},
		{"dsa", keyPath("bad_dsa.pem"), nil, ErrUnsupportedKey},
		{"public key only", keyPath("bad_public_only.pem"), nil, ErrKeyFormat},
		{"authorized_keys line", keyPath("openssh_ed25519.pub.ssh"), nil, ErrKeyFormat},
		{"garbage", keyPath("bad_garbage.txt"), nil, ErrKeyFormat},
		{"empty file", keyPath("bad_empty.txt"), nil, ErrEmptyKey},
		{"directory", keyPath(""), nil, ErrNotKeyFile},
		{"missing file", keyPath("no-such-key"), nil, fs.ErrNotExist},
		{"encrypted key with passphrase given to plain key", keyPath("bad_garbage.txt"), []KeyOption{pass}, ErrKeyFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := KeyFromFile(tt.path, tt.opts...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Path != tt.path {
				t.Fatalf("err %v is not a *KeyError naming %s", err, tt.path)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Fatalf("error %q does not name the path", err)
			}
			if errors.Is(tt.want, ErrPassphraseRequired) {
				var pm *PassphraseMissingError
				if !errors.As(err, &pm) || pm.Path != tt.path {
					t.Fatalf("err %v is not a *PassphraseMissingError for %s", err, tt.path)
				}
			}
			assertNoSecret(t, err.Error(), tt.path)
		})
	}
}

// assertNoSecret fails if msg contains the test passphrase or any line of
// the key file at path.
func assertNoSecret(t *testing.T, msg, path string) {
	t.Helper()
	for _, secret := range []string{testPassphrase, "not-the-passphrase"} {
		if strings.Contains(msg, secret) {
			t.Fatalf("message %q contains a passphrase", msg)
		}
	}
	data, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(data), "\n") {
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") && strings.Contains(msg, line) {
			t.Fatalf("message %q contains key material", msg)
		}
	}
}

func TestPassphraseFuncCalledOnlyWhenNeeded(t *testing.T) {
	calls := 0
	f := WithPassphraseFunc(func() ([]byte, error) { calls++; return []byte(testPassphrase), nil })
	if _, err := KeyFromFile(keyPath("openssh_ed25519"), f); err != nil {
		t.Fatal(err)
	}
	if calls != 0 {
		t.Fatalf("passphrase asked %d times for a plain key", calls)
	}
	for _, name := range []string{"openssh_ed25519_enc", "pkcs8enc_ed25519_aes256.pem", "legacy_rsa_aes256.pem"} {
		calls = 0
		if _, err := KeyFromFile(keyPath(name), f); err != nil {
			t.Fatal(err)
		}
		if calls != 1 {
			t.Fatalf("%s: passphrase asked %d times, want 1", name, calls)
		}
	}
}

func TestKeyFromFileExpandsHome(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	data, err := os.ReadFile(keyPath("openssh_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "id_test"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := KeyFromFile("~/id_test"); err != nil {
		t.Fatalf("KeyFromFile(~/id_test): %v", err)
	}
}

func TestParseKeyWithoutPath(t *testing.T) {
	data, err := os.ReadFile(keyPath("openssh_ed25519_enc"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseKey(data)
	var pm *PassphraseMissingError
	if !errors.As(err, &pm) || pm.Path != "" {
		t.Fatalf("err = %v, want *PassphraseMissingError without a path", err)
	}
	if _, err := ParseKey(data, WithPassphrase([]byte(testPassphrase))); err != nil {
		t.Fatal(err)
	}
	for _, in := range [][]byte{nil, []byte("  \n"), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
		[]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n")} {
		if _, err := ParseKey(in, WithPassphrase([]byte("x"))); err == nil {
			t.Fatalf("ParseKey(%q) succeeded", in)
		}
	}
}

// TestKeysMadeByToolsNow makes fresh keys with the real tools on every run,
// so a change in their output formats is caught, not only the fixtures.
func TestKeysMadeByToolsNow(t *testing.T) {
	sshKeygen := testenv.LookPath(t, "ssh-keygen")
	openssl := testenv.LookPath(t, "openssl")
	dir := t.TempDir()
	p := filepath.Join
	tests := []struct {
		name string
		cmd  []string
		file string
		pass bool
		alg  Algorithm
	}{
		{"ssh-keygen ed25519", []string{sshKeygen, "-q", "-t", "ed25519", "-N", "", "-f", p(dir, "a")}, "a", false, EdDSA},
		{"ssh-keygen ecdsa 384 encrypted", []string{sshKeygen, "-q", "-t", "ecdsa", "-b", "384", "-N", testPassphrase, "-f", p(dir, "b")}, "b", true, ES384},
		{"ssh-keygen rsa 3072", []string{sshKeygen, "-q", "-t", "rsa", "-b", "3072", "-N", "", "-f", p(dir, "c")}, "c", false, RS512},
		{"openssl pkcs8 p521", []string{openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521", "-out", p(dir, "d")}, "d", false, ES512},
		{"openssl pkcs8 encrypted ed25519", []string{openssl, "genpkey", "-algorithm", "ed25519", "-aes-128-cbc", "-pass", "pass:" + testPassphrase, "-out", p(dir, "e")}, "e", true, EdDSA},
		{"openssl legacy rsa", []string{openssl, "genrsa", "-traditional", "-aes192", "-passout", "pass:" + testPassphrase, "-out", p(dir, "f"), "2048"}, "f", true, RS512},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if out, err := exec.Command(tt.cmd[0], tt.cmd[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("%v: %v\n%s", tt.cmd, err, out)
			}
			var opts []KeyOption
			if tt.pass {
				opts = append(opts, WithPassphrase([]byte(testPassphrase)))
			}
			key, err := KeyFromFile(p(dir, tt.file), opts...)
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
			verifyWithGolangJWT(t, tok, key.Public(), tt.alg)
		})
	}
}

// kmsSigner stands for a remote crypto.Signer: it hides the concrete key
// type, so KeyFromSigner must go through the crypto.Signer contract.
type kmsSigner struct{ crypto.Signer }

func TestKeyFromSigner(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name string
		s    crypto.Signer
		alg  Algorithm
	}{
		{"rsa RS512", kmsSigner{rsaKey}, RS512},
		{"rsa RS256", kmsSigner{rsaKey}, RS256},
		{"rsa RS384", kmsSigner{rsaKey}, RS384},
		{"rsa PS256", kmsSigner{rsaKey}, PS256},
		{"rsa PS384", kmsSigner{rsaKey}, PS384},
		{"rsa PS512", kmsSigner{rsaKey}, PS512},
		{"ecdsa P-384", kmsSigner{p384}, ES384},
		{"ed25519", kmsSigner{edKey}, EdDSA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := KeyFromSigner(tt.s)
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewSigner("kms-user", key, WithAlgorithm(tt.alg))
			if err != nil {
				t.Fatal(err)
			}
			for range 20 { // r or s with leading zeros must keep their width
				tok, err := s.Sign(context.Background(), nil)
				if err != nil {
					t.Fatal(err)
				}
				verifyWithGolangJWT(t, tok, key.Public(), tt.alg)
			}
		})
	}
}

func TestKeyFromSignerRefuses(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	tests := []struct {
		name string
		s    crypto.Signer
		want error
	}{
		{"nil", nil, ErrUnsupportedKey},
		{"rsa 1024", small, ErrWeakKey},
		{"P-224", p224, ErrUnsupportedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := KeyFromSigner(tt.s); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func FuzzParseKey(f *testing.F) {
	for _, fx := range goodFixtures {
		if data, err := os.ReadFile(keyPath(fx.file)); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := ParseKey(data, WithPassphrase([]byte(testPassphrase)))
		if err == nil && key.Public() == nil {
			t.Fatal("key without public half")
		}
	})
}

func TestHostileKeyFiles(t *testing.T) {
	legacy, err := os.ReadFile(keyPath("legacy_rsa_aes256.pem"))
	if err != nil {
		t.Fatal(err)
	}
	badDEK := strings.Replace(string(legacy), "DEK-Info: AES-256-CBC,", "DEK-Info: AES-256-CBC,ZZ", 1)
	badCipher := strings.Replace(string(legacy), "AES-256-CBC", "ROT13-CBC", 1)
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"legacy PEM with a corrupt IV", []byte(badDEK), ErrKeyFormat},
		{"legacy PEM with an unknown cipher", []byte(badCipher), ErrKeyFormat},
		// N=2, r=2^20, p=16 would allocate 2.5 GiB: refused before any work.
		{"scrypt with a huge block size", encryptedPKCS8Scrypt(t, 2, 1<<20, 16), ErrUnsupportedKey},
		{"scrypt with a huge cost", encryptedPKCS8Scrypt(t, 1<<24, 8, 1), ErrUnsupportedKey},
		{"scrypt with too much parallel work", encryptedPKCS8Scrypt(t, 1<<16, 8, 16), ErrUnsupportedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKey(tt.data, WithPassphrase([]byte(testPassphrase)))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// encryptedPKCS8Scrypt builds an "ENCRYPTED PRIVATE KEY" block whose scrypt
// parameters are N, r and p, around garbage (RFC 5958, RFC 8018, RFC 7914).
func encryptedPKCS8Scrypt(t *testing.T, n, r, p int) []byte {
	t.Helper()
	type algorithmIdentifier struct {
		Algorithm  asn1.ObjectIdentifier
		Parameters asn1.RawValue `asn1:"optional"`
	}
	mustMarshal := func(v any) []byte {
		der, err := asn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	var (
		oidPBES2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
		oidScrypt    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
		oidAES256CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	)
	kdf := algorithmIdentifier{Algorithm: oidScrypt, Parameters: asn1.RawValue{FullBytes: mustMarshal(struct {
		Salt                                               []byte
		CostParameter, BlockSize, ParallelizationParameter int
	}{make([]byte, 16), n, r, p})}}
	enc := algorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: mustMarshal(make([]byte, 16))}}
	params := mustMarshal(struct{ KeyDerivationFunc, EncryptionScheme algorithmIdentifier }{kdf, enc})
	der := mustMarshal(struct {
		Algorithm     algorithmIdentifier
		EncryptedData []byte
	}{algorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: params}}, make([]byte, 32)})
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der})
}
