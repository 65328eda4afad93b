package asymjwt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt/internal/testenv"
	"golang.org/x/crypto/ssh"
)

// TestRevocationText covers the text list: keys by fingerprint and by
// line, serials and key IDs; a stored key, a certified key and a CA.
func TestRevocationText(t *testing.T) {
	dir := t.TempDir()
	ed := keygenKinds[0]
	ca := newKeygenCA(t, dir, "ca", ed)
	userPath := keygen(t, dir, "alice", ed)
	other := keygen(t, dir, "other", ed)
	day := window(-time.Hour, 23*time.Hour)
	userFP := ssh.FingerprintSHA256(readSSHPub(t, userPath+".pub"))
	userLine := strings.TrimSpace(string(readFile(t, userPath+".pub")))

	tests := []struct {
		name   string
		list   string
		stored bool // alice's key is stored; else it comes with a certificate
		serial string
		id     string
		want   error
	}{
		{"empty list", "# nothing revoked\n\n", true, "1", "x", nil},
		{"stored key by fingerprint", userFP + "\n", true, "1", "x", ErrRevoked},
		{"stored key by hash:", "hash: " + userFP + "\n", true, "1", "x", ErrRevoked},
		{"stored key by its line", "# gone\n" + userLine + "\n", true, "1", "x", ErrRevoked},
		{"another key", ssh.FingerprintSHA256(readSSHPub(t, other+".pub")) + "\n", true, "1", "x", nil},
		{"certified key by fingerprint", userFP + "\n", false, "1", "x", ErrRevoked},
		{"the CA", ca.fp + "\n", false, "1", "x", ErrRevoked},
		{"serial", "serial:7\n", false, "7", "x", ErrRevoked},
		{"serial with space", "serial: 7\n", false, "7", "x", ErrRevoked},
		{"serial range", "serial: 5-9\n", false, "9", "x", ErrRevoked},
		{"serial outside the range", "serial:5-9\n", false, "10", "x", nil},
		{"serial of a stored key's token is not a thing", "serial:1\n", true, "1", "x", nil},
		{"key ID", "id:job-7\n", false, "1", "job-7", ErrRevoked},
		{"another key ID", "id:job-7\n", false, "1", "job-8", nil},
		{"serial 0 is never revoked by serial", "serial:1-5\n", false, "0", "x", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "revoked")
			if err := os.WriteFile(path, []byte(tt.list), 0o644); err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, WithRevocationFile(path), WithTrustedCAs(ca.authority()))
			key, err := KeyFromFile(userPath, WithoutCertificate())
			if err != nil {
				t.Fatal(err)
			}
			if tt.stored {
				h.add("alice", key)
			} else {
				h.add("alice", loadTestKeys(t).ed)
				key = loadCertified(t, userPath, ca.certify(t, userPath, "-I", tt.id, "-z", tt.serial, "-n", "alice", day))
			}
			_, err = h.verify("GET", "http://api.example.com/v1/items", "JWT "+h.token("alice", key, h.now, nil))
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want != nil && ErrorKind(err) != "revoked" {
				t.Errorf("ErrorKind = %q", ErrorKind(err))
			}
		})
	}
}

func TestRevocationTextErrors(t *testing.T) {
	for _, list := range []string{
		"garbage\n",
		"SHA256:tooshort\n",
		"serial:0\n",
		"serial:x\n",
		"serial:9-5\n",
		"id:\n",
		"ssh-ed25519 AAAAbroken\n",
	} {
		t.Run(strings.TrimSpace(list), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "revoked")
			if err := os.WriteFile(path, []byte("# ok\n"+list), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := NewVerifier(NewMemoryKeyStore(), WithRevocationFile(path))
			if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "line 2") {
				t.Fatalf("err = %v, want an option error naming line 2", err)
			}
		})
	}
	if _, err := NewVerifier(NewMemoryKeyStore(), WithRevocationFile(filepath.Join(t.TempDir(), "missing"))); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("missing file: %v", err)
	}
}

