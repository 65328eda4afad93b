package asymjwt

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestDirKeyStoreSymlinks: a symbolic link is followed only when it is
// relative and stays in the key directory.
func TestDirKeyStoreSymlinks(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	dir := filepath.Join(root, "keys")
	ed := ksFixture(t, "openssh_ed25519.pub.ssh")
	for _, name := range []string{"outside.pub", "keys/alice.pub", "keys/sub/carol.pub", "other/escaped.pub", "keys/sub/deeper/x.pub"} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(ed+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"bob.pub":        "alice.pub",                        // inside: followed
		"carol.pub":      "sub/carol.pub",                    // inside, a subdirectory
		"dave.pub":       "sub/../alice.pub",                 // inside after ".."
		"erin.pub":       "../outside.pub",                   // outside
		"frank.pub":      filepath.Join(root, "outside.pub"), // absolute, outside
		"grace.pub":      filepath.Join(dir, "alice.pub"),    // absolute, even inside
		"heidi.pub":      "erin.pub",                         // a link to a link that leaves
		"ivan.pub":       "missing.pub",                      // dangling, inside
		"judy.pub":       "../missing.pub",                   // dangling, outside
		"mallory.pub":    "otherdir/escaped.pub",             // through a directory link that leaves
		"otherdir":       "../other",
		"niaj.pub":       "sub/deeper/../../alice.pub", // inside, winding
		"olivia.pub":     "../keys/alice.pub",          // leaves and comes back: os.Root refuses it
		"sub/trent.pub":  "../alice.pub",
		"sub/victor.pub": "../../outside.pub",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Skipf("cannot make symbolic links here: %v", err)
		}
	}
	s, err := NewDirKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	fpEd := ksFingerprint(t, "openssh_ed25519.pub.ssh")
	for _, tt := range []struct {
		user string
		keys bool
		err  error
	}{
		{"alice", true, nil},
		{"bob", true, nil},
		{"carol", true, nil},
		{"dave", true, nil},
		{"niaj", true, nil},
		{"erin", false, ErrOutsideKeyDir},
		{"frank", false, ErrOutsideKeyDir},
		{"grace", false, ErrOutsideKeyDir},
		{"heidi", false, ErrOutsideKeyDir},
		{"ivan", false, nil},
		{"judy", false, ErrOutsideKeyDir},
		{"mallory", false, ErrOutsideKeyDir},
		{"olivia", false, ErrOutsideKeyDir},
	} {
		t.Run(tt.user, func(t *testing.T) {
			keys, err := s.PublicKeys(ctx, tt.user)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || keys != nil {
					t.Fatalf("= %v, %v; want %v", keys, err, tt.err)
				}
				var ke *KeyError
				if !errors.As(err, &ke) || ke.Path != filepath.Join(dir, tt.user+".pub") {
					t.Errorf("error %v does not name the file", err)
				}
				if ErrorKind(errorf("%w: key store: %w", ErrUnavailable, err)) != "unavailable" {
					t.Error("not unavailable to the verifier")
				}
				return
			}
			if err != nil || (ksFingerprints(keys) == fpEd) != tt.keys {
				t.Fatalf("= %v, %v; want keys %v", keys, err, tt.keys)
			}
		})
	}
}

// foldFS is a key directory as a case-insensitive file system shows it:
// "Alice.pub" opens alice.pub, while the listing has the names as created.
type foldFS struct {
	fs.FS
	listings *atomic.Int32
}

func (f foldFS) real(name string) string {
	if name == "." {
		return name
	}
	entries, err := fs.ReadDir(f.FS, ".")
	if err != nil {
		return name
	}
	for _, e := range entries {
		if strings.EqualFold(e.Name(), name) {
			return e.Name()
		}
	}
	return name
}

func (f foldFS) Open(name string) (fs.File, error) {
	if name == "." {
		f.listings.Add(1)
	}
	return f.FS.Open(f.real(name))
}

func (f foldFS) Stat(name string) (fs.FileInfo, error) { return fs.Stat(f.FS, f.real(name)) }

func (f foldFS) Lstat(name string) (fs.FileInfo, error) { return fs.Lstat(f.FS, f.real(name)) }

func (f foldFS) ReadLink(name string) (string, error) { return fs.ReadLink(f.FS, f.real(name)) }

