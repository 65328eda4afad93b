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
	"time"

	"github.com/asymjwt/asymjwt/internal/keyformat"
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
	// Restrictions are the expiry-time and from= options of the key's
	// authorized_keys line, which the verifier enforces; the zero value
	// restricts nothing.
	Restrictions KeyRestrictions
}

// KeyStore gives the public keys of a user. Implementations must be safe for
// concurrent use. A user without keys is reported as an empty slice and a nil
// error; an error means the store could not answer, and the verifier refuses
// the request as unavailable.
type KeyStore interface {
	PublicKeys(ctx context.Context, username string) ([]PublicKey, error)
}

// CertAuthorityStore is implemented by a [KeyStore] that also knows which
// CAs may certify a user's keys, as cert-authority lines in the user's
// authorized_keys do. A [Verifier] asks it for a token that carries an
// OpenSSH certificate; a user's CAs are trusted for that user only.
// [DirKeyStore] and [MemoryKeyStore] implement it. Implementations must be
// safe for concurrent use; a user without CAs is an empty slice and a nil
// error, and an error makes the verifier refuse the request as unavailable.
type CertAuthorityStore interface {
	CertAuthorities(ctx context.Context, username string) ([]CertAuthority, error)
}

var (
	_ KeyStore           = (*MemoryKeyStore)(nil)
	_ KeyStore           = (*DirKeyStore)(nil)
	_ CertAuthorityStore = (*MemoryKeyStore)(nil)
	_ CertAuthorityStore = (*DirKeyStore)(nil)
)

