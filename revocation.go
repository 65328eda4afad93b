package asymjwt

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/ssh"
)

// WithRevocationFile refuses keys and certificates listed in the file at
// path, with [ErrRevoked]. The file is either an OpenSSH KRL, as
// `ssh-keygen -k` writes it for sshd's RevokedKeys, or a text list with one
// entry a line ('#' comments and blank lines allowed):
//
//	SHA256:<base64>          a key by its fingerprint, as ssh-keygen -l
//	                         prints it and sshd logs it
//	<authorized_keys line>   the key on it
//	serial:N or serial:N-M   certificates with serial N (to M), from any CA
//	id:KEYID                 certificates with that key ID, from any CA
//
// A listed key is refused as a user's stored key, as a certified key and as
// a CA (every certificate it signed). Serial 0, the serial of certificates
// made without one, is never revoked by serial, as in OpenSSH; a KRL's
// serials and key IDs apply to certificates of the CA they are listed
// under.
//
// The file is stat'ed on every verification and read again when it changes.
// It must be readable and well formed when the Verifier is made, or the
// option fails; when it later cannot be read or parsed, every request is
// refused with [ErrUnavailable] until it can, as sshd refuses all public
// keys when its RevokedKeys file is unreadable.
func WithRevocationFile(path string) VerifierOption {
	return verifierOptionFunc(func(v *Verifier) error {
		if path == "" {
			return optionError("WithRevocationFile", "empty path")
		}
		f := &revocationFile{path: path}
		if _, err := f.current(); err != nil {
			return optionError("WithRevocationFile", reasonOf(err))
		}
		v.revocations = f
		return nil
	})
}

// maxRevocationFileSize bounds a revocation list; a KRL revokes ranges and
// bitmaps of serials compactly, so this is room for a great many entries.
const maxRevocationFileSize = 16 << 20

// revocationFile is a revocation list file, reloaded when it changes.
type revocationFile struct {
	path  string
	state atomic.Pointer[revocationState]
	mu    sync.Mutex // held while reloading
}

type revocationState struct {
	info os.FileInfo
	list *revocationList
}

