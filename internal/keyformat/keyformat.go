// Package keyformat tells apart the key encodings openssl and ssh-keygen
// write: it parses PKCS#8, PKCS#1 and SEC1 private keys, decrypts encrypted
// PKCS#8, and says why a key that does not parse was refused (an
// unsupported curve or algorithm, or garbage), never quoting key bytes.
package keyformat

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
)

// The causes of a refused key. The root package exports them under its own
// names (asymjwt.ErrKeyFormat, ...).
var (
	ErrFormat              = errors.New("not a recognised key")
	ErrUnsupported         = errors.New("unsupported key type")
	ErrIncorrectPassphrase = errors.New("incorrect passphrase")
)

var (
	oidPublicKeyRSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidPublicKeyECDSA   = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidPublicKeyEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
	oidCurveP256        = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidCurveP384        = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
	oidCurveP521        = asn1.ObjectIdentifier{1, 3, 132, 0, 35}
)

func knownCurve(oid asn1.ObjectIdentifier) bool {
	return oid.Equal(oidCurveP256) || oid.Equal(oidCurveP384) || oid.Equal(oidCurveP521)
}

// ParsePKCS8 parses an unencrypted PKCS#8 private key, telling unsupported
// key types and curves ([ErrUnsupported]) apart from garbage ([ErrFormat]).
func ParsePKCS8(der []byte) (any, error) {
	raw, err := x509.ParsePKCS8PrivateKey(der)
	if err == nil {
		return raw, nil
	}
	var info struct {
		Version   int
		Algorithm struct {
			Algorithm  asn1.ObjectIdentifier
			Parameters asn1.RawValue `asn1:"optional"`
		}
		PrivateKey []byte
	}
	if _, perr := asn1.Unmarshal(der, &info); perr != nil {
		return nil, fmt.Errorf("%w: PKCS#8", ErrFormat)
	}
	switch alg := info.Algorithm.Algorithm; {
	case alg.Equal(oidPublicKeyECDSA):
		var curve asn1.ObjectIdentifier
		if _, perr := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &curve); perr == nil && !knownCurve(curve) {
			return nil, fmt.Errorf("%w: ECDSA curve %s", ErrUnsupported, curve)
		}
		return nil, fmt.Errorf("%w: PKCS#8 ECDSA", ErrFormat)
	case alg.Equal(oidPublicKeyRSA), alg.Equal(oidPublicKeyEd25519):
		return nil, fmt.Errorf("%w: PKCS#8", ErrFormat)
	default:
		return nil, fmt.Errorf("%w: PKCS#8 algorithm %s", ErrUnsupported, alg)
	}
}

// ParseTraditional parses the DER of a PKCS#1 RSA key ("RSA PRIVATE KEY")
// or a SEC1 EC key ("EC PRIVATE KEY").
func ParseTraditional(blockType string, der []byte) (any, error) {
	if blockType == "RSA PRIVATE KEY" {
		k, err := x509.ParsePKCS1PrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("%w: PKCS#1", ErrFormat)
		}
		return k, nil
	}
	k, err := x509.ParseECPrivateKey(der)
	if err == nil {
		return k, nil
	}
	var ec struct {
		Version       int
		PrivateKey    []byte
		NamedCurveOID asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
	}
	if _, perr := asn1.Unmarshal(der, &ec); perr == nil && len(ec.NamedCurveOID) > 0 && !knownCurve(ec.NamedCurveOID) {
		return nil, fmt.Errorf("%w: ECDSA curve %s", ErrUnsupported, ec.NamedCurveOID)
	}
	return nil, fmt.Errorf("%w: SEC1", ErrFormat)
}

// ParsePKIX parses a PKIX ("PUBLIC KEY") public key, telling an
// unsupported key (another curve or algorithm) apart from garbage.
func ParsePKIX(der []byte) (any, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err == nil {
		return pub, nil
	}
	var spki struct {
		Algorithm struct {
			Algorithm  asn1.ObjectIdentifier
			Parameters asn1.RawValue `asn1:"optional"`
		}
		PublicKey asn1.BitString
	}
	rest, err := asn1.Unmarshal(der, &spki)
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: malformed PKIX public key", ErrFormat)
	}
	switch alg := spki.Algorithm.Algorithm; {
	case alg.Equal(oidPublicKeyECDSA):
		var curve asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(spki.Algorithm.Parameters.FullBytes, &curve); err == nil && !knownCurve(curve) {
			return nil, fmt.Errorf("%w: ECDSA curve %s", ErrUnsupported, curve)
		}
	case alg.Equal(oidPublicKeyRSA), alg.Equal(oidPublicKeyEd25519):
	default:
		return nil, fmt.Errorf("%w: PKIX key algorithm %s", ErrUnsupported, alg)
	}
	return nil, fmt.Errorf("%w: malformed PKIX public key", ErrFormat)
}
