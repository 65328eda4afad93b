package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asymjwt/asymjwt"
	"github.com/asymjwt/asymjwt/verifytest"
	"golang.org/x/crypto/ssh"
)

// testPassphrase is the passphrase of the encrypted fixtures
// (testdata/README.md of the module).
const testPassphrase = "asymjwt-test-passphrase"

// fixtures are the key formats of ../../testdata/keys, with their public
// halves (keysource_test.go's goodFixtures); "" means derive it.
var fixtures = []struct {
	file, pub string
	alg       asymjwt.Algorithm
	encrypted bool
}{
	{"openssh_ed25519", "openssh_ed25519.pub.ssh", asymjwt.EdDSA, false},
	{"openssh_p256", "openssh_p256.pub.ssh", asymjwt.ES256, false},
	{"openssh_p384", "openssh_p384.pub.ssh", asymjwt.ES384, false},
	{"openssh_p521", "openssh_p521.pub.ssh", asymjwt.ES512, false},
	{"openssh_rsa2048", "openssh_rsa2048.pub.ssh", asymjwt.RS512, false},
	{"openssh_ed25519_enc", "openssh_ed25519_enc.pub.ssh", asymjwt.EdDSA, true},
	{"openssh_rsa_enc", "openssh_rsa_enc.pub.ssh", asymjwt.RS512, true},
	{"pkcs1_rsa2048.pem", "pkcs1_rsa2048.pub.pem", asymjwt.RS512, false},
	{"sec1_p256.pem", "sec1_p256.pub.pem", asymjwt.ES256, false},
	{"sec1_p384.pem", "sec1_p384.pub.pem", asymjwt.ES384, false},
	{"sec1_p521.pem", "sec1_p521.pub.pem", asymjwt.ES512, false},
	{"pkcs8_rsa3072.pem", "pkcs8_rsa3072.pub.pem", asymjwt.RS512, false},
	{"pkcs8_p256.pem", "pkcs8_p256.pub.pem", asymjwt.ES256, false},
	{"pkcs8_p521.pem", "pkcs8_p521.pub.pem", asymjwt.ES512, false},
	{"pkcs8_ed25519.pem", "pkcs8_ed25519.pub.pem", asymjwt.EdDSA, false},
	{"pkcs8enc_ed25519_aes256.pem", "", asymjwt.EdDSA, true},
	{"pkcs8enc_rsa_aes128_sha1.pem", "pkcs1_rsa2048.pub.pem", asymjwt.RS512, true},
	{"pkcs8enc_p384_sha512.pem", "sec1_p384.pub.pem", asymjwt.ES384, true},
	{"pkcs8enc_p256_scrypt.pem", "pkcs8_p256.pub.pem", asymjwt.ES256, true},
	{"legacy_rsa_aes256.pem", "pkcs1_rsa2048.pub.pem", asymjwt.RS512, true},
	{"legacy_rsa_des3.pem", "pkcs1_rsa2048.pub.pem", asymjwt.RS512, true},
	{"legacy_p256_aes128.pem", "sec1_p256.pub.pem", asymjwt.ES256, true},
}

func fixturePath(name string) string { return filepath.Join("..", "..", "testdata", "keys", name) }

// authorizedKeyLine encodes pub as an authorized_keys line.
func authorizedKeyLine(t *testing.T, pub any, comment string) []byte {
	t.Helper()
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return append(bytes.TrimSpace(ssh.MarshalAuthorizedKey(sshPub)), []byte(" "+comment+"\n")...)
}

