package asymjwt

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// utcStamp formats t for ssh-keygen -V.
func utcStamp(t time.Time) string { return t.UTC().Format("20060102150405") + "Z" }

// window is ssh-keygen -V for [from, to) around testNow.
func window(from, to time.Duration) string {
	return "-V" + utcStamp(testNow.Add(from)) + ":" + utcStamp(testNow.Add(to))
}

// TestSecurityCertificates is SECURITY.md row S1: every way a certificate
// can be unacceptable, with certificates made by ssh-keygen, each refused
// with its own reason; and the ways it is accepted.
func TestSecurityCertificates(t *testing.T) {
	dir := t.TempDir()
	ed, p256 := keygenKinds[0], keygenKinds[1]
	ca := newKeygenCA(t, dir, "ca", ed)
	otherCA := newKeygenCA(t, dir, "other-ca", ed)
	rsaCA := newKeygenCA(t, dir, "rsa-ca", keygenKinds[4])
	userPath := keygen(t, dir, "alice", ed)
	ecPath := keygen(t, dir, "alice-ec", p256)
	strangerPath := keygen(t, dir, "stranger", ed)
	weakPath := keygen(t, dir, "weak", keygenKind{"rsa1024", "rsa", 1024, RS512})
	day := window(-time.Hour, 23*time.Hour)

	type tc struct {
		name string
		// setup returns the Authorization header value; it may trust CAs
		// for users in h's key store.
		auth  func(t *testing.T, h *harness) string
		vopts []VerifierOption
		from  string // client address; "" for 192.0.2.1:1234
		want  error
		kind  string // the wire kind, when it is not ErrorKind's default
	}
	// signed makes a token for user with the key at path and the
	// certificate args give.
	signed := func(c *keygenCA, path, user string, args ...string) func(*testing.T, *harness) string {
		return func(t *testing.T, h *harness) string {
			key := loadCertified(t, path, c.certify(t, path, append([]string{"-I", "alice@example.com", "-z", "7"}, args...)...))
			return "JWT " + h.token(user, key, h.now, nil)
		}
	}
	global := WithTrustedCAs(ca.authority())
	tests := []tc{
		{"accepted", signed(ca, userPath, "alice", "-n", "alice,ops", day), []VerifierOption{global}, "", nil, ""},
		{"accepted ECDSA key", signed(ca, ecPath, "alice", "-n", "alice", day), []VerifierOption{global}, "", nil, ""},
		{"accepted, valid forever", signed(ca, userPath, "alice", "-n", "alice"), []VerifierOption{global}, "", nil, ""},
		{"expired", signed(ca, userPath, "alice", "-n", "alice", window(-48*time.Hour, -24*time.Hour)), []VerifierOption{global}, "", ErrCertExpired, ""},
		{"not yet valid", signed(ca, userPath, "alice", "-n", "alice", window(time.Hour, 2*time.Hour)), []VerifierOption{global}, "", ErrCertExpired, ""},
		{"token time before validity, now inside", func(t *testing.T, h *harness) string {
			key := loadCertified(t, userPath, ca.certify(t, userPath, "-I", "x", "-n", "alice", window(0, time.Hour)))
			return "JWT " + h.token("alice", key, h.now.Add(-10*time.Second), nil)
		}, []VerifierOption{global}, "", ErrCertExpired, ""},
		{"token time inside, now past validity", func(t *testing.T, h *harness) string {
			key := loadCertified(t, userPath, ca.certify(t, userPath, "-I", "x", "-n", "alice", window(-time.Hour, 0)))
			return "JWT " + h.token("alice", key, h.now.Add(-10*time.Second), nil)
		}, []VerifierOption{global}, "", ErrCertExpired, ""},
		{"host certificate", func(t *testing.T, h *harness) string {
			// A Signer refuses to send a host certificate; a client could.
			cert := ca.certify(t, userPath, "-I", "x", "-h", "-n", "alice", day)
			hdr := fmt.Sprintf(`{"alg":"EdDSA","sshcert":%q}`, strings.Fields(string(cert))[1])
			k, _ := KeyFromFile(userPath, WithoutCertificate())
			return "JWT " + craft(t, k, EdDSA, hdr, claimsAt("alice", h.now, "h1"))
		}, []VerifierOption{global}, "", ErrCertType, ""},
		{"principal not the username", signed(ca, userPath, "alice", "-n", "bob,alice2", day), []VerifierOption{global}, "", ErrCertPrincipal, ""},
		{"no principals", signed(ca, userPath, "alice", day), []VerifierOption{global}, "", ErrCertPrincipal, ""},
		{"case of the principal differs", signed(ca, userPath, "alice", "-n", "Alice", day), []VerifierOption{global}, "", ErrCertPrincipal, ""},
		{"CA not trusted", signed(otherCA, userPath, "alice", "-n", "alice", day), []VerifierOption{global}, "", ErrCertUntrusted, "invalid_signature"},
		{"no CA trusted at all", signed(ca, userPath, "alice", "-n", "alice", day), nil, "", ErrCertUntrusted, "invalid_signature"},
		{"CA trusted for another user only", func(t *testing.T, h *harness) string {
			if err := h.keys.SetCertAuthorities("bob", []CertAuthority{ca.authority()}); err != nil {
				t.Fatal(err)
			}
			return signed(ca, userPath, "alice", "-n", "alice,bob", day)(t, h)
		}, nil, "", ErrCertUntrusted, "invalid_signature"},
		{"CA trusted for the user", func(t *testing.T, h *harness) string {
			if err := h.keys.SetCertAuthorities("alice", []CertAuthority{ca.authority()}); err != nil {
				t.Fatal(err)
			}
			return signed(ca, userPath, "alice", "-n", "alice", day)(t, h)
		}, nil, "", nil, ""},
		{"unknown user, no CA anywhere", signed(ca, userPath, "nobody", "-n", "nobody", day), nil, "", ErrUnknownUser, "invalid_signature"},
		{"force-command", signed(ca, userPath, "alice", "-n", "alice", "-O", "force-command=/bin/true", day), []VerifierOption{global}, "", ErrCertOption, ""},
		{"verify-required", signed(ca, userPath, "alice", "-n", "alice", "-O", "verify-required", day), []VerifierOption{global}, "", ErrCertOption, ""},
		{"unknown critical option", signed(ca, userPath, "alice", "-n", "alice", "-O", "critical:foo@example.com=bar", day), []VerifierOption{global}, "", ErrCertOption, ""},
		{"unknown extension is fine", signed(ca, userPath, "alice", "-n", "alice", "-O", "extension:foo@example.com=bar", "-O", "no-pty", day), []VerifierOption{global}, "", nil, ""},
		{"source-address matches", signed(ca, userPath, "alice", "-n", "alice", "-O", "source-address=10.0.0.0/8,192.0.2.1", day), []VerifierOption{global}, "10.1.2.3:5555", nil, ""},
		{"source-address matches an address", signed(ca, userPath, "alice", "-n", "alice", "-O", "source-address=10.0.0.0/8,192.0.2.1", day), []VerifierOption{global}, "", nil, ""},
		{"source-address does not match", signed(ca, userPath, "alice", "-n", "alice", "-O", "source-address=10.0.0.0/8", day), []VerifierOption{global}, "198.51.100.9:443", ErrAddressRefused, ""},
		{"source-address IPv6", signed(ca, userPath, "alice", "-n", "alice", "-O", "source-address=2001:db8::/32", day), []VerifierOption{global}, "[2001:db8::5]:443", nil, ""},
		{"source-address, IPv4-mapped peer", signed(ca, userPath, "alice", "-n", "alice", "-O", "source-address=10.0.0.0/8", day), []VerifierOption{global}, "[::ffff:10.0.0.1]:443", nil, ""},
		{"key not matching the token's signature", func(t *testing.T, h *harness) string {
			cert := ca.certify(t, userPath, "-I", "x", "-n", "alice", day)
			stranger, err := KeyFromFile(strangerPath)
			if err != nil {
				t.Fatal(err)
			}
			fields := strings.Fields(string(cert))
			hdr := fmt.Sprintf(`{"alg":"EdDSA","typ":"JWT","kid":"x","sshcert":%q}`, fields[1])
			return "JWT " + craft(t, stranger, EdDSA, hdr, claimsAt("alice", h.now, "n1"))
		}, []VerifierOption{global}, "", ErrBadSignature, ""},
		{"algorithm that does not fit the certified key", func(t *testing.T, h *harness) string {
			// A P-256 key's certificate on a token signed EdDSA.
			cert := ca.certify(t, ecPath, "-I", "x", "-n", "alice", day)
			hdr := fmt.Sprintf(`{"alg":"EdDSA","sshcert":%q}`, strings.Fields(string(cert))[1])
			edKey, err := KeyFromFile(userPath, WithoutCertificate())
			if err != nil {
				t.Fatal(err)
			}
			return "JWT " + craft(t, edKey, EdDSA, hdr, claimsAt("alice", h.now, "n2"))
		}, []VerifierOption{global}, "", ErrBadAlgorithm, "invalid_signature"},
		{"tampered certificate", func(t *testing.T, h *harness) string {
			cert := ca.certify(t, userPath, "-I", "honest", "-n", "alice", day)
			c, err := parseCertificateText(cert)
			if err != nil {
				t.Fatal(err)
			}
			c.KeyId = "forged" // the CA's signature no longer covers it
			hdr := fmt.Sprintf(`{"alg":"EdDSA","sshcert":%q}`, base64.StdEncoding.EncodeToString(c.Marshal()))
			k, err := KeyFromFile(userPath, WithoutCertificate())
			if err != nil {
				t.Fatal(err)
			}
			return "JWT " + craft(t, k, EdDSA, hdr, claimsAt("alice", h.now, "n3"))
		}, []VerifierOption{global}, "", ErrCertUntrusted, "invalid_signature"},
		{"self-signed certificate naming a trusted CA's key", func(t *testing.T, h *harness) string {
			// The certificate claims the trusted CA but is signed by
			// another key: SignCert replaces SignatureKey, so put it back.
			cert := ca.certify(t, userPath, "-I", "x", "-n", "alice", day)
			c, _ := parseCertificateText(cert)
			_, priv, _ := ed25519.GenerateKey(rand.Reader)
			signer, _ := ssh.NewSignerFromKey(priv)
			trusted := c.SignatureKey
			if err := c.SignCert(rand.Reader, signer); err != nil {
				t.Fatal(err)
			}
			c.SignatureKey = trusted
			hdr := fmt.Sprintf(`{"alg":"EdDSA","sshcert":%q}`, base64.StdEncoding.EncodeToString(c.Marshal()))
			k, _ := KeyFromFile(userPath, WithoutCertificate())
			return "JWT " + craft(t, k, EdDSA, hdr, claimsAt("alice", h.now, "n4"))
		}, []VerifierOption{global}, "", ErrCertUntrusted, "invalid_signature"},
		{"CA signature with SHA-1 (ssh-rsa)", signed(rsaCA, userPath, "alice", "-t", "ssh-rsa", "-n", "alice", day), []VerifierOption{WithTrustedCAs(rsaCA.authority())}, "", ErrCertUntrusted, "invalid_signature"},
		{"RSA CA with rsa-sha2-512", signed(rsaCA, userPath, "alice", "-n", "alice", day), []VerifierOption{WithTrustedCAs(rsaCA.authority())}, "", nil, ""},
		{"certified key too weak", func(t *testing.T, h *harness) string {
			cert := ca.certify(t, weakPath, "-I", "x", "-n", "alice", day)
			hdr := fmt.Sprintf(`{"alg":"RS512","sshcert":%q}`, strings.Fields(string(cert))[1])
			return "JWT " + b64url(hdr) + "." + b64url(claimsAt("alice", h.now, "n5")) + ".AAAA"
		}, []VerifierOption{global}, "", ErrCertType, ""},
		{"header holds a plain key", func(t *testing.T, h *harness) string {
			pub := strings.Fields(string(readFile(t, userPath+".pub")))[1]
			k, _ := KeyFromFile(userPath, WithoutCertificate())
			return "JWT " + craft(t, k, EdDSA, fmt.Sprintf(`{"alg":"EdDSA","sshcert":%q}`, pub), claimsAt("alice", h.now, "n6"))
		}, []VerifierOption{global}, "", ErrMalformed, ""},
		{"header not base64", func(t *testing.T, h *harness) string {
			k, _ := KeyFromFile(userPath, WithoutCertificate())
			return "JWT " + craft(t, k, EdDSA, `{"alg":"EdDSA","sshcert":"!!not base64"}`, claimsAt("alice", h.now, "n7"))
		}, []VerifierOption{global}, "", ErrMalformed, ""},
		{"header not a string", func(t *testing.T, h *harness) string {
			k, _ := KeyFromFile(userPath, WithoutCertificate())
			return "JWT " + craft(t, k, EdDSA, `{"alg":"EdDSA","sshcert":["x"]}`, claimsAt("alice", h.now, "n8"))
		}, []VerifierOption{global}, "", ErrMalformed, ""},
		{"case-variant header name", func(t *testing.T, h *harness) string {
			k, _ := KeyFromFile(userPath, WithoutCertificate())
			return "JWT " + craft(t, k, EdDSA, `{"alg":"EdDSA","sshcert":"AAAA","SSHCert":"AAAA"}`, claimsAt("alice", h.now, "n9"))
		}, []VerifierOption{global}, "", ErrMalformed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.vopts...)
			// alice exists: she has a stored key, not the one certified.
			h.add("alice", loadTestKeys(t).ed2)
			auth := tt.auth(t, h)
			from := tt.from
			if from == "" {
				from = "192.0.2.1:1234"
			}
			id, err := h.verifyFrom(from, auth)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if id.Certificate == nil || id.Certificate.CA != ca.fp && id.Certificate.CA != rsaCA.fp {
					t.Fatalf("Certificate = %+v, want the CA's", id.Certificate)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if strings.Count(err.Error(), "asymjwt: ") != 1 {
				t.Errorf("error %q does not name the package exactly once", err)
			}
			kind := tt.kind
			if kind == "" {
				kind = ErrorKind(tt.want)
			}
			if got := ErrorKind(err); got != kind {
				t.Errorf("ErrorKind = %q, want %q", got, kind)
			}
			for _, part := range strings.Split(strings.TrimPrefix(auth, "JWT "), ".") {
				if len(part) >= 16 && strings.Contains(err.Error(), part[:16]) {
					t.Fatalf("error %q contains part of the token", err)
				}
			}
		})
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestCertAuthorityLines covers cert-authority lines in a user's file:
// principals= and the line's own expiry-time and from=.
func TestCertAuthorityLines(t *testing.T) {
	dir := t.TempDir()
	ed := keygenKinds[0]
	ca := newKeygenCA(t, dir, "ca", ed)
	userPath := keygen(t, dir, "alice", ed)
	caLine := strings.TrimSpace(string(readFile(t, ca.path+".pub")))
	day := window(-time.Hour, 23*time.Hour)

	tests := []struct {
		name       string
		lines      string
		principals string
		from       string
		want       error
	}{
		{"plain cert-authority", "cert-authority " + caLine, "alice", "", nil},
		{"cert-authority, username not a principal", "cert-authority " + caLine, "bob", "", ErrCertPrincipal},
		{"principals= matches a certificate principal", `cert-authority,principals="ops,admins" ` + caLine, "deploy,ops", "", nil},
		{"principals= matches none", `cert-authority,principals="admins" ` + caLine, "alice,ops", "", ErrCertPrincipal},
		{"principals= case differs", `cert-authority,principals="OPS" ` + caLine, "ops", "", ErrCertPrincipal},
		{"expiry-time past", `cert-authority,expiry-time="20261101Z" ` + caLine, "alice", "", ErrKeyExpired},
		{"expiry-time ahead", `cert-authority,expiry-time="20270101Z" ` + caLine, "alice", "", nil},
		{"from= matches", `cert-authority,from="192.0.2.0/24" ` + caLine, "alice", "", nil},
		{"from= does not match", `cert-authority,from="10.0.0.0/8" ` + caLine, "alice", "", ErrAddressRefused},
		{"two lines, the second allows", `cert-authority,from="10.0.0.0/8" ` + caLine + "\n" + `cert-authority,principals="ops" ` + caLine, "ops", "", nil},
		// The line is skipped, so alice has neither keys nor CAs.
		{"command= makes the line unusable", `cert-authority,command="/bin/true" ` + caLine, "alice", "", ErrUnknownUser},
		{"the CA's own key never signs as the user", "cert-authority " + caLine, "alice", "ca-key", ErrUnknownUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ak, errs := ParseAuthorizedKeys([]byte(tt.lines))
			if len(ak.Keys) != 0 {
				t.Fatalf("CA lines gave user keys: %v", ak.Keys)
			}
			if strings.Contains(tt.name, "command=") != (len(errs) == 1) {
				t.Fatalf("errors %v", errs)
			}
			if err := h.keys.SetCertAuthorities("alice", ak.Authorities); err != nil {
				t.Fatal(err)
			}
			var auth string
			if tt.from == "ca-key" {
				caKey, err := KeyFromFile(ca.path)
				if err != nil {
					t.Fatal(err)
				}
				auth = "JWT " + h.token("alice", caKey, h.now, nil)
			} else {
				key := loadCertified(t, userPath, ca.certify(t, userPath, "-I", "alice-laptop", "-n", tt.principals, day))
				auth = "JWT " + h.token("alice", key, h.now, nil)
			}
			_, err := h.verifyFrom("192.0.2.1:1234", auth)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestCertificateEveryKeyType signs with every key type ssh-keygen makes,
// certified by a CA of every type, from the key file and its -cert.pub as
// ssh -i would find them, through the Transport to a verifying server.
func TestCertificateEveryKeyType(t *testing.T) {
	dir := t.TempDir()
	paths := map[string]string{}
	for _, kind := range keygenKinds {
		paths[kind.name] = keygen(t, dir, "id_"+kind.name, kind)
	}
	for _, caKind := range []keygenKind{keygenKinds[0], keygenKinds[2], keygenKinds[4]} {
		ca := newKeygenCA(t, dir, "ca-"+caKind.name, caKind)
		for _, kind := range keygenKinds {
			t.Run(caKind.name+"/"+kind.name, func(t *testing.T) {
				path := paths[kind.name]
				ca.certify(t, path, "-I", "job-"+kind.name, "-z", "12345678901", "-n", "svc", "-V", "-5m:+1h")
				key, err := KeyFromFile(path) // picks up path-cert.pub
				if err != nil {
					t.Fatal(err)
				}
				if ck, ok := key.(CertifiedKey); !ok || ck.Certificate() == nil {
					t.Fatal("KeyFromFile did not pick up the certificate")
				}
				signer, err := NewSigner("svc", key)
				if err != nil {
					t.Fatal(err)
				}
				if signer.Algorithm() != kind.alg {
					t.Errorf("Algorithm = %s, want %s", signer.Algorithm(), kind.alg)
				}
				var logBuf bytes.Buffer
				v, err := NewVerifier(NewMemoryKeyStore(), WithTrustedCAs(ca.authority()), WithLogger(slog.New(slog.NewTextHandler(&logBuf, nil))))
				if err != nil {
					t.Fatal(err)
				}
				r := httptest.NewRequest("GET", "http://api.example.com/x", nil)
				tok, err := signer.Sign(context.Background(), r)
				if err != nil {
					t.Fatal(err)
				}
				r.Header.Set("Authorization", "JWT "+tok)
				id, err := v.Verify(r)
				if err != nil {
					t.Fatal(err)
				}
				if id.Certificate == nil || id.Certificate.KeyID != "job-"+kind.name || id.Certificate.Serial != 12345678901 || id.Certificate.CA != ca.fp {
					t.Fatalf("Certificate = %+v", id.Certificate)
				}
				if id.Key.Fingerprint != signer.KeyID() {
					t.Errorf("Key = %s, want the certified key %s", id.Key.Fingerprint, signer.KeyID())
				}
				log := logBuf.String()
				for _, want := range []string{"request accepted", "cert_key_id=job-" + kind.name, "cert_serial=12345678901", "user=svc"} {
					if !strings.Contains(log, want) {
						t.Errorf("log lacks %q:\n%s", want, log)
					}
				}
				if strings.Contains(log, tok[:20]) {
					t.Error("the token is in the log")
				}
			})
		}
	}
}

// TestCertificateTokenWithStoredKey: a token that carries a certificate and
// whose key the user also has stored verifies as the stored key, whatever
// the certificate says; the original library, which ignores the header
// parameter, would do the same.
func TestCertificateTokenWithStoredKey(t *testing.T) {
	dir := t.TempDir()
	ca := newKeygenCA(t, dir, "ca", keygenKinds[0])
	path := keygen(t, dir, "alice", keygenKinds[0])
	key := loadCertified(t, path, ca.certify(t, path, "-I", "x", "-n", "someone-else", window(-48*time.Hour, -24*time.Hour)))
	h := newHarness(t)
	h.add("alice", key)
	id, err := h.verify("GET", "http://api.example.com/v1/items", "JWT "+h.token("alice", key, h.now, nil))
	if err != nil {
		t.Fatal(err)
	}
	if id.Certificate != nil {
		t.Errorf("Certificate = %+v, want nil for a stored key", id.Certificate)
	}
}

// TestCertificateCache checks that a certificate's CA signature is checked
// once, and that trust is still decided on every token.
func TestCertificateCache(t *testing.T) {
	dir := t.TempDir()
	ca := newKeygenCA(t, dir, "ca", keygenKinds[0])
	path := keygen(t, dir, "alice", keygenKinds[0])
	key := loadCertified(t, path, ca.certify(t, path, "-I", "x", "-n", "alice", window(-time.Hour, time.Hour)))
	h := newHarness(t)
	if err := h.keys.SetCertAuthorities("alice", []CertAuthority{ca.authority()}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := h.verify("GET", "http://api.example.com/v1/items", "JWT "+h.token("alice", key, h.now.Add(time.Duration(i)*time.Second), nil)); err != nil {
			t.Fatal(err)
		}
		// Until the CA's signature has been checked, with the first
		// token, the certified key could be anyone's: it is not kept
		// decoded. With the certificate cached, it is.
		if n, want := h.v.ed.Len(), min(i, 1); n != want {
			t.Errorf("after token %d: %d decoded Ed25519 keys cached, want %d", i+1, n, want)
		}
	}
	if n := len(h.v.certs.m); n != 1 {
		t.Fatalf("%d cached certificates, want 1", n)
	}
	// The CA is no longer trusted: the cached certificate does not help.
	if err := h.keys.SetCertAuthorities("alice", nil); err != nil {
		t.Fatal(err)
	}
	h.add("alice", loadTestKeys(t).ed) // she still exists
	_, err := h.verify("GET", "http://api.example.com/v1/items", "JWT "+h.token("alice", key, h.now.Add(5*time.Second), nil))
	if !errors.Is(err, ErrCertUntrusted) {
		t.Fatalf("err = %v, want ErrCertUntrusted", err)
	}
}

func TestWithTrustedCAsRefuses(t *testing.T) {
	ed := loadTestKeys(t).ed.Public()
	for _, tt := range []struct {
		name string
		cas  []CertAuthority
	}{
		{"none", nil},
		{"principals", []CertAuthority{{Key: ed, Principals: []string{"ops"}}}},
		{"nil key", []CertAuthority{{}}},
		{"wrong fingerprint", []CertAuthority{{Key: ed, Fingerprint: "SHA256:x"}}},
		{"hostname in from", []CertAuthority{{Key: ed, Restrictions: KeyRestrictions{From: []string{"*.example.com"}}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewVerifier(NewMemoryKeyStore(), WithTrustedCAs(tt.cas...))
			if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "WithTrustedCAs") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// FuzzCertificateParam feeds the certificate header parameter's parser:
// it must never panic, and what it accepts is a certificate of a key tokens
// are signed with.
func FuzzCertificateParam(f *testing.F) {
	_, caPriv, _ := ed25519.GenerateKey(rand.Reader)
	caSigner, _ := ssh.NewSignerFromKey(caPriv)
	for _, k := range []Key{loadTestKeys(f).ed, loadTestKeys(f).p256, loadTestKeys(f).rsa} {
		pub, _ := ssh.NewPublicKey(k.Public())
		for _, opts := range []map[string]string{nil, {"source-address": "10.0.0.0/8,::1"}, {"force-command": "x"}} {
			c := &ssh.Certificate{Key: pub, CertType: ssh.UserCert, KeyId: "id", Serial: 3, ValidPrincipals: []string{"a", "b"}, ValidBefore: ssh.CertTimeInfinity}
			c.CriticalOptions = opts
			if err := c.SignCert(rand.Reader, caSigner); err != nil {
				f.Fatal(err)
			}
			f.Add([]byte(base64.StdEncoding.EncodeToString(c.Marshal())))
		}
	}
	for _, s := range []string{"", "AAAA", "====", "AAAAC3NzaC1lZDI1NTE5", "!!", "AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29t"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b64 []byte) {
		c, err := parseCertParam(b64)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrCertType) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if checkPublicKey(c.pub) != nil || c.fp == "" || c.caFP == "" {
			t.Fatalf("accepted an unusable certificate: %+v", c)
		}
		if c.optionErr == nil && c.cert.CriticalOptions["source-address"] != "" && c.sourceAddress == nil {
			t.Fatal("source-address read as none")
		}
		_ = c.checkSourceAddress(netip.MustParseAddr("10.1.1.1"))
		_, _ = c.checkValidity(1e9, testNow)
	})
}
