// Package sigconv converts ECDSA signatures between the encodings signers
// return (ASN.1 DER from crypto.Signer, SSH mpints from ssh-agent) and the
// fixed-width r||s that JWS requires (RFC 7518 §3.4).
package sigconv

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// ErrMalformed is returned for a signature that is not a well-formed ECDSA
// signature of the expected size.
var ErrMalformed = errors.New("malformed ECDSA signature")

// DERToJWS converts an ASN.1 DER ECDSA signature to r||s, size bytes each.
func DERToJWS(der []byte, size int) ([]byte, error) {
	out := make([]byte, 2*size)
	if size == 0 || !PutDERAsJWS(out, der) {
		return nil, ErrMalformed
	}
	return out, nil
}

// PutDERAsJWS writes the ASN.1 DER ECDSA signature der into out as r||s,
// each half len(out)/2 bytes wide, and reports whether der was well formed
// and fits.
func PutDERAsJWS(out, der []byte) bool {
	var seq, r, s cryptobyte.String
	in := cryptobyte.String(der)
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1(&r, asn1.INTEGER) || !seq.ReadASN1(&s, asn1.INTEGER) || !seq.Empty() ||
		len(r) == 0 || len(s) == 0 || r[0]&0x80 != 0 || s[0]&0x80 != 0 {
		return false
	}
	size := len(out) / 2
	clear(out)
	return putFixed(out[:size], r) && putFixed(out[size:], s)
}

// SSHToJWS converts the blob of an SSH ECDSA signature (RFC 5656 §3.1.2:
// mpint r, mpint s) to r||s, size bytes each. An mpint carries a leading
// zero byte when its top bit is set, and is shorter than size when the value
// is small.
func SSHToJWS(blob []byte, size int) ([]byte, error) {
	in := cryptobyte.String(blob)
	r, okR := readSSHString(&in)
	s, okS := readSSHString(&in)
	if size == 0 || !okR || !okS || !in.Empty() ||
		len(r) == 0 || len(s) == 0 || r[0]&0x80 != 0 || s[0]&0x80 != 0 {
		return nil, ErrMalformed
	}
	out := make([]byte, 2*size)
	if !putFixed(out[:size], r) || !putFixed(out[size:], s) {
		return nil, ErrMalformed
	}
	return out, nil
}

// readSSHString reads a uint32-length-prefixed string (RFC 4251 §5).
func readSSHString(in *cryptobyte.String) ([]byte, bool) {
	var n uint32
	var v []byte
	if !in.ReadUint32(&n) || !in.ReadBytes(&v, int(n)) {
		return nil, false
	}
	return v, true
}

// putFixed writes the big-endian unsigned integer v (an ASN.1 or SSH mpint
// body, which may carry a leading zero byte) right-aligned into dst. Zero is
// refused: no valid ECDSA signature has r or s zero.
func putFixed(dst []byte, v []byte) bool {
	for len(v) > 0 && v[0] == 0 {
		v = v[1:]
	}
	if len(v) > len(dst) || len(v) == 0 {
		return false
	}
	copy(dst[len(dst)-len(v):], v)
	return true
}

// MaxDERLen is the longest DER ECDSA signature [PutJWSAsDER] writes: a
// SEQUENCE of two INTEGERs of up to 67 bytes (P-521, with a leading zero).
const MaxDERLen = 3 + 2*(2+67)

// PutJWSAsDER writes the r||s signature sig, size bytes each, into dst as
// ASN.1 DER, returning its length, and reports whether sig has that width
// and r and s are not zero. dst must hold MaxDERLen bytes.
func PutJWSAsDER(dst, sig []byte, size int) (int, bool) {
	if size == 0 || len(sig) != 2*size || size > 66 {
		return 0, false
	}
	r, s := trimZeros(sig[:size]), trimZeros(sig[size:])
	if len(r) == 0 || len(s) == 0 {
		return 0, false
	}
	body := intLen(r) + intLen(s)
	n := 0
	dst[n] = 0x30
	n++
	if body >= 0x80 {
		dst[n] = 0x81
		n++
	}
	dst[n] = byte(body)
	n++
	n += putInt(dst[n:], r)
	n += putInt(dst[n:], s)
	return n, true
}

func trimZeros(v []byte) []byte {
	for len(v) > 0 && v[0] == 0 {
		v = v[1:]
	}
	return v
}

// intLen is the DER length of the INTEGER holding the unsigned v.
func intLen(v []byte) int {
	n := len(v)
	if v[0]&0x80 != 0 {
		n++
	}
	return 2 + n
}

func putInt(dst, v []byte) int {
	dst[0] = 0x02
	n := len(v)
	pad := v[0]&0x80 != 0
	if pad {
		n++
	}
	dst[1] = byte(n)
	i := 2
	if pad {
		dst[i] = 0
		i++
	}
	return i + copy(dst[i:], v)
}