// TestRevocationReload: the list is read again when it changes, and a list
// that cannot be read refuses every request (503) until it can.
func TestRevocationReload(t *testing.T) {
	k := loadTestKeys(t)
	path := filepath.Join(t.TempDir(), "revoked")
	write := func(content string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write("# none\n", t0)
	h := newHarness(t, WithRevocationFile(path))
	h.add("alice", k.ed)
	check := func(want error) {
		t.Helper()
		h.now = h.now.Add(time.Second)
		_, err := h.verify("GET", "http://api.example.com/v1/items", "JWT "+h.token("alice", k.ed, h.now, nil))
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Fatalf("err = %v, want %v", err, want)
		}
		if err != nil && strings.Count(err.Error(), "asymjwt: ") != 1 {
			t.Fatalf("error %q does not name the package exactly once", err)
		}
	}
	check(nil)
	fp, _ := Fingerprint(k.ed.Public())
	write(fp+"\n", t0.Add(time.Second))
	check(ErrRevoked)
	write("# forgiven\n", t0.Add(2*time.Second))
	check(nil)
	write("not a list\n", t0.Add(3*time.Second))
	check(ErrUnavailable)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	check(ErrUnavailable)
	write("\n", t0.Add(4*time.Second))
	check(nil)
}

// TestRevocationKRL checks KRLs made by ssh-keygen -k against ssh-keygen
// -Q's own answer, for certificates and keys revoked every way a KRL can.
func TestRevocationKRL(t *testing.T) {
	sshKeygen := testenv.LookPath(t, "ssh-keygen")
	dir := t.TempDir()
	ed := keygenKinds[0]
	ca := newKeygenCA(t, dir, "ca", ed)
	ca2 := newKeygenCA(t, dir, "ca2", ed)
	caRevoked := newKeygenCA(t, dir, "ca-revoked", ed)
	user := keygen(t, dir, "user", ed)
	bySHA1 := keygen(t, dir, "by-sha1", ed)
	bySHA256 := keygen(t, dir, "by-sha256", ed)
	byHash := keygen(t, dir, "by-hash", ed)
	byKey := keygen(t, dir, "by-key", ed)
	fine := keygen(t, dir, "fine", ed)

	var spec strings.Builder
	for s := 1000; s < 1300; s += 3 { // scattered: ssh-keygen writes a bitmap
		fmt.Fprintf(&spec, "serial: %d\n", s)
	}
	spec.WriteString("serial: 7\nserial: 20-30\nserial: 100000-200000\nid: job-revoked\nid: \"quoted id\"\n")
	specPath := filepath.Join(dir, "spec")
	if err := os.WriteFile(specPath, []byte(spec.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	keysSpec := "sha1: " + string(readFile(t, bySHA1+".pub")) +
		"sha256: " + string(readFile(t, bySHA256+".pub")) +
		"hash: " + ssh.FingerprintSHA256(readSSHPub(t, byHash+".pub")) + "\n" +
		"key: " + string(readFile(t, byKey+".pub")) +
		"key: " + string(readFile(t, caRevoked.path+".pub"))
	keysPath := filepath.Join(dir, "keys-spec")
	if err := os.WriteFile(keysPath, []byte(keysSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	krl := filepath.Join(dir, "revoked.krl")
	runKeygen(t, "-q", "-k", "-f", krl, "-s", ca.path+".pub", specPath)
	runKeygen(t, "-q", "-k", "-u", "-f", krl, "-s", ca2.path+".pub", specPath)
	runKeygen(t, "-q", "-k", "-u", "-f", krl, keysPath)

	data := readFile(t, krl)
	list, err := parseRevocations(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.byCA[ca.fp].bitmaps) == 0 || len(list.sha1) != 1 {
		t.Fatalf("expected bitmap and SHA-1 sections: %+v", list)
	}

	type cert struct {
		ca     *keygenCA
		key    string
		serial uint64
		id     string
	}
	var certs []cert
	for _, s := range []uint64{0, 1, 6, 7, 8, 19, 20, 25, 30, 31, 999, 1000, 1001, 1003, 1297, 1299, 1300, 99999, 100000, 150000, 200000, 200001, 1 << 40} {
		certs = append(certs, cert{ca, fine, s, "job"})
	}
	certs = append(certs,
		cert{ca, fine, 0, "job-revoked"}, cert{ca, fine, 5, "quoted id"}, cert{ca, fine, 5, "job-revoked2"},
		cert{ca2, fine, 7, "job"}, cert{ca2, fine, 1003, "job-revoked"}, cert{ca2, fine, 8, "ok"},
		cert{caRevoked, fine, 5, "job"},
		cert{ca, bySHA1, 5, "job"}, cert{ca, bySHA256, 5, "job"}, cert{ca, byHash, 5, "job"}, cert{ca, byKey, 5, "job"}, cert{ca, user, 5, "job"},
	)
	revokedCount := 0
	for i, c := range certs {
		name := fmt.Sprintf("%d-%s-%s-%d-%s", i, filepath.Base(c.ca.path), filepath.Base(c.key), c.serial, c.id)
		t.Run(name, func(t *testing.T) {
			certPath := filepath.Join(t.TempDir(), "k")
			runKeygen(t, "-q", "-s", c.ca.path, "-I", c.id, "-z", fmt.Sprint(c.serial), "-n", "alice", c.key+".pub")
			if err := os.Rename(c.key+certFileSuffix, certPath+certFileSuffix); err != nil {
				t.Fatal(err)
			}
			certText := readFile(t, certPath+certFileSuffix)
			want := exec.Command(sshKeygen, "-Q", "-f", krl, certPath+certFileSuffix).Run() != nil
			parsed, err := parseCertParam([]byte(strings.Fields(string(certText))[1]))
			if err != nil {
				t.Fatal(err)
			}
			why := list.certRevoked(parsed)
			if (why != "") != want {
				t.Fatalf("revoked = %q, ssh-keygen -Q says revoked=%v", why, want)
			}
			if want {
				revokedCount++
			}
		})
	}
	for _, key := range []string{bySHA1, bySHA256, byHash, byKey, fine, caRevoked.path} {
		pub := readSSHPub(t, key+".pub")
		want := exec.Command(sshKeygen, "-Q", "-f", krl, key+".pub").Run() != nil
		got := list.keyRevoked(ssh.FingerprintSHA256(pub), pub.Marshal)
		if got != want {
			t.Errorf("%s: revoked = %v, ssh-keygen -Q says %v", filepath.Base(key), got, want)
		}
	}
	if revokedCount < 10 || revokedCount == len(certs) {
		t.Errorf("%d of %d certificates revoked: the test does not discriminate", revokedCount, len(certs))
	}

	// Through a Verifier, reading the KRL file.
	h := newHarness(t, WithRevocationFile(krl), WithTrustedCAs(ca.authority()))
	h.add("alice", loadTestKeys(t).ed)
	key := loadCertified(t, fine, ca.certify(t, fine, "-I", "job-revoked", "-z", "1", "-n", "alice"))
	if _, err := h.verify("GET", "http://api.example.com/v1/items", "JWT "+h.token("alice", key, h.now, nil)); !errors.Is(err, ErrRevoked) {
		t.Fatalf("err = %v, want ErrRevoked", err)
	}
}

// krlBuilder writes KRLs by hand, for edge cases and fuzz seeds.
type krlBuilder struct{ b []byte }

func newKRL() *krlBuilder {
	k := &krlBuilder{b: []byte(krlMagic)}
	k.u32(1)
	k.u64(1)
	k.u64(1700000000)
	k.u64(0)
	k.str(nil)
	k.str([]byte("comment"))
	return k
}

func (k *krlBuilder) u32(v uint32) { k.b = binary.BigEndian.AppendUint32(k.b, v) }
func (k *krlBuilder) u64(v uint64) { k.b = binary.BigEndian.AppendUint64(k.b, v) }
func (k *krlBuilder) str(s []byte) { k.u32(uint32(len(s))); k.b = append(k.b, s...) }
func (k *krlBuilder) section(typ byte, body []byte) *krlBuilder {
	k.b = append(k.b, typ)
	k.str(body)
	return k
}

// certSection is a KRL certificate section for caKey (nil: any CA).
func certSection(caKey []byte, subs ...[]byte) []byte {
	s := &krlBuilder{}
	s.str(caKey)
	s.str(nil)
	for _, sub := range subs {
		s.b = append(s.b, sub...)
	}
	return s.b
}

func certSub(typ byte, body []byte) []byte {
	s := &krlBuilder{b: []byte{typ}}
	s.str(body)
	return s.b
}

func u64s(vs ...uint64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

func TestKRLEdges(t *testing.T) {
	ids := &krlBuilder{}
	ids.str([]byte("any-ca-id"))
	bitmap := &krlBuilder{b: u64s(64)}
	bitmap.str([]byte{0x05}) // serials 64 and 66
	good := newKRL().section(krlSectionCertificates, certSection(nil,
		certSub(krlCertKeyID, ids.b),
		certSub(krlCertSerialBitmap, bitmap.b),
		certSub(krlCertSerialList, u64s(3, 9)),
	)).section(krlSectionSignature, append(append([]byte{0, 0, 0, 1, 'k'}, 0, 0, 0, 1), 's')).b
	list, err := parseRevocations(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		serial uint64
		id     string
		want   bool
	}{
		{1, "any-ca-id", true}, {64, "x", true}, {65, "x", false}, {66, "x", true}, {3, "x", true}, {9, "x", true}, {10, "x", false}, {0, "x", false},
	} {
		c := &ssh.Certificate{Serial: tt.serial, KeyId: tt.id}
		if got := list.any.revokes(c) != ""; got != tt.want {
			t.Errorf("serial %d id %q: revoked %v", tt.serial, tt.id, got)
		}
	}
	for name, bad := range map[string][]byte{
		"version 2":               append([]byte(krlMagic), 0, 0, 0, 2),
		"truncated header":        []byte(krlMagic + "\x00\x00"),
		"unknown section":         newKRL().section(9, nil).b,
		"unknown cert section":    newKRL().section(krlSectionCertificates, certSection(nil, certSub(0x30, nil))).b,
		"section after signature": newKRL().section(krlSectionSignature, []byte{0, 0, 0, 0, 0, 0, 0, 0}).section(krlSectionExplicitKey, nil).b,
		"bad range":               newKRL().section(krlSectionCertificates, certSection(nil, certSub(krlCertSerialRange, u64s(9, 3)))).b,
		"short serial list":       newKRL().section(krlSectionCertificates, certSection(nil, certSub(krlCertSerialList, []byte{1, 2, 3}))).b,
		"SHA-256 of 31 bytes":     newKRL().section(krlSectionFingerprintSHA256, append([]byte{0, 0, 0, 31}, bytes.Repeat([]byte{1}, 31)...)).b,
		"string past the end":     newKRL().section(krlSectionExplicitKey, []byte{0, 0, 1, 0}).b,
		"negative bitmap":         newKRL().section(krlSectionCertificates, certSection(nil, certSub(krlCertSerialBitmap, append(u64s(0), 0, 0, 0, 1, 0x80)))).b,
	} {
		if _, err := parseRevocations(bad); !errors.Is(err, ErrKeyFormat) {
			t.Errorf("%s: err = %v, want ErrKeyFormat", name, err)
		}
	}
}

// FuzzParseRevocations feeds KRLs and text lists to the revocation parser.
func FuzzParseRevocations(f *testing.F) {
	ids := &krlBuilder{}
	ids.str([]byte("id"))
	bitmap := &krlBuilder{b: u64s(64)}
	bitmap.str([]byte{0x05, 0xff})
	f.Add(newKRL().section(krlSectionCertificates, certSection([]byte("ca-key"),
		certSub(krlCertKeyID, ids.b), certSub(krlCertSerialBitmap, bitmap.b),
		certSub(krlCertSerialList, u64s(3, 9)), certSub(krlCertSerialRange, u64s(10, 20)),
	)).section(krlSectionExplicitKey, []byte{0, 0, 0, 1, 'k'}).
		section(krlSectionFingerprintSHA1, append([]byte{0, 0, 0, 20}, make([]byte, 20)...)).
		section(krlSectionFingerprintSHA256, append([]byte{0, 0, 0, 32}, make([]byte, 32)...)).b)
	f.Add([]byte(krlMagic))
	f.Add([]byte("# list\nSHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nserial: 5-9\nid: x\n"))
	f.Add([]byte("serial:18446744073709551615\nhash: SHA256:x\n"))
	if data, err := os.ReadFile(keyPath("openssh_ed25519.pub.ssh")); err == nil {
		f.Add(data)
	}
	cert := &ssh.Certificate{Serial: 66, KeyId: "id"}
	f.Fuzz(func(t *testing.T, data []byte) {
		list, err := parseRevocations(data)
		if err != nil {
			if !errors.Is(err, ErrKeyFormat) {
				t.Fatalf("error without ErrKeyFormat: %v", err)
			}
			return
		}
		for _, r := range list.byCA {
			_ = r.revokes(cert)
		}
		_ = list.any.revokes(cert)
		_ = list.keyRevoked("SHA256:x", func() []byte { return []byte("k") })
	})
}

// TestRevocationConcurrent reloads the list under concurrent checks.
func TestRevocationConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "revoked")
	if err := os.WriteFile(path, []byte("serial:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &revocationFile{path: path}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			tmp := path + ".tmp"
			if err := os.WriteFile(tmp, fmt.Appendf(nil, "serial:%d\n", i%5+1), 0o644); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := f.current(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	<-done
}
