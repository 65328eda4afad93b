package asymjwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"math/big"

	"github.com/asymjwt/asymjwt/internal/edverify"
	"github.com/asymjwt/asymjwt/internal/sigconv"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
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

// keyType is the kind of key an algorithm needs.
type keyType uint8

const (
	rsaKey keyType = iota + 1
	ecdsaKey
	ed25519Key
)

// algSpec is everything this package knows about one algorithm. The table
// below is the only place that knows it: signer, verifier and ssh-agent
// read it.
type algSpec struct {
	alg   Algorithm
	key   keyType
	hash  crypto.Hash    // 0 for EdDSA, which signs the message itself
	pss   bool           // RSASSA-PSS rather than PKCS #1 v1.5
	curve elliptic.Curve // ECDSA only
	size  int            // ECDSA: bytes of r and of s in a JWS signature
	// An ssh-agent signs RSA with PKCS #1 v1.5 and SHA-256 or SHA-512 only:
	// the flag that asks for it and the signature format it answers with.
	agentFlags  agent.SignatureFlags
	agentFormat string
}

var algorithms = [...]algSpec{
	{alg: RS256, key: rsaKey, hash: crypto.SHA256, agentFlags: agent.SignatureFlagRsaSha256, agentFormat: ssh.KeyAlgoRSASHA256},
	{alg: RS384, key: rsaKey, hash: crypto.SHA384},
	{alg: RS512, key: rsaKey, hash: crypto.SHA512, agentFlags: agent.SignatureFlagRsaSha512, agentFormat: ssh.KeyAlgoRSASHA512},
	{alg: PS256, key: rsaKey, hash: crypto.SHA256, pss: true},
	{alg: PS384, key: rsaKey, hash: crypto.SHA384, pss: true},
	{alg: PS512, key: rsaKey, hash: crypto.SHA512, pss: true},
	{alg: ES256, key: ecdsaKey, hash: crypto.SHA256, curve: elliptic.P256(), size: 32, agentFormat: ssh.KeyAlgoECDSA256},
	{alg: ES384, key: ecdsaKey, hash: crypto.SHA384, curve: elliptic.P384(), size: 48, agentFormat: ssh.KeyAlgoECDSA384},
	{alg: ES512, key: ecdsaKey, hash: crypto.SHA512, curve: elliptic.P521(), size: 66, agentFormat: ssh.KeyAlgoECDSA521},
	{alg: EdDSA, key: ed25519Key, agentFormat: ssh.KeyAlgoED25519},
}

// spec returns the table's entry for alg, compared exactly (no case
// folding), or nil for any other name.
func (alg Algorithm) spec() *algSpec {
	for i := range algorithms {
		if algorithms[i].alg == alg {
			return &algorithms[i]
		}
	}
	return nil
}

// specOf is spec for a name read from a token, without converting it to a
// string.
func specOf(name []byte) *algSpec {
	for i := range algorithms {
		if string(algorithms[i].alg) == string(name) {
			return &algorithms[i]
		}
	}
	return nil
}

// DefaultAlgorithm returns the algorithm a key signs with unless told
// otherwise: RS512 for RSA (the only one the original Python library accepts
// by default), ES256/ES384/ES512 for ECDSA P-256/P-384/P-521, EdDSA for
// Ed25519. Other keys, and RSA keys under 2048 bits, are refused.
func DefaultAlgorithm(pub crypto.PublicKey) (Algorithm, error) {
	if err := checkPublicKey(pub); err != nil {
		return "", errorf("%w", err)
	}
	return defaultAlgorithm(pub), nil
}

// defaultAlgorithm is DefaultAlgorithm for a key checkPublicKey accepted.
func defaultAlgorithm(pub crypto.PublicKey) Algorithm {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return RS512
	case *ecdsa.PublicKey:
		for i := range algorithms {
			if algorithms[i].curve == k.Curve {
				return algorithms[i].alg
			}
		}
	}
	return EdDSA
}

// checkPublicKey accepts RSA >= 2048 bits, ECDSA on P-256/P-384/P-521 and
// Ed25519, and refuses everything else with an unprefixed error wrapping a
// sentinel.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N == nil || k.N.BitLen() < minRSABits {
			return fmt.Errorf("%w (%d bits)", ErrWeakKey, bitLen(k.N))
		}
		return nil
	case *ecdsa.PublicKey:
		for i := range algorithms {
			if c := algorithms[i].curve; c != nil && c == k.Curve {
				return nil
			}
		}
		return fmt.Errorf("%w: ECDSA curve %s", ErrUnsupportedKey, curveName(k.Curve))
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

// fits reports whether the algorithm may be used with pub: any RS/PS
// variant for RSA, only the ES variant of its own curve for ECDSA, only
// EdDSA for Ed25519.
func (a *algSpec) fits(pub crypto.PublicKey) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return a.key == rsaKey
	case *ecdsa.PublicKey:
		return a.key == ecdsaKey && a.curve == k.Curve
	case ed25519.PublicKey:
		return a.key == ed25519Key
	}
	return false
}

// signerOpts returns the crypto.SignerOpts for a crypto.Signer.
func (a *algSpec) signerOpts() crypto.SignerOpts {
	if a.pss {
		return &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: a.hash}
	}
	return a.hash
}

// digest hashes msg into buf and returns the digest (msg itself for EdDSA),
// so the common case allocates nothing.
func (a *algSpec) digest(msg []byte, buf *[64]byte) []byte {
	switch a.hash {
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

// verify checks sig over signingInput with pub, which fits the algorithm.
// ECDSA signatures are the fixed-width r||s of RFC 7518 §3.4; PSS accepts
// any salt length, as RFC 7518 §3.5 leaves it to the signer. An Ed25519
// key that verifies is kept decoded in ed, unless ed is nil: a key anyone
// could have made (a certificate's, before its CA's signature is checked)
// must not take a place there.
func (a *algSpec) verify(ed *edverify.Cache, pub crypto.PublicKey, signingInput, sig []byte) bool {
	// A digest buffer per case: rsa.VerifyPSS leaks its digest to the heap,
	// which would take a shared buffer with it on every verification.
	switch a.key {
	case ed25519Key:
		// Unlike ed25519.Verify, this does not panic on a key of another
		// length, which a KeyStore may hand over.
		return ed.Verify(pub.(ed25519.PublicKey), signingInput, sig)
	case rsaKey:
		k := pub.(*rsa.PublicKey)
		if a.pss {
			var buf [64]byte
			return rsa.VerifyPSS(k, a.hash, a.digest(signingInput, &buf), sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
		}
		var buf [64]byte
		return rsa.VerifyPKCS1v15(k, a.hash, a.digest(signingInput, &buf), sig) == nil
	case ecdsaKey:
		var buf [64]byte
		var der [sigconv.MaxDERLen]byte
		n, ok := sigconv.PutJWSAsDER(der[:], sig, a.size)
		return ok && ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), a.digest(signingInput, &buf), der[:n])
	}
	return false
}

// rsaModulusBytes returns the size of an RSA key's modulus in bytes, or 0
// for other keys.
func rsaModulusBytes(pub any) int {
	if k, ok := pub.(*rsa.PublicKey); ok && k.N != nil {
		return (k.N.BitLen() + 7) / 8
	}
	return 0
}
