package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asymjwt/asymjwt"
	"golang.org/x/crypto/ssh"
)

// keysDirWith makes a key directory holding pubFile as DIR/<user>.pub.
func keysDirWith(t *testing.T, user, pubFile string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	copyFile(t, pubFile, filepath.Join(dir, user+".pub"))
	return dir
}

func TestKeygenHeaderVerify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		alg      asymjwt.Algorithm
		check    func(pub any) bool
		typeName string
	}{
		{"default", nil, asymjwt.EdDSA, func(p any) bool { _, ok := p.(ed25519.PublicKey); return ok }, ssh.KeyAlgoED25519},
		{"ed25519", []string{"-type", "ed25519"}, asymjwt.EdDSA, func(p any) bool { _, ok := p.(ed25519.PublicKey); return ok }, ssh.KeyAlgoED25519},
		{"ecdsa", []string{"-type", "ecdsa"}, asymjwt.ES256, func(p any) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve.Params().BitSize == 256 }, ssh.KeyAlgoECDSA256},
		{"ecdsa-256", []string{"-type", "ecdsa", "-bits", "256"}, asymjwt.ES256, func(p any) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve.Params().BitSize == 256 }, ssh.KeyAlgoECDSA256},
		{"ecdsa-384", []string{"-type", "ecdsa", "-bits", "384"}, asymjwt.ES384, func(p any) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve.Params().BitSize == 384 }, ssh.KeyAlgoECDSA384},
		{"ecdsa-521", []string{"-type", "ecdsa", "-bits", "521"}, asymjwt.ES512, func(p any) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve.Params().BitSize == 521 }, ssh.KeyAlgoECDSA521},
		{"rsa-2048", []string{"-type", "rsa", "-bits", "2048"}, asymjwt.RS512, func(p any) bool { k, ok := p.(*rsa.PublicKey); return ok && k.N.BitLen() == 2048 }, ssh.KeyAlgoRSA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key := filepath.Join(t.TempDir(), "id")
			r := runCLI(t, append(append([]string{"keygen"}, tt.args...), "-o", key)...).want(t, 0)
			if !strings.Contains(r.stdout, key+".pub") {
				t.Fatalf("keygen printed %q", r.stdout)
			}
			fi, err := os.Stat(key)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Fatalf("private key mode %v, want 0600", fi.Mode().Perm())
			}
			data, err := os.ReadFile(key)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(data), "-----BEGIN OPENSSH PRIVATE KEY-----\n") {
				t.Fatalf("private key is not in OpenSSH format")
			}
			raw, err := ssh.ParseRawPrivateKey(data)
			if err != nil {
				t.Fatalf("ssh cannot read the private key: %v", err)
			}
			pubData, err := os.ReadFile(key + ".pub")
			if err != nil {
				t.Fatal(err)
			}
			sshPub, comment, _, rest, err := ssh.ParseAuthorizedKey(pubData)
			if err != nil || len(rest) != 0 || comment == "" {
				t.Fatalf("FILE.pub is not one authorized_keys line with a comment: %q (%v)", pubData, err)
			}
			if sshPub.Type() != tt.typeName {
				t.Fatalf("key type %s, want %s", sshPub.Type(), tt.typeName)
			}
			pub := sshPub.(ssh.CryptoPublicKey).CryptoPublicKey()
			if !tt.check(pub) {
				t.Fatalf("unexpected public key %T", pub)
			}
			if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(publicOf(raw)) {
				t.Fatal("FILE.pub is not the public half of FILE")
			}

			tok := runCLI(t, "header", "-user", "alice", "-key", key).want(t, 0).token(t)
			keys := keysDirWith(t, "alice", key+".pub")
			c := runCLI(t, "verify", "-keys", keys, tok).want(t, 0).noSecrets(t, privateKeyLines(t, key)...).claims(t)
			if c["username"] != "alice" {
				t.Fatalf("claims %v", c)
			}
			if alg := tokenHeader(t, tok)["alg"]; alg != string(tt.alg) {
				t.Fatalf("alg %v, want %s", alg, tt.alg)
			}
		})
	}
}

func publicOf(raw any) crypto.PublicKey {
	return raw.(crypto.Signer).Public()
}