func TestFixturesThroughHeaderAndVerify(t *testing.T) {
	t.Parallel()
	passFile := filepath.Join(t.TempDir(), "passphrase")
	if err := os.WriteFile(passFile, []byte(testPassphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range fixtures {
		t.Run(f.file, func(t *testing.T) {
			t.Parallel()
			keys := filepath.Join(t.TempDir(), "keys")
			if err := os.Mkdir(keys, 0o700); err != nil {
				t.Fatal(err)
			}
			user := "user-" + strings.ReplaceAll(f.file, ".", "_")
			if f.pub != "" {
				copyFile(t, fixturePath(f.pub), filepath.Join(keys, user+".pub"))
			} else {
				k, err := asymjwt.KeyFromFile(fixturePath(f.file), asymjwt.WithPassphrase([]byte(testPassphrase)))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(keys, user+".pub"), authorizedKeyLine(t, k.Public(), "derived"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"header", "-user", user, "-key", fixturePath(f.file)}
			secrets := append(privateKeyLines(t, fixturePath(f.file)), testPassphrase)
			if f.encrypted {
				runCLI(t, args...).want(t, 2, "passphrase").noSecrets(t, secrets...)
				args = append(args, "-passphrase-file", passFile)
			}
			tok := runCLI(t, args...).want(t, 0).noSecrets(t, secrets...).token(t)
			if alg := tokenHeader(t, tok)["alg"]; alg != string(f.alg) {
				t.Fatalf("alg %v, want %s", alg, f.alg)
			}
			c := runCLI(t, "verify", "-keys", keys, tok).want(t, 0).noSecrets(t, secrets...).claims(t)
			if c["username"] != user {
				t.Fatalf("claims %v", c)
			}
		})
	}
}

func TestBinding(t *testing.T) {
	t.Parallel()
	kp := verifytest.GenerateKey(t, verifytest.Ed25519)
	keys := keysDirWith(t, "svc", kp.PublicFile)
	header := func(args ...string) string {
		return runCLI(t, append([]string{"header", "-user", "svc", "-key", kp.PrivateFile}, args...)...).want(t, 0).token(t)
	}
	verify := func(tok string, args ...string) result {
		return runCLI(t, append(append([]string{"verify", "-keys", keys}, args...), tok)...)
	}

	post := header("-method", "POST", "-url", "https://x/y")
	c := verify(post, "-method", "POST", "-url", "https://x/y").want(t, 0).claims(t)
	if c["htm"] != "POST" || c["htu"] != "https://x/y" {
		t.Fatalf("claims %v", c)
	}
	verify(post, "-method", "POST", "-url", "https://x/y#fragment-ignored").want(t, 0)
	verify(post, "-method", "POST", "-url", "https://x/y?query=added").want(t, 1, "binding")
	verify(post, "-method", "GET", "-url", "https://x/y").want(t, 1, "binding")
	verify(post, "-method", "POST", "-url", "https://x/z").want(t, 1, "binding")
	verify(post, "-method", "POST", "-url", "http://x/y").want(t, 1, "binding")
	verify(post, "-method", "POST", "-url", "https://other/y").want(t, 1, "binding")
	verify(post, "-method", "PUT").want(t, 1, "binding")
	verify(post, "-url", "https://x/y").want(t, 0)
	r := verify(post).want(t, 0, "htm, htu and htq not checked")
	if c := r.claims(t); c["htm"] != "POST" || c["htu"] != "https://x/y" || c["htq"] == nil {
		t.Fatalf("binding claims not reported: %v", c)
	}
	if _, ok := r.claims(t)["hcd"]; ok {
		t.Fatal("a token made without -body binds a body")
	}

	// -url alone binds to GET, and binds the query.
	get := header("-url", "https://api.example.com/v1/items?page=2&sort=name")
	c = verify(get, "-method", "GET", "-url", "https://api.example.com/v1/items?page=2&sort=name").want(t, 0).claims(t)
	if c["htm"] != "GET" || c["htu"] != "https://api.example.com/v1/items" {
		t.Fatalf("claims %v", c)
	}
	verify(get, "-url", "https://api.example.com/v1/items?page=%32&sort=name").want(t, 0) // the same query
	verify(get, "-url", "https://api.example.com/v1/items?sort=name&page=2").want(t, 1, "binding")
	verify(get, "-url", "https://api.example.com/v1/items?page=3&sort=name").want(t, 1, "binding")
	verify(get, "-url", "https://api.example.com/v1/items").want(t, 1, "binding")

	// Without -url the token has no binding claims; requiring them fails.
	plain := header()
	c = verify(plain).want(t, 0).claims(t)
	if _, ok := c["htm"]; ok {
		t.Fatalf("unbound token has htm: %v", c)
	}
	if _, ok := c["htu"]; ok {
		t.Fatalf("unbound token has htu: %v", c)
	}
	verify(plain, "-method", "GET", "-url", "https://x/y").want(t, 1, "binding")
	verify(plain, "-method", "GET").want(t, 1, "binding")
	verify(plain, "-url", "https://x/y").want(t, 1, "binding")
}

// TestBodyBinding: header -body binds a body, -digest prints its
// Content-Digest, and verify -body checks it.
func TestBodyBinding(t *testing.T) {
	t.Parallel()
	kp := verifytest.GenerateKey(t, verifytest.Ed25519)
	keys := keysDirWith(t, "svc", kp.PublicFile)
	dir := t.TempDir()
	bodyFile, otherFile := filepath.Join(dir, "body.json"), filepath.Join(dir, "other.json")
	const body = `{"hello": "world"}`
	const digest = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:" // RFC 9530's example
	if err := os.WriteFile(bodyFile, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(otherFile, []byte(`{"hello": "WORLD"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"header", "-user", "svc", "-key", kp.PrivateFile, "-method", "POST", "-url", "https://x/items"}

	// One line by default; the digest is shown on stderr.
	r := runCLI(t, append(args, "-body", bodyFile)...).want(t, 0, digest)
	tok := r.token(t)
	// -digest: a second line with the header's value.
	r2 := runCLI(t, append(args, "-body", bodyFile, "-digest")...).want(t, 0)
	lines := strings.Split(strings.TrimSuffix(r2.stdout, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "JWT ") || lines[1] != digest || r2.stderr != "" {
		t.Fatalf("-digest printed %q (stderr %q), want the token and %q", r2.stdout, r2.stderr, digest)
	}
	// The body from standard input.
	tokStdin := cli{stdin: body}.run(t, append(args, "-body", "-")...).want(t, 0, digest).token(t)

	verify := func(tok string, extra ...string) result {
		return runCLI(t, append(append([]string{"verify", "-keys", keys}, extra...), tok)...)
	}
	c := verify(tok, "-method", "POST", "-url", "https://x/items", "-body", bodyFile).want(t, 0).claims(t)
	if c["hcd"] != digest {
		t.Fatalf("hcd %v, want %s", c["hcd"], digest)
	}
	verify(tokStdin, "-body", bodyFile).want(t, 0)
	cli{stdin: body}.run(t, "verify", "-keys", keys, "-body", "-", tok).want(t, 0)
	verify(tok, "-body", otherFile).want(t, 1, "binding", "body does not match")
	verify(tok).want(t, 0, "hcd not checked")
	// A token without a body claim fails -body.
	plain := runCLI(t, args...).want(t, 0).token(t)
	verify(plain, "-body", bodyFile).want(t, 1, "binding", "does not bind a body")
	// Input errors.
	runCLI(t, append(args, "-body", filepath.Join(dir, "missing"))...).wantInputError(t, "-body", "missing")
	runCLI(t, append(args, "-body", dir)...).wantInputError(t, "-body", "not a file")
	verify(tok, "-body", filepath.Join(dir, "missing")).wantInputError(t, "-body", "missing")
}

func TestHeaderUsageErrors(t *testing.T) {
	t.Parallel()
	kp := verifytest.GenerateKey(t, verifytest.Ed25519)
	key := kp.PrivateFile
	secrets := privateKeyLines(t, key)
	tests := []struct {
		name  string
		args  []string
		usage bool // a usage error; else an input error
		want  []string
	}{
		{"no -user", []string{"-key", key}, true, []string{"-user NAME is required"}},
		{"no key", []string{"-user", "a"}, true, []string{"-key FILE or -agent"}},
		{"key and agent", []string{"-user", "a", "-key", key, "-agent"}, true, []string{"exclude"}},
		{"agent-key without agent", []string{"-user", "a", "-key", key, "-agent-key", "x"}, true, []string{"-agent-key needs -agent"}},
		{"passphrase with agent", []string{"-user", "a", "-agent", "-passphrase-file", "p"}, true, []string{"-passphrase-file"}},
		{"method without url", []string{"-user", "a", "-key", key, "-method", "POST"}, true, []string{"-method needs -url"}},
		{"body without url", []string{"-user", "a", "-key", key, "-body", "b"}, true, []string{"-body needs -url"}},
		{"digest without body", []string{"-user", "a", "-key", key, "-url", "https://x/", "-digest"}, true, []string{"-digest needs -body"}},
		{"relative url", []string{"-user", "a", "-key", key, "-url", "/v1/items"}, true, []string{"absolute http or https URL"}},
		{"ftp url", []string{"-user", "a", "-key", key, "-url", "ftp://x/y"}, true, []string{"absolute http or https URL"}},
		{"bad method", []string{"-user", "a", "-key", key, "-url", "https://x/", "-method", "GE T"}, true, []string{"-method"}},
		{"bad username", []string{"-user", "a\x01b", "-key", key}, true, []string{"-user"}},
		{"extra argument", []string{"-user", "a", "-key", key, "extra"}, true, []string{`unexpected argument "extra"`}},
		{"bad flag", []string{"-user", "a", "-key", key, "-bogus"}, true, []string{"-bogus"}},
		{"missing key file", []string{"-user", "a", "-key", filepath.Join(t.TempDir(), "nope")}, false, []string{"nope", "no such file"}},
		{"key is a directory", []string{"-user", "a", "-key", t.TempDir()}, false, []string{"not a regular file"}},
		{"key is a public key", []string{"-user", "a", "-key", kp.PublicFile}, false, []string{"not a recognised key", "is a public key, not a private key"}},
		{"agent without SSH_AUTH_SOCK", []string{"-user", "a", "-agent"}, false, []string{"SSH_AUTH_SOCK"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, append([]string{"header"}, tt.args...)...)
			if tt.usage {
				r.wantUsageError(t, "header", tt.want...)
			} else {
				r.wantInputError(t, tt.want...)
			}
			r.noSecrets(t, secrets...)
		})
	}
}

func TestHeaderAgent(t *testing.T) {
	t.Parallel()
	ed := verifytest.GenerateKey(t, verifytest.Ed25519)
	ec := verifytest.GenerateKey(t, verifytest.ECDSAP256)
	keys := filepath.Join(t.TempDir(), "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	both := append(authorizedKeyLine(t, ed.Public, ed.Comment), authorizedKeyLine(t, ec.Public, ec.Comment)...)
	if err := os.WriteFile(filepath.Join(keys, "bob.pub"), both, 0o644); err != nil {
		t.Fatal(err)
	}

	one := verifytest.NewAgent(t, ed)
	withOne := cli{env: []string{"SSH_AUTH_SOCK=" + one.Socket}}
	tok := withOne.run(t, "header", "-user", "bob", "-agent", "-url", "https://x/y").want(t, 0).token(t)
	if kid := tokenHeader(t, tok)["kid"]; kid != ed.Fingerprint {
		t.Fatalf("kid %v, want %s", kid, ed.Fingerprint)
	}
	runCLI(t, "verify", "-keys", keys, "-method", "GET", "-url", "https://x/y", tok).want(t, 0)
	withOne.run(t, "header", "-user", "bob", "-agent", "-agent-key", "no-such-key").
		want(t, 2, "no-such-key", ed.Fingerprint, ed.Comment)

	two := verifytest.NewAgent(t, ed, ec)
	withTwo := cli{env: []string{"SSH_AUTH_SOCK=" + two.Socket}}
	r := withTwo.run(t, "header", "-user", "bob", "-agent").
		want(t, 2, ed.Fingerprint, ed.Comment, ec.Fingerprint, ec.Comment)
	if r.stdout != "" {
		t.Fatalf("stdout: %q", r.stdout)
	}
	for _, sel := range []struct {
		by  string
		kid string
	}{{ec.Comment, ec.Fingerprint}, {ed.Fingerprint, ed.Fingerprint}} {
		tok := withTwo.run(t, "header", "-user", "bob", "-agent", "-agent-key", sel.by).want(t, 0).token(t)
		if kid := tokenHeader(t, tok)["kid"]; kid != sel.kid {
			t.Fatalf("-agent-key %s: kid %v, want %s", sel.by, kid, sel.kid)
		}
		runCLI(t, "verify", "-keys", keys, tok).want(t, 0)
	}

	// An agent that is gone.
	gone := cli{env: []string{"SSH_AUTH_SOCK=" + filepath.Join(t.TempDir(), "gone.sock")}}
	gone.run(t, "header", "-user", "bob", "-agent").want(t, 2, "ssh-agent")
}
