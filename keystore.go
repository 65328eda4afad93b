package asymjwt

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/asymjwt/asymjwt/internal/keyformat"
	"golang.org/x/crypto/ssh"
)

// PublicKey is one public key a user may sign with.
type PublicKey struct {
	// Key is *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	Key crypto.PublicKey
	// Fingerprint is the key's SHA-256 fingerprint (see [Fingerprint]); a
	// token's "kid" is compared with it.
	Fingerprint string
	// Comment is the authorized_keys comment or the file it came from; it is
	// for logs and may be empty.
	Comment string
}

// KeyStore gives the public keys of a user. Implementations must be safe for
// concurrent use. A user without keys is reported as an empty slice and a nil
// error; an error means the store could not answer, and the verifier refuses
// the request as unavailable.
type KeyStore interface {
	PublicKeys(ctx context.Context, username string) ([]PublicKey, error)
}

var (
	_ KeyStore = (*MemoryKeyStore)(nil)
	_ KeyStore = (*DirKeyStore)(nil)
)

// ParsePublicKeys parses text that mixes authorized_keys lines and PEM public
// keys ("PUBLIC KEY", PKIX; "RSA PUBLIC KEY", PKCS#1), as a key directory file
// or an ~/.ssh/authorized_keys file holds them.
//
// Blank lines, "#" comments and CRLF line ends are allowed; authorized_keys
// options before the key type are accepted and ignored (they are not
// enforced), except "cert-authority": such a line names a CA, whose key must
// never verify tokens as the user's own, and is skipped. Every line that does not yield a usable key is skipped and
// reported as a [*LineError] in the second result, so one bad line never
// drops the others: corrupt lines, certificates, security keys ("sk-"), DSA,
// unsupported curves, RSA under 2048 bits, PEM blocks that are not public
// keys. The keys returned all passed the checks a signing key does, carry
// their [Fingerprint], and the authorized_keys comment ("" for PEM). A key
// that appears twice is returned once.
func ParsePublicKeys(data []byte) ([]PublicKey, []error) {
	var (
		keys []PublicKey
		errs []error
		seen = map[string]bool{}
	)
	add := func(line int, pub crypto.PublicKey, comment string) {
		if err := checkPublicKey(pub); err != nil {
			errs = append(errs, &LineError{Line: line, Err: err})
			return
		}
		fp, err := fingerprint(pub)
		if err != nil {
			errs = append(errs, &LineError{Line: line, Err: err})
			return
		}
		if seen[fp] {
			return
		}
		seen[fp] = true
		keys = append(keys, PublicKey{Key: pub, Fingerprint: fp, Comment: comment})
	}

	lines := bytes.Split(data, []byte("\n"))
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := bytes.TrimSpace(lines[i]) // also drops the \r of CRLF
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if bytes.HasPrefix(line, []byte("-----BEGIN ")) {
			end := pemEnd(lines, i)
			if end < 0 {
				errs = append(errs, &LineError{Line: lineNo, Err: fmt.Errorf("%w: PEM block has no END line", ErrKeyFormat)})
				continue
			}
			var block []byte
			for _, l := range lines[i : end+1] {
				block = append(append(block, bytes.TrimSpace(l)...), '\n')
			}
			pub, err := parsePEMPublicKey(block)
			if err != nil {
				errs = append(errs, &LineError{Line: lineNo, Err: err})
			} else {
				add(lineNo, pub, "")
			}
			i = end
			continue
		}
		pub, comment, err := parseAuthorizedKeyLine(line)
		if err != nil {
			errs = append(errs, &LineError{Line: lineNo, Err: err})
			continue
		}
		add(lineNo, pub, comment)
	}
	return keys, errs
}