func TestKeygenEncrypted(t *testing.T) {
	t.Parallel()
	const passphrase = "correct horse battery staple"
	dir := t.TempDir()
	passLF := filepath.Join(dir, "pass-lf")
	passCRLF := filepath.Join(dir, "pass-crlf")
	passBare := filepath.Join(dir, "pass-bare")
	wrong := filepath.Join(dir, "wrong")
	empty := filepath.Join(dir, "empty")
	for path, content := range map[string]string{
		passLF: passphrase + "\n", passCRLF: passphrase + "\r\n", passBare: passphrase,
		wrong: "not the passphrase\n", empty: "\n",
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	key := filepath.Join(dir, "id")
	runCLI(t, "keygen", "-passphrase-file", passCRLF, "-o", key).want(t, 0)
	r := runCLI(t, "keygen", "-type", "ecdsa", "-passphrase-file", passLF, "-o", key+"-ec").want(t, 0)
	if !strings.Contains(r.stdout, "encrypted") {
		t.Fatalf("keygen does not say the key is encrypted: %q", r.stdout)
	}
	secrets := append(privateKeyLines(t, key), passphrase)

	// The key is encrypted with exactly the passphrase, newline stripped.
	_, err := asymjwt.KeyFromFile(key)
	if !errors.Is(err, asymjwt.ErrPassphraseRequired) {
		t.Fatalf("KeyFromFile without passphrase: %v", err)
	}
	if _, err := asymjwt.KeyFromFile(key, asymjwt.WithPassphrase([]byte(passphrase))); err != nil {
		t.Fatalf("KeyFromFile with passphrase: %v", err)
	}

	keys := keysDirWith(t, "alice", key+".pub")
	for _, pf := range []string{passLF, passCRLF, passBare} {
		tok := runCLI(t, "header", "-user", "alice", "-key", key, "-passphrase-file", pf).want(t, 0).noSecrets(t, secrets...).token(t)
		runCLI(t, "verify", "-keys", keys, tok).want(t, 0)
	}
	tok := runCLI(t, "header", "-user", "alice", "-key", key+"-ec", "-passphrase-file", passBare).want(t, 0).token(t)
	runCLI(t, "verify", "-keys", keysDirWith(t, "alice", key+"-ec.pub"), tok).want(t, 0)

	// Stdin is not a terminal: no prompt, exit 2 naming the passphrase.
	cli{stdin: passphrase + "\n"}.run(t, "header", "-user", "alice", "-key", key).
		want(t, 2, "encrypted", "passphrase", "-passphrase-file", key).noSecrets(t, secrets...)
	runCLI(t, "header", "-user", "alice", "-key", key, "-passphrase-file", wrong).
		want(t, 2, "incorrect passphrase").noSecrets(t, append(secrets, "not the passphrase")...)
	runCLI(t, "header", "-user", "alice", "-key", key, "-passphrase-file", empty).want(t, 2, "empty").noSecrets(t, secrets...)
	runCLI(t, "header", "-user", "alice", "-key", key, "-passphrase-file", filepath.Join(dir, "missing")).want(t, 2, "passphrase file").noSecrets(t, secrets...)
	runCLI(t, "keygen", "-passphrase-file", empty, "-o", filepath.Join(dir, "other")).want(t, 2, "empty")
	if _, err := os.Stat(filepath.Join(dir, "other")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("keygen with an empty passphrase file wrote a key: %v", err)
	}
}

func TestKeygenRefusesToOverwrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := filepath.Join(dir, "id")
	runCLI(t, "keygen", "-o", key).want(t, 0)
	before, _ := os.ReadFile(key)
	beforePub, _ := os.ReadFile(key + ".pub")

	runCLI(t, "keygen", "-o", key).want(t, 2, key, "-f")
	runCLI(t, "keygen", "-type", "rsa", "-bits", "2048", "-o", key).want(t, 2, "-f")
	if after, _ := os.ReadFile(key); string(after) != string(before) {
		t.Fatal("private key overwritten without -f")
	}
	if after, _ := os.ReadFile(key + ".pub"); string(after) != string(beforePub) {
		t.Fatal("public key overwritten without -f")
	}

	// Only FILE.pub exists: refused too, and no private key is left behind.
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other+".pub", []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runCLI(t, "keygen", "-o", other).want(t, 2, other+".pub", "-f")
	if _, err := os.Stat(other); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("private key written though FILE.pub exists: %v", err)
	}

	// -f replaces both, and the private key is 0600 even if the old file
	// was not.
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	runCLI(t, "keygen", "-f", "-o", key).want(t, 0)
	after, _ := os.ReadFile(key)
	afterPub, _ := os.ReadFile(key + ".pub")
	if string(after) == string(before) || string(afterPub) == string(beforePub) {
		t.Fatal("-f did not replace the key pair")
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("replaced private key: %v %v", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Fatalf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestKeygenUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "id")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no -o", nil, "-o FILE is required"},
		{"unknown type", []string{"-type", "dsa", "-o", out}, `-type "dsa"`},
		{"rsa too small", []string{"-type", "rsa", "-bits", "1024", "-o", out}, "-bits 1024"},
		{"rsa too large", []string{"-type", "rsa", "-bits", "65536", "-o", out}, "-bits 65536"},
		{"ecdsa curve", []string{"-type", "ecdsa", "-bits", "224", "-o", out}, "-bits 224"},
		{"ed25519 bits", []string{"-bits", "4096", "-o", out}, "-bits 4096"},
		{"bad bits", []string{"-bits", "many", "-o", out}, `invalid value "many"`},
		{"extra argument", []string{"-o", out, "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runCLI(t, append([]string{"keygen"}, tt.args...)...).wantUsageError(t, "keygen", tt.want)
		})
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused keygen wrote %s", out)
	}
	runCLI(t, "keygen", "-o", filepath.Join(dir, "no", "such", "dir", "id")).wantInputError(t, "no such file")
}