// TestDirKeyStoreCaseInsensitive simulates a case-insensitive file system
// (Linux file systems used by CI are case-sensitive): "Alice" must not read
// alice.pub. TestDirKeyStoreCaseInsensitiveReal runs where the temporary
// directory really folds case.
func TestDirKeyStoreCaseInsensitive(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ed := ksFixture(t, "openssh_ed25519.pub.ssh")
	if err := os.WriteFile(filepath.Join(dir, "alice.pub"), []byte(ed+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Bob.pub"), []byte(ed+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	s, err := NewDirKeyStore(dir, WithLogger(slog.New(slog.NewTextHandler(&logBuf, nil))))
	if err != nil {
		t.Fatal(err)
	}
	var listings atomic.Int32
	s.openDir = func(dir string) (fs.FS, io.Closer, error) {
		fsys, closer, err := openRootFS(dir)
		if err != nil {
			return nil, nil, err
		}
		return foldFS{fsys, &listings}, closer, nil
	}
	// The simulation folds case, as such a file system would.
	if _, err := fs.Stat(foldFS{os.DirFS(dir), &listings}, "ALICE.pub"); err != nil {
		t.Fatalf("simulation does not fold case: %v", err)
	}
	for _, tt := range []struct {
		user string
		keys bool
	}{
		{"alice", true}, {"Alice", false}, {"ALICE", false}, {"Bob", true}, {"bob", false},
	} {
		for range 2 { // the second time from the cache
			keys, err := s.PublicKeys(ctx, tt.user)
			if err != nil || (len(keys) == 1) != tt.keys {
				t.Errorf("%s: %v, %v; want keys %v", tt.user, keys, err, tt.keys)
			}
			cas, err := s.CertAuthorities(ctx, tt.user)
			if err != nil || cas != nil {
				t.Errorf("%s: CAs %v, %v", tt.user, cas, err)
			}
		}
	}
	if n := listings.Load(); n != 5 {
		t.Errorf("directory listed %d times, want once per user (cached while unchanged)", n)
	}
	if got := strings.Count(logBuf.String(), "differs from the username"); got != 3 {
		t.Errorf("%d warnings, want one per folded name:\n%s", got, logBuf.String())
	}
}

func TestDirKeyStoreCaseInsensitiveReal(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "probe"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "PROBE")); err != nil {
		t.Skip("the temporary directory is case-sensitive; TestDirKeyStoreCaseInsensitive simulates one")
	}
	if err := os.WriteFile(filepath.Join(dir, "alice.pub"), []byte(ksFixture(t, "openssh_ed25519.pub.ssh")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewDirKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := s.PublicKeys(context.Background(), "Alice"); keys != nil || err != nil {
		t.Fatalf("Alice = %v, %v; want no keys", keys, err)
	}
	if keys, err := s.PublicKeys(context.Background(), "alice"); len(keys) != 1 || err != nil {
		t.Fatalf("alice = %v, %v", keys, err)
	}
}

func TestDirKeyStoreCertAuthorities(t *testing.T) {
	dir := t.TempDir()
	ed := ksFixture(t, "openssh_ed25519.pub.ssh")
	p256 := ksFixture(t, "openssh_p256.pub.ssh")
	text := p256 + "\n" + `cert-authority,principals="ops" ` + ed + "\n"
	if err := os.WriteFile(filepath.Join(dir, "alice.pub"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewDirKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := s.PublicKeys(context.Background(), "alice")
	if err != nil || ksFingerprints(keys) != ksFingerprint(t, "openssh_p256.pub.ssh") {
		t.Fatalf("keys = %v, %v; want only the plain key", keys, err)
	}
	cas, err := s.CertAuthorities(context.Background(), "alice")
	if err != nil || len(cas) != 1 || cas[0].Fingerprint != ksFingerprint(t, "openssh_ed25519.pub.ssh") || cas[0].Principals[0] != "ops" {
		t.Fatalf("CAs = %+v, %v", cas, err)
	}
	cas[0].Principals[0] = "changed"
	again, _ := s.CertAuthorities(context.Background(), "alice")
	if again[0].Principals[0] != "ops" {
		t.Error("caller's change reached the cache")
	}
}