// current returns the list as the file now holds it.
func (f *revocationFile) current() (*revocationList, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return nil, fmt.Errorf("revocation list: %w", err)
	}
	if st := f.state.Load(); st != nil && sameFileState(st.info, fi) {
		return st.list, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if st := f.state.Load(); st != nil && sameFileState(st.info, fi) {
		return st.list, nil
	}
	file, err := os.Open(f.path)
	if err != nil {
		return nil, fmt.Errorf("revocation list: %w", err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return nil, fmt.Errorf("revocation list: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("revocation list %s: %w", f.path, ErrNotKeyFile)
	}
	data, err := io.ReadAll(io.LimitReader(file, maxRevocationFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("revocation list: %w", err)
	}
	if len(data) > maxRevocationFileSize {
		return nil, fmt.Errorf("revocation list %s: %w: larger than %d bytes", f.path, ErrKeyFormat, maxRevocationFileSize)
	}
	list, err := parseRevocations(data)
	if err != nil {
		return nil, fmt.Errorf("revocation list %s: %w", f.path, err)
	}
	f.state.Store(&revocationState{info: info, list: list})
	return list, nil
}

// revocationList is what a KRL or a text list revokes.
type revocationList struct {
	keys map[string]bool   // SHA-256 fingerprints ("SHA256:...")
	sha1 map[[20]byte]bool // SHA-1 hashes of key blobs (KRL only)
	any  certRevocations   // certificates of any CA
	byCA map[string]*certRevocations
}

// certRevocations are the certificates revoked under one CA (or any).
type certRevocations struct {
	ranges  []serialRange
	bitmaps []serialBitmap
	ids     map[string]bool
}

type serialRange struct{ lo, hi uint64 } // inclusive

// serialBitmap revokes serial offset+i when bit i (from the least
// significant end of the big-endian bits) is set.
type serialBitmap struct {
	offset uint64
	bits   []byte
}

func (r *certRevocations) revokes(cert *ssh.Certificate) string {
	if r.ids[cert.KeyId] {
		return fmt.Sprintf("certificate key ID %q", truncate(cert.KeyId))
	}
	s := cert.Serial
	if s == 0 { // the serial of a certificate made without one
		return ""
	}
	for _, rg := range r.ranges {
		if rg.lo <= s && s <= rg.hi {
			return "certificate serial " + strconv.FormatUint(s, 10)
		}
	}
	for _, b := range r.bitmaps {
		if s < b.offset {
			continue
		}
		i := s - b.offset
		if i/8 >= uint64(len(b.bits)) {
			continue
		}
		if b.bits[uint64(len(b.bits))-1-i/8]>>(i%8)&1 == 1 {
			return "certificate serial " + strconv.FormatUint(s, 10)
		}
	}
	return ""
}

// keyRevoked reports whether the key with fingerprint fp (and wire form
// blob, computed only when SHA-1 entries need it) is listed.
func (l *revocationList) keyRevoked(fp string, blob func() []byte) bool {
	if l.keys[fp] {
		return true
	}
	if len(l.sha1) > 0 {
		if b := blob(); b != nil && l.sha1[sha1.Sum(b)] {
			return true
		}
	}
	return false
}

// certRevoked returns why c is revoked, or "".
func (l *revocationList) certRevoked(c *parsedCert) string {
	if l.keyRevoked(c.fp, c.cert.Key.Marshal) {
		return "certified key " + c.fp
	}
	if l.keyRevoked(c.caFP, c.cert.SignatureKey.Marshal) {
		return "CA " + c.caFP
	}
	if why := l.any.revokes(c.cert); why != "" {
		return why
	}
	if r := l.byCA[c.caFP]; r != nil {
		if why := r.revokes(c.cert); why != "" {
			return why + " of CA " + c.caFP
		}
	}
	return ""
}

// checkKeyRevoked refuses a stored key that the revocation list names.
func (v *Verifier) checkKeyRevoked(fp string, pub crypto.PublicKey) error {
	if v.revocations == nil {
		return nil
	}
	list, err := v.revocations.current()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	blob := func() []byte {
		sshPub, err := ssh.NewPublicKey(pub)
		if err != nil {
			return nil
		}
		return sshPub.Marshal()
	}
	if list.keyRevoked(fp, blob) {
		return fmt.Errorf("%w: key %s", ErrRevoked, fp)
	}
	return nil
}

// checkCertRevoked refuses a certificate that the revocation list names,
// by its key, its CA, its serial or its key ID.
func (v *Verifier) checkCertRevoked(c *parsedCert) error {
	if v.revocations == nil {
		return nil
	}
	list, err := v.revocations.current()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if why := list.certRevoked(c); why != "" {
		return fmt.Errorf("%w: %s", ErrRevoked, why)
	}
	return nil
}

// parseRevocations reads a KRL or a text list.
func parseRevocations(data []byte) (*revocationList, error) {
	if bytes.HasPrefix(data, []byte(krlMagic)) {
		return parseKRL(data)
	}
	return parseRevocationText(data)
}

func newRevocationList() *revocationList {
	return &revocationList{keys: map[string]bool{}, sha1: map[[20]byte]bool{}, byCA: map[string]*certRevocations{}}
}

// parseRevocationText reads the text list WithRevocationFile describes. A
// line it cannot read fails the whole list: a revocation skipped would
// leave a key trusted.
func parseRevocationText(data []byte) (*revocationList, error) {
	l := newRevocationList()
	for i, raw := range bytes.Split(data, []byte("\n")) {
		line := strings.TrimSpace(string(raw))
		if line == "" || line[0] == '#' {
			continue
		}
		if err := l.addTextLine(line); err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrKeyFormat, i+1, err)
		}
	}
	return l, nil
}

func (l *revocationList) addTextLine(line string) error {
	lower := strings.ToLower(line)
	switch {
	case strings.HasPrefix(line, "SHA256:"):
		return l.addFingerprint(line)
	case strings.HasPrefix(lower, "hash:"):
		return l.addFingerprint(strings.TrimSpace(line[len("hash:"):]))
	case strings.HasPrefix(lower, "serial:"):
		spec := strings.TrimSpace(line[len("serial:"):])
		loText, hiText, isRange := strings.Cut(spec, "-")
		lo, err := strconv.ParseUint(strings.TrimSpace(loText), 10, 64)
		if err != nil {
			return fmt.Errorf("serial %q is not a number", truncate(spec))
		}
		hi := lo
		if isRange {
			if hi, err = strconv.ParseUint(strings.TrimSpace(hiText), 10, 64); err != nil || hi < lo {
				return fmt.Errorf("serial range %q is not N-M with N <= M", truncate(spec))
			}
		}
		if lo == 0 {
			return fmt.Errorf("serial 0 cannot be revoked (certificates made without a serial have it)")
		}
		l.any.ranges = append(l.any.ranges, serialRange{lo, hi})
		return nil
	case strings.HasPrefix(lower, "id:"):
		id := strings.TrimSpace(line[len("id:"):])
		if id == "" {
			return fmt.Errorf("empty key ID")
		}
		if l.any.ids == nil {
			l.any.ids = map[string]bool{}
		}
		l.any.ids[id] = true
		return nil
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return fmt.Errorf("not a fingerprint, serial:, id: or public key line")
	}
	if _, ok := pub.(*ssh.Certificate); ok {
		return fmt.Errorf("a certificate: revoke it by serial:, id: or its key's fingerprint")
	}
	l.keys[ssh.FingerprintSHA256(pub)] = true
	return nil
}

// addFingerprint adds "SHA256:<unpadded base64 of 32 bytes>".
func (l *revocationList) addFingerprint(fp string) error {
	b64, ok := strings.CutPrefix(fp, "SHA256:")
	raw, err := base64.RawStdEncoding.Strict().DecodeString(b64)
	if !ok || err != nil || len(raw) != sha256.Size {
		return fmt.Errorf("%q is not a SHA256: fingerprint", truncate(fp))
	}
	l.keys[fp] = true
	return nil
}
