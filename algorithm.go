package asymjwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Algorithm is a JWS signature algorithm ("alg", RFC 7518 §3). Only
// asymmetric algorithms exist here: no HMAC, no "none".
type Algorithm string

// The algorithms asymjwt signs and verifies.
const (
	RS256 Algorithm = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256
	RS384 Algorithm = "RS384" // RSASSA-PKCS1-v1_5 with SHA-384
	RS512 Algorithm = "RS512" // RSASSA-PKCS1-v1_5 with SHA-512; the default for RSA keys
	PS256 Algorithm = "PS256" // RSASSA-PSS with SHA-256
	PS384 Algorithm = "PS384" // RSASSA-PSS with SHA-384
	PS512 Algorithm = "PS512" // RSASSA-PSS with SHA-512
	ES256 Algorithm = "ES256" // ECDSA P-256 with SHA-256
	ES384 Algorithm = "ES384" // ECDSA P-384 with SHA-384
	ES512 Algorithm = "ES512" // ECDSA P-521 with SHA-512
	EdDSA Algorithm = "EdDSA" // Ed25519
)

// minRSABits is the smallest RSA modulus accepted for signing or verifying.
const minRSABits = 2048

// DefaultAlgorithm returns the algorithm a key signs with unless told
// otherwise: RS512 for RSA (the only one the original Python library accepts
// by default), ES256/ES384/ES512 for ECDSA P-256/P-384/P-521, EdDSA for
// Ed25519. Other keys, and RSA keys under 2048 bits, are refused.
func DefaultAlgorithm(pub crypto.PublicKey) (Algorithm, error) {
	if err := checkPublicKey(pub); err != nil {
		return "", err
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return RS512, nil
	case *ecdsa.PublicKey:
		return ecdsaAlgorithm(k.Curve), nil
	default: // ed25519.PublicKey, as checkPublicKey allowed nothing else
		return EdDSA, nil
	}
}

// checkPublicKey accepts RSA >= 2048 bits, ECDSA on P-256/P-384/P-521 and
// Ed25519, and refuses everything else with a wrapped sentinel.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N == nil || k.N.BitLen() < minRSABits {
			return fmt.Errorf("%w (%d bits)", ErrWeakKey, bitLen(k.N))
		}
		return nil
	case *ecdsa.PublicKey:
		if ecdsaAlgorithm(k.Curve) == "" {
			return fmt.Errorf("%w: ECDSA curve %s", ErrUnsupportedKey, curveName(k.Curve))
		}
		return nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 key of %d bytes", ErrUnsupportedKey, len(k))
		}
		return nil
	default:
		return fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
	}
}

func bitLen(n *big.Int) int {
	if n == nil {
		return 0
	}
	return n.BitLen()
}

func curveName(c elliptic.Curve) string {
	if c == nil || c.Params() == nil {
		return "unknown"
	}
	return c.Params().Name
}

func ecdsaAlgorithm(c elliptic.Curve) Algorithm {
	switch c {
	case elliptic.P256():
		return ES256
	case elliptic.P384():
		return ES384
	case elliptic.P521():
		return ES512
	}
	return ""
}

// fitsKey reports whether alg may be used with pub: any RS/PS variant for
// RSA, only the ES variant of its own curve for ECDSA, only EdDSA for Ed25519.
func fitsKey(alg Algorithm, pub crypto.PublicKey) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch alg {
		case RS256, RS384, RS512, PS256, PS384, PS512:
			return true
		}
	case *ecdsa.PublicKey:
		return alg != "" && alg == ecdsaAlgorithm(k.Curve)
	case ed25519.PublicKey:
		return alg == EdDSA
	}
	return false
}

// hash returns the digest function of alg (0 for EdDSA, which signs the
// message itself).
func (alg Algorithm) hash() crypto.Hash {
	switch alg {
	case RS256, PS256, ES256:
		return crypto.SHA256
	case RS384, PS384, ES384:
		return crypto.SHA384
	case RS512, PS512, ES512:
		return crypto.SHA512
	}
	return 0
}

// signerOpts returns the crypto.SignerOpts for alg.
func (alg Algorithm) signerOpts() crypto.SignerOpts {
	switch alg {
	case PS256, PS384, PS512:
		return &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: alg.hash()}
	}
	return alg.hash()
}

// ecdsaSize is the byte width of r and of s in a JWS ECDSA signature.
func ecdsaSize(alg Algorithm) int {
	switch alg {
	case ES256:
		return 32
	case ES384:
		return 48
	case ES512:
		return 66
	}
	return 0
}

// digest hashes msg for alg into buf and returns the digest (msg itself for
// EdDSA), so the common case allocates nothing.
func digest(alg Algorithm, msg []byte, buf *[64]byte) []byte {
	switch alg.hash() {
	case crypto.SHA256:
		*(*[32]byte)(buf[:32]) = sha256.Sum256(msg)
		return buf[:32]
	case crypto.SHA384:
		*(*[48]byte)(buf[:48]) = sha512.Sum384(msg)
		return buf[:48]
	case crypto.SHA512:
		*buf = sha512.Sum512(msg)
		return buf[:64]
	}
	return msg
}

// derToJWS converts an ASN.1 DER ECDSA signature, as crypto.Signer returns
// it, to the fixed-width r||s form of RFC 7518 §3.4.
func derToJWS(der []byte, size int) ([]byte, error) {
	out := make([]byte, 2*size)
	if !putDERAsJWS(out, der) {
		return nil, errMalformedECDSA
	}
	return out, nil
}

// putDERAsJWS writes the ASN.1 DER ECDSA signature der into out as r||s,
// each half len(out)/2 bytes wide, and reports whether der was well formed.
func putDERAsJWS(out, der []byte) bool {
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

var errMalformedECDSA = errors.New("asymjwt: malformed ECDSA signature from signer")

// putFixed writes the big-endian unsigned integer v (an ASN.1 or SSH mpint
// body, which may carry a leading zero byte) right-aligned into dst.
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

// rsaModulusBytes returns the size of an RSA key's modulus in bytes, or 0
// for other keys.
func rsaModulusBytes(pub any) int {
	if k, ok := pub.(*rsa.PublicKey); ok && k.N != nil {
		return (k.N.BitLen() + 7) / 8
	}
	return 0
}
