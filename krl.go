package asymjwt

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// An OpenSSH key revocation list (KRL), as ssh-keygen -k writes it and
// sshd's RevokedKeys reads it; the format is OpenSSH's PROTOCOL.krl.

const krlMagic = "SSHKRL\n\x00"

// KRL section types.
const (
	krlSectionCertificates      = 1
	krlSectionExplicitKey       = 2
	krlSectionFingerprintSHA1   = 3
	krlSectionSignature         = 4
	krlSectionFingerprintSHA256 = 5

	krlCertSerialList   = 0x20
	krlCertSerialRange  = 0x21
	krlCertSerialBitmap = 0x22
	krlCertKeyID        = 0x23
)

var errKRLShort = errors.New("truncated")

// krlReader reads the SSH wire encoding of PROTOCOL.krl.
type krlReader struct{ b []byte }

func (r *krlReader) byte() (byte, error) {
	if len(r.b) < 1 {
		return 0, errKRLShort
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, nil
}

func (r *krlReader) uint32() (uint32, error) {
	if len(r.b) < 4 {
		return 0, errKRLShort
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v, nil
}

func (r *krlReader) uint64() (uint64, error) {
	if len(r.b) < 8 {
		return 0, errKRLShort
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v, nil
}

func (r *krlReader) string() ([]byte, error) {
	n, err := r.uint32()
	if err != nil {
		return nil, err
	}
	if uint64(n) > uint64(len(r.b)) {
		return nil, errKRLShort
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s, nil
}

// parseKRL reads a KRL. Its signature sections, if any, are not checked:
// the file is trusted as sshd trusts its RevokedKeys file, by where it lies.
func parseKRL(data []byte) (*revocationList, error) {
	l, err := readKRL(data)
	if err != nil {
		return nil, fmt.Errorf("%w: KRL: %w", ErrKeyFormat, err)
	}
	return l, nil
}

func readKRL(data []byte) (*revocationList, error) {
	r := &krlReader{b: data[len(krlMagic):]}
	version, err := r.uint32()
	if err != nil {
		return nil, err
	}
	if version != 1 {
		return nil, fmt.Errorf("format version %d (want 1)", version)
	}
	for range 3 { // krl_version, generated_date, flags
		if _, err := r.uint64(); err != nil {
			return nil, err
		}
	}
	for range 2 { // reserved, comment
		if _, err := r.string(); err != nil {
			return nil, err
		}
	}
	l := newRevocationList()
	signed := false
	for len(r.b) > 0 {
		typ, err := r.byte()
		if err != nil {
			return nil, err
		}
		body, err := r.string()
		if err != nil {
			return nil, err
		}
		if signed && typ != krlSectionSignature {
			return nil, fmt.Errorf("section %d after a signature", typ)
		}
		s := &krlReader{b: body}
		switch typ {
		case krlSectionCertificates:
			err = l.readKRLCertSection(s)
		case krlSectionExplicitKey:
			for len(s.b) > 0 && err == nil {
				var blob []byte
				blob, err = s.string()
				switch {
				case err == nil && len(blob) == 0:
					err = errors.New("empty key")
				case err == nil:
					l.keys[blobFingerprint(blob)] = true
				}
			}
		case krlSectionFingerprintSHA1:
			for len(s.b) > 0 && err == nil {
				var h []byte
				if h, err = s.string(); err == nil {
					if len(h) != 20 {
						err = fmt.Errorf("SHA-1 hash of %d bytes", len(h))
						break
					}
					l.sha1[[20]byte(h)] = true
				}
			}
		case krlSectionFingerprintSHA256:
			for len(s.b) > 0 && err == nil {
				var h []byte
				if h, err = s.string(); err == nil {
					if len(h) != sha256.Size {
						err = fmt.Errorf("SHA-256 hash of %d bytes", len(h))
						break
					}
					l.keys["SHA256:"+base64.RawStdEncoding.EncodeToString(h)] = true
				}
			}
		case krlSectionSignature:
			signed = true
			if _, err = s.string(); err == nil { // signing key
				_, err = s.string() // signature
			}
			if err == nil && len(s.b) > 0 {
				err = errors.New("trailing data in signature section")
			}
		default:
			return nil, fmt.Errorf("unknown section type %d", typ)
		}
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", typ, err)
		}
	}
	return l, nil
}

// readKRLCertSection reads the certificates revoked under one CA (an
// empty CA key: under any CA).
func (l *revocationList) readKRLCertSection(s *krlReader) error {
	caKey, err := s.string()
	if err != nil {
		return err
	}
	if _, err := s.string(); err != nil { // reserved
		return err
	}
	revs := &l.any
	if len(caKey) > 0 {
		fp := blobFingerprint(caKey)
		if l.byCA[fp] == nil {
			l.byCA[fp] = &certRevocations{}
		}
		revs = l.byCA[fp]
	}
	for len(s.b) > 0 {
		typ, err := s.byte()
		if err != nil {
			return err
		}
		body, err := s.string()
		if err != nil {
			return err
		}
		sub := &krlReader{b: body}
		switch typ {
		case krlCertSerialList:
			for len(sub.b) > 0 {
				serial, err := sub.uint64()
				if err != nil {
					return err
				}
				revs.ranges = append(revs.ranges, serialRange{serial, serial})
			}
		case krlCertSerialRange:
			lo, err := sub.uint64()
			if err != nil {
				return err
			}
			hi, err := sub.uint64()
			if err != nil {
				return err
			}
			if lo > hi || len(sub.b) > 0 {
				return fmt.Errorf("bad serial range")
			}
			revs.ranges = append(revs.ranges, serialRange{lo, hi})
		case krlCertSerialBitmap:
			offset, err := sub.uint64()
			if err != nil {
				return err
			}
			bits, err := sub.string() // an mpint, never negative here
			if err != nil {
				return err
			}
			if len(sub.b) > 0 || (len(bits) > 0 && bits[0]&0x80 != 0) {
				return fmt.Errorf("bad serial bitmap")
			}
			revs.bitmaps = append(revs.bitmaps, serialBitmap{offset, bits})
		case krlCertKeyID:
			for len(sub.b) > 0 {
				id, err := sub.string()
				if err != nil {
					return err
				}
				if revs.ids == nil {
					revs.ids = map[string]bool{}
				}
				revs.ids[string(id)] = true
			}
		default:
			return fmt.Errorf("unknown certificate section type %#x", typ)
		}
	}
	return nil
}

// blobFingerprint is ssh.FingerprintSHA256 of a key's wire form.
func blobFingerprint(blob []byte) string {
	h := sha256.Sum256(blob)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(h[:])
}