// pemEnd returns the index of the line that ends the PEM block starting at
// lines[begin], or -1 if there is none.
func pemEnd(lines [][]byte, begin int) int {
	for j := begin + 1; j < len(lines); j++ {
		l := bytes.TrimSpace(lines[j])
		if bytes.HasPrefix(l, []byte("-----END ")) {
			return j
		}
		if bytes.HasPrefix(l, []byte("-----BEGIN ")) {
			return -1
		}
	}
	return -1
}

// parsePEMPublicKey parses one PEM block holding a PKIX or PKCS#1 public key.
func parsePEMPublicKey(text []byte) (crypto.PublicKey, error) {
	block, rest := pem.Decode(text)
	if block == nil || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: malformed PEM block", ErrKeyFormat)
	}
	switch block.Type {
	case "PUBLIC KEY":
		return keyformat.ParsePKIX(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: malformed PKCS#1 RSA public key", ErrKeyFormat)
		}
		return pub, nil
	case "CERTIFICATE":
		return nil, fmt.Errorf("%w: X.509 certificate, not a public key", ErrUnsupportedKey)
	default:
		// Includes private keys pasted by mistake: the type is safe to name.
		return nil, fmt.Errorf("%w: PEM block %q is not a public key", ErrKeyFormat, block.Type)
	}
}

// parseAuthorizedKeyLine parses one non-blank, non-comment authorized_keys
// line.
func parseAuthorizedKeyLine(line []byte) (crypto.PublicKey, string, error) {
	out, comment, options, _, err := ssh.ParseAuthorizedKey(line)
	if err != nil {
		// The x/crypto/ssh error may quote the line; say nothing of it.
		return nil, "", fmt.Errorf("%w: corrupt or unrecognised authorized_keys line", ErrKeyFormat)
	}
	typ := out.Type()
	for _, o := range options {
		if strings.EqualFold(o, "cert-authority") {
			return nil, "", fmt.Errorf("%w: cert-authority line %s %q: a CA key is not a key of the user", ErrUnsupportedKey, typ, comment)
		}
	}
	if _, ok := out.(*ssh.Certificate); ok {
		return nil, "", fmt.Errorf("%w: certificate %s %q not accepted", ErrUnsupportedKey, typ, comment)
	}
	if strings.HasPrefix(typ, "sk-") {
		return nil, "", fmt.Errorf("%w: security key %s %q not accepted", ErrUnsupportedKey, typ, comment)
	}
	cpk, ok := out.(ssh.CryptoPublicKey)
	if !ok {
		return nil, "", fmt.Errorf("%w: key type %s %q", ErrUnsupportedKey, typ, comment)
	}
	return cpk.CryptoPublicKey(), comment, nil
}

// MemoryKeyStore is a [KeyStore] held in memory, filled by the program. It is
// safe for concurrent use by multiple goroutines; the zero value is not
// usable, call [NewMemoryKeyStore].
type MemoryKeyStore struct {
	mu    sync.RWMutex
	users map[string][]PublicKey
}

// NewMemoryKeyStore returns an empty MemoryKeyStore.
func NewMemoryKeyStore() *MemoryKeyStore {
	return &MemoryKeyStore{users: map[string][]PublicKey{}}
}

// Add adds keys to username's keys. Every key must be a key this package
// verifies with (RSA of at least 2048 bits, ECDSA P-256/P-384/P-521 or
// Ed25519); otherwise nothing is added and the error wraps [ErrWeakKey] or
// [ErrUnsupportedKey]. An invalid username gives [ErrInvalidUsername]. Keys
// the user already has are not added twice.
func (s *MemoryKeyStore) Add(username string, keys ...crypto.PublicKey) error {
	pks := make([]PublicKey, len(keys))
	for i, k := range keys {
		pks[i] = PublicKey{Key: k}
	}
	return s.AddPublicKeys(username, pks...)
}