// ParsePublicKeys parses text that mixes authorized_keys lines and PEM public
// keys ("PUBLIC KEY", PKIX; "RSA PUBLIC KEY", PKCS#1), as a key directory file
// or an ~/.ssh/authorized_keys file holds them.
//
// Blank lines, "#" comments and CRLF line ends are allowed. authorized_keys
// options before the key type are honoured or refused as
// [ParseAuthorizedKeys] describes: expiry-time and from= become the key's
// Restrictions, options that only shape an ssh session are ignored, and a
// line with an option that cannot be honoured (command=, an unknown one) is
// skipped. A "cert-authority" line names a CA, whose key must never verify
// tokens as the user's own: it is skipped here too (ParseAuthorizedKeys
// returns it as a CA). Every line that does not yield a usable key is
// skipped and reported as a [*LineError] in the second result, so one bad
// line never drops the others: corrupt lines, certificates, security keys
// ("sk-"), DSA, unsupported curves, RSA under 2048 bits, PEM blocks that
// are not public keys, options that cannot be honoured. The keys returned
// all passed the checks a signing key does, carry their [Fingerprint], and
// the authorized_keys comment ("" for PEM). A key that appears twice with
// the same options is returned once.
func ParsePublicKeys(data []byte) ([]PublicKey, []error) {
	ak, errs := parseKeyText(data, keysText)
	return ak.Keys, errs
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

// MemoryKeyStore is a [KeyStore] held in memory, filled by the program. It is
// safe for concurrent use by multiple goroutines; the zero value is not
// usable, call [NewMemoryKeyStore].
type MemoryKeyStore struct {
	mu    sync.RWMutex
	users map[string][]PublicKey
	cas   map[string][]CertAuthority
}

// NewMemoryKeyStore returns an empty MemoryKeyStore.
func NewMemoryKeyStore() *MemoryKeyStore {
	return &MemoryKeyStore{users: map[string][]PublicKey{}, cas: map[string][]CertAuthority{}}
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

// Remove forgets username and all its keys and CAs.
func (s *MemoryKeyStore) Remove(username string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, username)
	delete(s.cas, username)
}

// SetCertAuthorities replaces the CAs that may certify username's keys (as
// the cert-authority lines of the user's authorized_keys would). Every CA
// key must be one this package verifies with; an empty Fingerprint is
// filled in, and one that does not match its key is refused with
// [ErrKeyFormat]. On error the user's CAs are unchanged; setting none
// removes them.
func (s *MemoryKeyStore) SetCertAuthorities(username string, cas []CertAuthority) error {
	if !validUsername(username) {
		return errorf("MemoryKeyStore: %w", ErrInvalidUsername)
	}
	checked, err := checkCertAuthorities(cas)
	if err != nil {
		return errorf("MemoryKeyStore: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(checked) == 0 {
		delete(s.cas, username)
	} else {
		s.cas[username] = checked
	}
	return nil
}

// CertAuthorities returns a copy of the CAs that may certify username's
// keys, or nil. It never fails.
func (s *MemoryKeyStore) CertAuthorities(ctx context.Context, username string) ([]CertAuthority, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return cloneCAs(s.cas[username]), nil
}

// PublicKeys returns a copy of username's keys, or nil for an unknown user.
// It never fails.
func (s *MemoryKeyStore) PublicKeys(ctx context.Context, username string) ([]PublicKey, error) {
	keys, _ := s.sharedPublicKeys(ctx, username)
	return cloneKeys(keys), nil
}

// sharedPublicKeys is PublicKeys without the copy, for the Verifier, which
// only reads the keys and copies what it hands out (see
// [Verifier.lookupKeys]).
func (s *MemoryKeyStore) sharedPublicKeys(ctx context.Context, username string) ([]PublicKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.users[username], nil // replaced, never changed, by the writers
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
		if err := k.Restrictions.validate(); err != nil {
			return nil, errorf("MemoryKeyStore: %w", err)
		}
		k.Fingerprint = fp
		k.Restrictions.From = slices.Clone(k.Restrictions.From)
		out[i] = k
	}
	return out, nil
}

// checkCertAuthorities validates CA entries built by a program and returns
// copies with their fingerprints filled in. Its errors are not prefixed.
func checkCertAuthorities(cas []CertAuthority) ([]CertAuthority, error) {
	out := make([]CertAuthority, 0, len(cas))
	for _, ca := range cas {
		if err := checkPublicKey(ca.Key); err != nil {
			return nil, fmt.Errorf("CA key: %w", err)
		}
		fp, err := fingerprint(ca.Key)
		if err != nil {
			return nil, err
		}
		if ca.Fingerprint != "" && ca.Fingerprint != fp {
			return nil, fmt.Errorf("%w: CA fingerprint %s does not match its key (%s)", ErrKeyFormat, ca.Fingerprint, fp)
		}
		if err := ca.Restrictions.validate(); err != nil {
			return nil, err
		}
		for _, p := range ca.Principals {
			if p == "" {
				return nil, fmt.Errorf("%w: empty principal", ErrKeyOption)
			}
		}
		ca.Fingerprint = fp
		ca.Principals = slices.Clone(ca.Principals)
		ca.Restrictions.From = slices.Clone(ca.Restrictions.From)
		out = append(out, ca)
	}
	return out, nil
}

// cloneKeys copies keys for a caller, who may change them.
func cloneKeys(keys []PublicKey) []PublicKey {
	out := slices.Clone(keys)
	for i := range out {
		out[i].Restrictions.From = slices.Clone(out[i].Restrictions.From)
	}
	return out
}

// cloneCAs copies CA entries for a caller, who may change them.
func cloneCAs(cas []CertAuthority) []CertAuthority {
	out := slices.Clone(cas)
	for i := range out {
		out[i].Principals = slices.Clone(out[i].Principals)
		out[i].Restrictions.From = slices.Clone(out[i].Restrictions.From)
	}
	return out
}

// maxKeyFileSize bounds a key directory file; an authorized_keys file of 1 MiB
// holds thousands of keys.
const maxKeyFileSize = 1 << 20

// maxFileNameLen is the longest file name most file systems allow; a longer
// username cannot have a file and is an unknown user, not an I/O error.
const maxFileNameLen = 255

// DirKeyStore is a [KeyStore] and [CertAuthorityStore] that reads
// DIR/<username>.pub, a file of authorized_keys lines and/or PEM public keys
// (see [ParseAuthorizedKeys]): the user's keys, and the CAs of its
// cert-authority lines.
//
// Files are read on demand and cached; on every lookup the file is stat'ed
// and parsed again when its size, modification time or identity (inode)
// changed, so keys can be added, replaced (also by an atomic rename) and
// removed without a restart ([WithRecheckInterval] trades how soon a change
// is seen for fewer system calls). A missing file means an unknown user; a file
// that cannot be read, is not a regular file or is larger than 1 MiB is an
// error (the verifier answers "cannot verify now"). Skipped lines are logged
// to the logger given with [WithLogger] when the file is parsed.
//
// A username that could name another file (empty, a leading dot, a "/", "",
// ":" or NUL, or invalid for [NewSigner]) has no keys and is never used as a
// file name. The directory is never widened:
//
//   - A symbolic link in DIR is followed only when it is relative and leads
//     to a file inside DIR (os.Root decides, without a race); one that is
//     absolute or leads outside is an error wrapping [ErrOutsideKeyDir].
//     Hard links cannot be told from files and are DIR's owner's choice.
//   - On a case-insensitive file system (macOS and Windows by default),
//     "Alice" would open alice.pub: the name is compared with the
//     directory's listing when the file is read, and a file whose name is
//     not exactly <username>.pub (in case or Unicode normalisation) gives
//     no keys, with a warning in the log.
//
// DirKeyStore is safe for concurrent use by multiple goroutines.
type DirKeyStore struct {
	dir    string
	logger *slog.Logger
	// openDir opens DIR for one lookup; tests replace it to simulate a
	// case-insensitive file system.
	openDir func(dir string) (fs.FS, io.Closer, error)
	now     func() time.Time
	recheck time.Duration // 0: stat on every lookup

	mu    sync.Mutex
	cache map[string]*keyFile
}

// keyFile is a parsed key file and the file state it was parsed from.
type keyFile struct {
	checked   time.Time // when the file was last found in this state
	info      os.FileInfo
	keys      []PublicKey
	cas       []CertAuthority
	wrongName bool // the file found is not named exactly <username>.pub
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
	s := &DirKeyStore{dir: dir, cache: map[string]*keyFile{}, openDir: openRootFS, now: time.Now}
	for _, opt := range opts {
		if err := opt.applyDirKeyStore(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// WithRecheckInterval makes a [DirKeyStore] trust what it read of a user's
// file for d before it looks at the file again: in between, lookups of that
// user make no system call. By default (0) every lookup stats the file, so a
// key removed from it is refused at once; with d, a removed key may still
// verify for up to d, and a user who had no file is seen as soon as one
// appears (only files read are remembered; on a case-insensitive file
// system a file whose name differs in case is remembered too, so one named
// exactly may take up to d to be seen). d must not be negative. verify-proxy's
// -keys-recheck sets it.
func WithRecheckInterval(d time.Duration) DirKeyStoreOption {
	return dirKeyStoreOptionFunc(func(s *DirKeyStore) error {
		if d < 0 {
			return optionError("WithRecheckInterval", d.String())
		}
		s.recheck = d
		return nil
	})
}

// openRootFS opens dir as an os.Root, which refuses paths and symbolic
// links that lead outside it.
func openRootFS(dir string) (fs.FS, io.Closer, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, err
	}
	return root.FS(), root, nil
}

// Dir returns the directory the store reads.
func (s *DirKeyStore) Dir() string { return s.dir }

// PublicKeys returns a copy of the keys in the user's file: nil and no error
// when the username is not one a file may be named after or the file does
// not exist, an error when the file cannot be read.
func (s *DirKeyStore) PublicKeys(ctx context.Context, username string) ([]PublicKey, error) {
	keys, err := s.sharedPublicKeys(ctx, username)
	return cloneKeys(keys), err
}

func (s *DirKeyStore) sharedPublicKeys(ctx context.Context, username string) ([]PublicKey, error) {
	kf, err := s.file(ctx, username)
	if kf == nil || err != nil {
		return nil, err
	}
	return kf.keys, nil // a keyFile is never changed
}

// CertAuthorities returns a copy of the CAs of the cert-authority lines in
// the user's file, under the same rules as [DirKeyStore.PublicKeys].
func (s *DirKeyStore) CertAuthorities(ctx context.Context, username string) ([]CertAuthority, error) {
	kf, err := s.file(ctx, username)
	if kf == nil || err != nil {
		return nil, err
	}
	return cloneCAs(kf.cas), nil
}

// file returns the user's parsed file, from the cache while it is
// unchanged; nil when the user has none.
func (s *DirKeyStore) file(ctx context.Context, username string) (*keyFile, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !safeFileUsername(username) {
		return nil, nil
	}
	var now time.Time
	if s.recheck > 0 {
		now = s.now()
		s.mu.Lock()
		cached := s.cache[username]
		s.mu.Unlock()
		if cached != nil && now.Sub(cached.checked) < s.recheck && !now.Before(cached.checked) {
			return cached.live(), nil
		}
	}
	name := username + ".pub"
	path := filepath.Join(s.dir, name)
	fsys, closer, err := s.openDir(s.dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			s.forget(username)
			return nil, nil
		}
		return nil, &KeyError{Path: s.dir, Err: err}
	}
	defer closer.Close()
	fi, err := fs.Stat(fsys, name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			s.forget(username)
			return nil, nil
		}
		return nil, &KeyError{Path: path, Err: linkError(fsys, name, err)}
	}
	if !fi.Mode().IsRegular() {
		return nil, &KeyError{Path: path, Err: ErrNotKeyFile}
	}
	s.mu.Lock()
	cached := s.cache[username]
	s.mu.Unlock()
	if cached != nil && sameFileState(cached.info, fi) {
		if s.recheck > 0 {
			s.remember(username, cached, now)
		}
		return cached.live(), nil
	}

	kf, err := s.load(fsys, name, path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) { // removed since the stat
			s.forget(username)
			return nil, nil
		}
		return nil, err
	}
	kf.checked = now
	s.mu.Lock()
	s.cache[username] = kf
	s.mu.Unlock()
	return kf.live(), nil
}

