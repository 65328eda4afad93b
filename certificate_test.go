package asymjwt

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// tokenHeader decodes a token's JOSE header.
func tokenHeader(t testing.TB, tok string) map[string]any {
	t.Helper()
	seg, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestKeyFromFileCertificate(t *testing.T) {
	dir := t.TempDir()
	ed := keygenKinds[0]
	ca := newKeygenCA(t, dir, "ca", ed)
	path := keygen(t, dir, "alice", ed)
	other := keygen(t, dir, "other", ed)
	certText := ca.certify(t, path, "-I", "alice@laptop", "-z", "9", "-n", "alice")
	otherCert := ca.certify(t, other, "-I", "other", "-n", "alice")
	hostCert := filepath.Join(dir, "host-cert.pub")
	if err := os.WriteFile(hostCert, ca.certify(t, path, "-I", "h", "-h", "-n", "h"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+certFileSuffix, certText, 0o644); err != nil { // back to the user certificate
		t.Fatal(err)
	}
	// A user certificate of another key beside a copy of alice's key.
	mismatched := filepath.Join(dir, "mismatched")
	copyTestFile(t, path, mismatched)
	if err := os.WriteFile(mismatched+certFileSuffix, otherCert, 0o644); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	copyTestFile(t, path, plain)
	corrupt := filepath.Join(dir, "corrupt")
	copyTestFile(t, path, corrupt)
	if err := os.WriteFile(corrupt+certFileSuffix, []byte("ssh-ed25519-cert-v01@openssh.com AAAAbroken"), 0o644); err != nil {
		t.Fatal(err)
	}
	plainPub := filepath.Join(dir, "plainpub")
	copyTestFile(t, path, plainPub)
	copyTestFile(t, path+".pub", plainPub+certFileSuffix)
	asDir := filepath.Join(dir, "asdir")
	copyTestFile(t, path, asDir)
	if err := os.Mkdir(asDir+certFileSuffix, 0o755); err != nil {
		t.Fatal(err)
	}
	wantCert, err := parseCertificateText(certText)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		path     string
		opts     []KeyOption
		cert     bool
		want     error
		wantPath string // the path the error names
	}{
		{"beside the key", path, nil, true, nil, ""},
		{"without certificate", path, []KeyOption{WithoutCertificate()}, false, nil, ""},
		{"none beside", plain, nil, false, nil, ""},
		{"named", plain, []KeyOption{WithCertificateFile(path + certFileSuffix)}, true, nil, ""},
		{"named, missing", plain, []KeyOption{WithCertificateFile(plain + "-nope.pub")}, false, fs.ErrNotExist, plain + "-nope.pub"},
		{"named and without", plain, []KeyOption{WithCertificateFile(path + certFileSuffix), WithoutCertificate()}, false, ErrInvalidOption, ""},
		{"another key's certificate beside", mismatched, nil, false, ErrCertificateMismatch, mismatched + certFileSuffix},
		{"host certificate", plain, []KeyOption{WithCertificateFile(hostCert)}, false, ErrUnsupportedKey, hostCert},
		{"corrupt", corrupt, nil, false, ErrKeyFormat, corrupt + certFileSuffix},
		{"a plain public key as certificate", plainPub, nil, false, ErrKeyFormat, plainPub + certFileSuffix},
		{"a directory", asDir, nil, false, ErrNotKeyFile, asDir + certFileSuffix},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := KeyFromFile(tt.path, tt.opts...)
			if tt.want != nil {
				if !errors.Is(err, tt.want) || key != nil {
					t.Fatalf("= %v, %v; want %v", key, err, tt.want)
				}
				var ke *KeyError
				if tt.wantPath != "" && (!errors.As(err, &ke) || ke.Path != tt.wantPath) {
					t.Errorf("error %v does not name %s", err, tt.wantPath)
				}
				if strings.Count(err.Error(), "asymjwt: ") != 1 {
					t.Errorf("error %q names the package more than once", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := key.(CertifiedKey).Certificate()
			if (got != nil) != tt.cert {
				t.Fatalf("Certificate = %v, want one: %v", got, tt.cert)
			}
			if got != nil && !bytes.Equal(got.Marshal(), wantCert.Marshal()) {
				t.Fatal("another certificate")
			}
			s, err := NewSigner("alice", key)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := s.Sign(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			h := tokenHeader(t, tok)
			if h["kid"] != s.KeyID() {
				t.Errorf("kid = %v, want the key's fingerprint %s", h["kid"], s.KeyID())
			}
			param, has := h[certHeaderParam].(string)
			if has != tt.cert {
				t.Fatalf("header %v: certificate present = %v, want %v", h, has, tt.cert)
			}
			if has {
				if param != strings.Fields(string(certText))[1] {
					t.Error("the header's certificate is not the file's")
				}
				if s.Certificate() == nil || s.Certificate().KeyId != "alice@laptop" {
					t.Errorf("Signer.Certificate = %v", s.Certificate())
				}
			} else if len(h) != 3 {
				t.Errorf("plain key header = %v, want alg, typ and kid only", h)
			}
		})
	}
}

func copyTestFile(t testing.TB, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// foreignKey is a caller's own Key implementation.
type foreignKey struct{ k Key }

func (f foreignKey) Public() crypto.PublicKey { return f.k.Public() }
func (f foreignKey) SignJWS(ctx context.Context, alg Algorithm, in []byte) ([]byte, error) {
	return f.k.SignJWS(ctx, alg, in)
}

func TestKeyWithCertificate(t *testing.T) {
	_, caPriv, _ := ed25519.GenerateKey(rand.Reader)
	caSigner, _ := ssh.NewSignerFromKey(caPriv)
	k := loadTestKeys(t)
	certFor := func(key Key, typ uint32, id string) []byte {
		pub, _ := ssh.NewPublicKey(key.Public())
		c := &ssh.Certificate{Key: pub, CertType: typ, KeyId: id, ValidPrincipals: []string{"alice"}, ValidBefore: ssh.CertTimeInfinity}
		if err := c.SignCert(rand.Reader, caSigner); err != nil {
			t.Fatal(err)
		}
		return ssh.MarshalAuthorizedKey(c)
	}
	keys := NewMemoryKeyStore()
	v, err := NewVerifier(keys, WithTrustedCAs(CertAuthority{Key: caPriv.Public()}))
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]Key{"in process": k.ed, "foreign": foreignKey{k.p256}, "RSA": k.rsa} {
		t.Run(name, func(t *testing.T) {
			ck, err := KeyWithCertificate(key, certFor(key, ssh.UserCert, "first"))
			if err != nil {
				t.Fatal(err)
			}
			// Attaching again replaces the certificate.
			ck, err = KeyWithCertificate(ck, certFor(key, ssh.UserCert, "second"))
			if err != nil {
				t.Fatal(err)
			}
			if id := ck.(CertifiedKey).Certificate().KeyId; id != "second" {
				t.Fatalf("KeyId = %q", id)
			}
			if c, ok := key.(CertifiedKey); ok && c.Certificate() != nil {
				t.Fatal("the key given was changed")
			}
			s, err := NewSigner("alice", ck)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := s.Sign(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			id, err := v.VerifyToken(context.Background(), tok, "", "")
			if err != nil {
				t.Fatal(err)
			}
			if id.Certificate.KeyID != "second" {
				t.Errorf("KeyID = %q", id.Certificate.KeyID)
			}
			// WithoutCertificate: the Signer leaves it out, and the
			// verifier, which does not store the key, refuses.
			s, err = NewSigner("alice", ck, WithoutCertificate())
			if err != nil {
				t.Fatal(err)
			}
			tok, _ = s.Sign(context.Background(), nil)
			if _, has := tokenHeader(t, tok)[certHeaderParam]; has || s.Certificate() != nil {
				t.Fatal("certificate sent WithoutCertificate")
			}
			if _, err := v.VerifyToken(context.Background(), tok, "", ""); !errors.Is(err, ErrUnknownUser) {
				t.Fatalf("err = %v", err)
			}
		})
	}

	for _, tt := range []struct {
		name string
		cert []byte
		want error
	}{
		{"another key's", certFor(k.ed2, ssh.UserCert, "x"), ErrCertificateMismatch},
		{"host", certFor(k.ed, ssh.HostCert, "x"), ErrUnsupportedKey},
		{"empty", nil, ErrKeyFormat},
		{"plain key", []byte(ksFixture(t, "openssh_ed25519.pub.ssh")), ErrKeyFormat},
		{"with options", append([]byte("no-pty "), certFor(k.ed, ssh.UserCert, "x")...), ErrKeyFormat},
		{"two", append(certFor(k.ed, ssh.UserCert, "x"), certFor(k.ed, ssh.UserCert, "y")...), ErrKeyFormat},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := KeyWithCertificate(k.ed, tt.cert); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := KeyWithCertificate(nil, certFor(k.ed, ssh.UserCert, "x")); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("nil key: %v", err)
	}
}

// TestSignerSetKeyCertificate: rotating keys rotates the header, certificate
// included, and a Signer refuses a key whose certificate does not fit.
func TestSignerSetKeyCertificate(t *testing.T) {
	k := loadTestKeys(t)
	_, caPriv, _ := ed25519.GenerateKey(rand.Reader)
	caSigner, _ := ssh.NewSignerFromKey(caPriv)
	pub, _ := ssh.NewPublicKey(k.ed.Public())
	c := &ssh.Certificate{Key: pub, CertType: ssh.UserCert, KeyId: "id", ValidPrincipals: []string{"a"}, ValidBefore: ssh.CertTimeInfinity}
	if err := c.SignCert(rand.Reader, caSigner); err != nil {
		t.Fatal(err)
	}
	ck, err := KeyWithCertificate(k.ed, ssh.MarshalAuthorizedKey(c))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner("a", k.p256)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetKey(ck); err != nil {
		t.Fatal(err)
	}
	tok, _ := s.Sign(context.Background(), nil)
	if _, has := tokenHeader(t, tok)[certHeaderParam]; !has {
		t.Fatal("no certificate after SetKey")
	}
	if err := s.SetKey(k.p256); err != nil {
		t.Fatal(err)
	}
	tok, _ = s.Sign(context.Background(), nil)
	if _, has := tokenHeader(t, tok)[certHeaderParam]; has {
		t.Fatal("certificate kept after SetKey of a plain key")
	}
	// A foreign CertifiedKey whose certificate is another key's.
	if err := s.SetKey(badCertKey{k.p256, c}); !errors.Is(err, ErrCertificateMismatch) {
		t.Fatalf("err = %v", err)
	}
	if s.Certificate() != nil {
		t.Fatal("the Signer changed key on an error")
	}
}

type badCertKey struct {
	Key
	cert *ssh.Certificate
}

func (k badCertKey) Certificate() *ssh.Certificate { return k.cert }

// TestCertificateTokenSize: a certificate of an RSA 3072 key signed by an
// RSA 3072 CA fits the default token size with room to spare.
func TestCertificateTokenSize(t *testing.T) {
	key, err := KeyFromFile(keyPath("pkcs8_rsa3072.pem"))
	if err != nil {
		t.Fatal(err)
	}
	caSigner, err := ssh.NewSignerFromSigner(key.(*signerKey).signer)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := ssh.NewPublicKey(key.Public())
	c := &ssh.Certificate{Key: pub, CertType: ssh.UserCert, KeyId: strings.Repeat("k", 100), ValidPrincipals: []string{"svc", strings.Repeat("p", 100)}, ValidBefore: ssh.CertTimeInfinity,
		Permissions: ssh.Permissions{Extensions: map[string]string{"permit-pty": "", "permit-port-forwarding": ""}}}
	if err := c.SignCert(rand.Reader, caSigner); err != nil {
		t.Fatal(err)
	}
	ck, err := KeyWithCertificate(key, ssh.MarshalAuthorizedKey(c))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(strings.Repeat("u", 64), ck)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest("POST", "https://api.example.com/"+strings.Repeat("path/", 40), nil)
	tok, err := s.Sign(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if n := len("JWT ") + len(tok); n > DefaultMaxTokenSize/2 {
		t.Fatalf("token of %d bytes; DefaultMaxTokenSize is %d", n, DefaultMaxTokenSize)
	}
}

// TestCertificateOptionsInvalid: the new options refuse values they cannot
// use, naming themselves.
func TestCertificateOptionsInvalid(t *testing.T) {
	keys := NewMemoryKeyStore()
	for _, tt := range []struct {
		option string
		make   func() error
	}{
		{"WithCertificateFile", func() error { _, err := KeyFromFile(keyPath("openssh_ed25519"), WithCertificateFile("")); return err }},
		{"WithCertificateFile", func() error {
			_, err := KeyFromFile(keyPath("openssh_ed25519"), WithCertificateFile("x-cert.pub"), WithoutCertificate())
			return err
		}},
		{"WithTrustedCAs", func() error { _, err := NewVerifier(keys, WithTrustedCAs()); return err }},
		{"WithRevocationFile", func() error { _, err := NewVerifier(keys, WithRevocationFile("")); return err }},
		{"WithClientAddr", func() error { _, err := NewVerifier(keys, WithClientAddr(nil)); return err }},
	} {
		t.Run(tt.option, func(t *testing.T) {
			err := tt.make()
			if !errors.Is(err, ErrInvalidOption) || !strings.HasPrefix(err.Error(), "asymjwt: "+tt.option+": ") {
				t.Fatalf("err = %v, want ErrInvalidOption naming %s", err, tt.option)
			}
		})
	}
}