// AddPublicKeys is like [MemoryKeyStore.Add] for keys with a comment. An
// empty Fingerprint is filled in; a Fingerprint that does not match its key
// is refused with [ErrKeyFormat].
func (s *MemoryKeyStore) AddPublicKeys(username string, keys ...PublicKey) error {
	checked, err := checkPublicKeys(username, keys)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := slices.Clone(s.users[username])
	for _, k := range checked {
		if !slices.ContainsFunc(cur, func(c PublicKey) bool { return c.Fingerprint == k.Fingerprint }) {
			cur = append(cur, k)
		}
	}
	if len(cur) > 0 {
		s.users[username] = cur
	}
	return nil
}

// Set replaces username's keys with keys, checked as by
// [MemoryKeyStore.AddPublicKeys]; on error the user's keys are unchanged.
// Setting no keys removes the user.
func (s *MemoryKeyStore) Set(username string, keys []PublicKey) error {
	checked, err := checkPublicKeys(username, keys)
	if err != nil {
		return err
	}
	var dedup []PublicKey
	for _, k := range checked {
		if !slices.ContainsFunc(dedup, func(c PublicKey) bool { return c.Fingerprint == k.Fingerprint }) {
			dedup = append(dedup, k)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(dedup) == 0 {
		delete(s.users, username)
	} else {
		s.users[username] = dedup
	}
	return nil
}

// Remove forgets username and all its keys.
func (s *MemoryKeyStore) Remove(username string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, username)
}

// PublicKeys returns a copy of username's keys, or nil for an unknown user.
// It never fails.
func (s *MemoryKeyStore) PublicKeys(ctx context.Context, username string) ([]PublicKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.users[username]), nil
}

// checkPublicKeys validates username and keys and returns copies of keys with
// their fingerprints filled in.
func checkPublicKeys(username string, keys []PublicKey) ([]PublicKey, error) {
	if !validUsername(username) {
		return nil, errorf("MemoryKeyStore: %w", ErrInvalidUsername)
	}
	out := make([]PublicKey, len(keys))
	for i, k := range keys {
		if err := checkPublicKey(k.Key); err != nil {
			return nil, errorf("MemoryKeyStore: %w", err)
		}
		fp, err := fingerprint(k.Key)
		if err != nil {
			return nil, errorf("MemoryKeyStore: %w", err)
		}
		if k.Fingerprint != "" && k.Fingerprint != fp {
			return nil, errorf("MemoryKeyStore: %w: fingerprint %s does not match its key (%s)", ErrKeyFormat, k.Fingerprint, fp)
		}
		k.Fingerprint = fp
		out[i] = k
	}
	return out, nil
}

// maxKeyFileSize bounds a key directory file; an authorized_keys file of 1 MiB
// holds thousands of keys.
const maxKeyFileSize = 1 << 20

// maxFileNameLen is the longest file name most file systems allow; a longer
// username cannot have a file and is an unknown user, not an I/O error.
const maxFileNameLen = 255

// DirKeyStore is a [KeyStore] that reads DIR/<username>.pub, a file of
// authorized_keys lines and/or PEM public keys (see [ParsePublicKeys]).
//
// Files are read on demand and cached; on every lookup the file is stat'ed
// and parsed again when its size, modification time or identity (inode)
// changed, so keys can be added, replaced (also by an atomic rename) and
// removed without a restart. A missing file means an unknown user; a file
// that cannot be read, is not a regular file or is larger than 1 MiB is an
// error (the verifier answers "cannot verify now"). Skipped lines are logged
// to the logger given with [WithLogger] when the file is parsed.
//
// A username that could name another file (empty, a leading dot, a "/", "\",
// ":" or NUL, or invalid for [NewSigner]) has no keys and is never used as a
// file name. Symbolic links inside DIR are followed: DIR's owner chooses them.
// On a case-insensitive file system, usernames differing only in case share a
// file.
//
// DirKeyStore is safe for concurrent use by multiple goroutines.
type DirKeyStore struct {
	dir    string
	logger *slog.Logger

	mu    sync.Mutex
	cache map[string]*keyFile
}