// remember records that username's file was found unchanged at now. The
// cached keyFile is shared, never changed: a copy carries the new time.
func (s *DirKeyStore) remember(username string, kf *keyFile, now time.Time) {
	fresh := *kf
	fresh.checked = now
	s.mu.Lock()
	if s.cache[username] == kf {
		s.cache[username] = &fresh
	}
	s.mu.Unlock()
}

// live returns kf, or nil when it stands for no file of the user.
func (kf *keyFile) live() *keyFile {
	if kf.wrongName {
		return nil
	}
	return kf
}

// linkError explains a failure to stat name: a symbolic link that os.Root
// would not follow leads outside the directory.
func linkError(fsys fs.FS, name string, err error) error {
	if fi, lerr := fs.Lstat(fsys, name); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return ErrOutsideKeyDir
	}
	return err
}

func (s *DirKeyStore) forget(username string) {
	s.mu.Lock()
	delete(s.cache, username)
	s.mu.Unlock()
}

// load reads and parses name, recording the state of the file it read (from
// the open file, so a concurrent rename cannot mix two files' states).
func (s *DirKeyStore) load(fsys fs.FS, name, path string) (*keyFile, error) {
	f, err := fsys.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, &KeyError{Path: path, Err: linkError(fsys, name, err)}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &KeyError{Path: path, Err: err}
	}
	if !fi.Mode().IsRegular() {
		return nil, &KeyError{Path: path, Err: ErrNotKeyFile}
	}
	exact, err := nameInDir(fsys, name)
	if err != nil {
		return nil, &KeyError{Path: s.dir, Err: err}
	}
	if !exact {
		if s.logger != nil {
			s.logger.Warn("asymjwt: key file name differs from the username in case or Unicode form; not used", "file", path)
		}
		return &keyFile{info: fi, wrongName: true}, nil
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, &KeyError{Path: path, Err: err}
	}
	if len(data) > maxKeyFileSize {
		return nil, &KeyError{Path: path, Err: fmt.Errorf("%w: file larger than %d bytes", ErrKeyFormat, maxKeyFileSize)}
	}
	ak, errs := ParseAuthorizedKeys(data)
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
	return &keyFile{info: fi, keys: ak.Keys, cas: ak.Authorities}, nil
}

// nameInDir reports whether the directory lists exactly name. On a
// case-insensitive file system a file opened as "Alice.pub" may be listed
// as "alice.pub"; only the listing tells.
func nameInDir(fsys fs.FS, name string) (bool, error) {
	d, err := fsys.Open(".")
	if err != nil {
		return false, err
	}
	defer d.Close()
	rd, ok := d.(fs.ReadDirFile)
	if !ok {
		return false, fmt.Errorf("%w: directory cannot be listed", ErrNotKeyDir)
	}
	for {
		entries, err := rd.ReadDir(256)
		for _, e := range entries {
			if e.Name() == name {
				return true, nil
			}
		}
		if err == io.EOF || (err == nil && len(entries) == 0) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
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