// keyFile is a parsed key file and the file state it was parsed from.
type keyFile struct {
	info os.FileInfo
	keys []PublicKey
}

// NewDirKeyStore returns a DirKeyStore over dir. It fails, with an error
// wrapping [ErrNotKeyDir], if dir is not a readable directory.
func NewDirKeyStore(dir string, opts ...DirKeyStoreOption) (*DirKeyStore, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, errorf("%w: %w", ErrNotKeyDir, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, errorf("%w: %w", ErrNotKeyDir, err)
	}
	if !fi.IsDir() {
		return nil, errorf("%w: %s is not a directory", ErrNotKeyDir, dir)
	}
	if _, err := f.Readdirnames(1); err != nil && err != io.EOF {
		return nil, errorf("%w: %w", ErrNotKeyDir, err)
	}
	s := &DirKeyStore{dir: dir, cache: map[string]*keyFile{}}
	for _, opt := range opts {
		if err := opt.applyDirKeyStore(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Dir returns the directory the store reads.
func (s *DirKeyStore) Dir() string { return s.dir }

// PublicKeys returns a copy of the keys in the user's file: nil and no error
// when the username is not one a file may be named after or the file does
// not exist, an error when the file cannot be read.
func (s *DirKeyStore) PublicKeys(ctx context.Context, username string) ([]PublicKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !safeFileUsername(username) {
		return nil, nil
	}
	path := filepath.Join(s.dir, username+".pub")
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			s.forget(username)
			return nil, nil
		}
		return nil, &KeyError{Path: path, Err: err}
	}
	if !fi.Mode().IsRegular() {
		return nil, &KeyError{Path: path, Err: ErrNotKeyFile}
	}
	s.mu.Lock()
	cached := s.cache[username]
	s.mu.Unlock()
	if cached != nil && sameFileState(cached.info, fi) {
		return slices.Clone(cached.keys), nil
	}

	kf, err := s.load(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) { // removed since the stat
			s.forget(username)
			return nil, nil
		}
		return nil, err
	}
	s.mu.Lock()
	s.cache[username] = kf
	s.mu.Unlock()
	return slices.Clone(kf.keys), nil
}

func (s *DirKeyStore) forget(username string) {
	s.mu.Lock()
	delete(s.cache, username)
	s.mu.Unlock()
}

// load reads and parses path, recording the state of the file it read (from
// the open file, so a concurrent rename cannot mix two files' states).
func (s *DirKeyStore) load(path string) (*keyFile, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, &KeyError{Path: path, Err: err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &KeyError{Path: path, Err: err}
	}
	if !fi.Mode().IsRegular() {
		return nil, &KeyError{Path: path, Err: ErrNotKeyFile}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, &KeyError{Path: path, Err: err}
	}
	if len(data) > maxKeyFileSize {
		return nil, &KeyError{Path: path, Err: fmt.Errorf("%w: file larger than %d bytes", ErrKeyFormat, maxKeyFileSize)}
	}
	keys, errs := ParsePublicKeys(data)
	if s.logger != nil {
		for _, err := range errs {
			line := 0
			var le *LineError
			if errors.As(err, &le) {
				line = le.Line
			}
			s.logger.Warn("asymjwt: skipped key line", "file", path, "line", line, "reason", reasonOf(err))
		}
	}
	return &keyFile{info: fi, keys: keys}, nil
}

// sameFileState reports whether a and b describe the same file unchanged, as
// far as stat can tell.
func sameFileState(a, b os.FileInfo) bool {
	return a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && os.SameFile(a, b)
}

// safeFileUsername reports whether username may be turned into a file name
// inside the key directory.
func safeFileUsername(username string) bool {
	return validUsername(username) &&
		len(username)+len(".pub") <= maxFileNameLen &&
		username[0] != '.' &&
		!strings.ContainsAny(username, "/\\:\x00") &&
		filepath.IsLocal(username+".pub")
}
