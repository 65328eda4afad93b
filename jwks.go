package asymjwt

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"

	"github.com/asymjwt/asymjwt/internal/jsonscan"
	"github.com/asymjwt/asymjwt/internal/jws"
)

// JSON Web Keys (RFC 7517) for the keys of an access-token issuer. A key's
// "kid" is its RFC 7638 thumbprint (SHA-256, base64url), not the SSH
// fingerprint that request tokens carry: any JOSE library can compute it
// from the key, and the two namespaces stay apart, so a Bearer token's kid
// can never name a user's key.

// IssuerKey is one public key of an access-token issuer.
type IssuerKey struct {
	// KeyID is the key's "kid".
	KeyID string
	// Key is *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	Key crypto.PublicKey
	// Algorithm is the only algorithm the key verifies (a JWK's "alg");
	// empty means any algorithm that fits the key.
	Algorithm Algorithm
}

// IssuerKeySet gives the keys that one issuer signs access tokens with. A
// [Verifier] told to trust it ([WithTrustedIssuer]) accepts an
// "Authorization: Bearer" token whose "iss" is Issuer() and whose
// signature verifies with the key its "kid" names, and no other. [*Issuer]
// (the keys of a [TokenEndpoint] in this process), [*KeySet] (keys given
// up front) and [*RemoteKeySet] (an issuer's JWKS URL) implement it.
// Implementations must be safe for concurrent use.
type IssuerKeySet interface {
	// Issuer returns the issuer identifier its tokens carry as "iss".
	Issuer() string
	// IssuerKey returns the key whose "kid" is kid, and whether there is
	// one. An error means the set could not tell (its JWKS could not be
	// fetched): the verifier refuses the token as unavailable.
	IssuerKey(ctx context.Context, kid string) (IssuerKey, bool, error)
}

var (
	_ IssuerKeySet = (*KeySet)(nil)
	_ IssuerKeySet = (*Issuer)(nil)
	_ IssuerKeySet = (*RemoteKeySet)(nil)
)

// KeySet is a fixed set of an issuer's public keys. It is safe for
// concurrent use.
type KeySet struct {
	issuer string
	keys   []IssuerKey
}

// NewKeySet returns the key set of issuer made of keys, each identified by
// its RFC 7638 thumbprint (see [Thumbprint]) and verifying any algorithm
// that fits it. Keys are checked as a [Signer]'s are.
func NewKeySet(issuer string, keys ...crypto.PublicKey) (*KeySet, error) {
	if !validIssuer(issuer) {
		return nil, errorf("NewKeySet: %w: issuer %q", ErrInvalidOption, truncate(issuer))
	}
	s := &KeySet{issuer: issuer}
	for _, pub := range keys {
		kid, err := thumbprint(pub)
		if err != nil {
			return nil, errorf("NewKeySet: %w", err)
		}
		s.keys = append(s.keys, IssuerKey{KeyID: kid, Key: pub})
	}
	return s, nil
}

// ParseKeySet reads a JWK set (RFC 7517 §5), as an issuer publishes it at
// its jwks_uri, for issuer. It keeps the signature keys it can use: RSA
// ("kty": "RSA", 2048 bits or more), ECDSA ("EC", P-256, P-384, P-521, the
// point checked to be on the curve) and Ed25519 ("OKP"), each with a "kid".
// Every other key is skipped and reported in the second result: a
// symmetric key ("oct"), a key for encryption ("use": "enc"), an "alg" that
// does not fit the key or is not one of this package's, a key with private
// parts, a duplicate "kid". A document that is not a JWK set gives a nil
// KeySet. The JSON is read strictly (no duplicate or case-variant names).
func ParseKeySet(issuer string, jwks []byte) (*KeySet, []error) {
	if !validIssuer(issuer) {
		return nil, []error{errorf("ParseKeySet: %w: issuer %q", ErrInvalidOption, truncate(issuer))}
	}
	var list []byte
	err := jsonscan.ScanObject(jwks, func(name, value []byte) error {
		if string(name) == "keys" {
			list = value
		}
		return nil
	})
	if err != nil || list == nil || list[0] != '[' {
		return nil, []error{errorf("ParseKeySet: %w: not a JWK set", ErrKeyFormat)}
	}
	s := &KeySet{issuer: issuer}
	var errs []error
	i := 0
	_ = jsonscan.Elements(list, func(elem []byte) error {
		i++
		k, err := parseJWK(elem)
		if err == nil {
			if _, dup := s.find(k.KeyID); dup {
				err = fmt.Errorf("%w: kid %q given twice", ErrKeyFormat, truncate(k.KeyID))
			}
		}
		if err != nil {
			errs = append(errs, errorf("JWK %d: %w", i, err))
			return nil
		}
		s.keys = append(s.keys, k)
		return nil
	})
	return s, errs
}

// Issuer returns the issuer identifier.
func (s *KeySet) Issuer() string { return s.issuer }

// IssuerKey returns the key whose kid is kid.
func (s *KeySet) IssuerKey(_ context.Context, kid string) (IssuerKey, bool, error) {
	k, ok := s.find(kid)
	return k, ok, nil
}

// Keys returns the keys of the set.
func (s *KeySet) Keys() []IssuerKey { return append([]IssuerKey(nil), s.keys...) }

// MarshalJSON encodes the set as a JWK set document (RFC 7517 §5), each
// key with "kid", "use": "sig" and, when it has one, "alg".
func (s *KeySet) MarshalJSON() ([]byte, error) { return appendJWKS(nil, s.keys), nil }

func (s *KeySet) find(kid string) (IssuerKey, bool) {
	for _, k := range s.keys {
		if k.KeyID == kid {
			return k, true
		}
	}
	return IssuerKey{}, false
}

// validIssuer accepts an issuer identifier by the rules of a username: 1
// to 256 bytes of UTF-8 without control characters.
func validIssuer(iss string) bool { return validUsername(iss) }

// Thumbprint returns the RFC 7638 thumbprint of a public key, SHA-256 and
// unpadded base64url: the "kid" under which an [Issuer] publishes the key
// and signs access tokens with it.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	kid, err := thumbprint(pub)
	if err != nil {
		return "", errorf("Thumbprint: %w", err)
	}
	return kid, nil
}

func thumbprint(pub crypto.PublicKey) (string, error) {
	if err := checkPublicKey(pub); err != nil {
		return "", err
	}
	// RFC 7638 §3.2: the required members only, in lexicographic order.
	var b []byte
	switch k := pub.(type) {
	case *rsa.PublicKey:
		b = append(b, `{"e":"`...)
		b = jws.AppendSegment(b, big.NewInt(int64(k.E)).Bytes())
		b = append(b, `","kty":"RSA","n":"`...)
		b = jws.AppendSegment(b, k.N.Bytes())
		b = append(b, `"}`...)
	case *ecdsa.PublicKey:
		x, y, err := ecPoint(k)
		if err != nil {
			return "", err
		}
		b = append(b, `{"crv":"`...)
		b = append(b, curveName(k.Curve)...)
		b = append(b, `","kty":"EC","x":"`...)
		b = jws.AppendSegment(b, x)
		b = append(b, `","y":"`...)
		b = jws.AppendSegment(b, y)
		b = append(b, `"}`...)
	case ed25519.PublicKey:
		b = append(b, `{"crv":"Ed25519","kty":"OKP","x":"`...)
		b = jws.AppendSegment(b, k)
		b = append(b, `"}`...)
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// ecPoint returns the fixed-width coordinates of an ECDSA public key.
func ecPoint(k *ecdsa.PublicKey) (x, y []byte, err error) {
	p, err := k.Bytes() // 0x04 || X || Y
	if err != nil || len(p) < 3 || p[0] != 4 {
		return nil, nil, fmt.Errorf("%w: ECDSA point", ErrUnsupportedKey)
	}
	n := (len(p) - 1) / 2
	return p[1 : 1+n], p[1+n:], nil
}

// appendJWKS appends the JWK set of keys to dst.
func appendJWKS(dst []byte, keys []IssuerKey) []byte {
	dst = append(dst, `{"keys":[`...)
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJWK(dst, k)
	}
	return append(dst, "]}"...)
}

// appendJWK appends one public key as a JWK (RFC 7517 §4, RFC 7518 §6, RFC
// 8037 §2). The key passed checkPublicKey.
func appendJWK(dst []byte, k IssuerKey) []byte {
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		dst = append(dst, `{"kty":"RSA","n":"`...)
		dst = jws.AppendSegment(dst, pub.N.Bytes())
		dst = append(dst, `","e":"`...)
		dst = jws.AppendSegment(dst, big.NewInt(int64(pub.E)).Bytes())
		dst = append(dst, '"')
	case *ecdsa.PublicKey:
		x, y, _ := ecPoint(pub)
		dst = append(dst, `{"kty":"EC","crv":"`...)
		dst = append(dst, curveName(pub.Curve)...)
		dst = append(dst, `","x":"`...)
		dst = jws.AppendSegment(dst, x)
		dst = append(dst, `","y":"`...)
		dst = jws.AppendSegment(dst, y)
		dst = append(dst, '"')
	case ed25519.PublicKey:
		dst = append(dst, `{"kty":"OKP","crv":"Ed25519","x":"`...)
		dst = jws.AppendSegment(dst, pub)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"use":"sig","kid":`...)
	dst = jsonscan.AppendString(dst, k.KeyID)
	if k.Algorithm != "" {
		dst = append(dst, `,"alg":`...)
		dst = jsonscan.AppendString(dst, string(k.Algorithm))
	}
	return append(dst, '}')
}

var b64 = base64.RawURLEncoding.Strict()

// parseJWK reads one JWK of a set. Its errors are unprefixed.
func parseJWK(data []byte) (IssuerKey, error) {
	var (
		k                        IssuerKey
		kty, crv                 string
		x, y, n, e               []byte
		badUse, hasOps, opVerify bool
		private                  bool
		bad                      error
	)
	b64Member := func(name string, value []byte) []byte {
		s, ok := jsonscan.String(value)
		if !ok {
			bad = fmt.Errorf("%w: %s is not a string", ErrKeyFormat, name)
			return nil
		}
		out, err := b64.DecodeString(s)
		if err != nil || len(out) == 0 {
			bad = fmt.Errorf("%w: %s is not base64url", ErrKeyFormat, name)
			return nil
		}
		return out
	}
	err := jsonscan.ScanObject(data, func(name, value []byte) error {
		var ok bool
		switch string(name) {
		case "kty":
			kty, ok = jsonscan.String(value)
		case "kid":
			k.KeyID, ok = jsonscan.String(value)
			ok = ok && k.KeyID != "" && len(k.KeyID) <= maxNonceLen
		case "use":
			var u string
			u, ok = jsonscan.String(value)
			badUse = ok && u != "sig"
		case "alg":
			var a string
			a, ok = jsonscan.String(value)
			k.Algorithm = Algorithm(a)
		case "key_ops":
			hasOps = true
			var ops []string
			ops, ok = jsonscan.StringArray(value)
			for _, op := range ops {
				opVerify = opVerify || op == "verify"
			}
		case "crv":
			crv, ok = jsonscan.String(value)
		case "x":
			x, ok = b64Member("x", value), true
		case "y":
			y, ok = b64Member("y", value), true
		case "n":
			n, ok = b64Member("n", value), true
		case "e":
			e, ok = b64Member("e", value), true
		case "d", "p", "q", "dp", "dq", "qi", "oth", "k":
			private, ok = true, true
		default:
			ok = true
		}
		if !ok {
			return fmt.Errorf("%w: member %q of the wrong type", ErrKeyFormat, name)
		}
		return nil
	})
	switch {
	case err != nil && errors.Is(err, ErrKeyFormat):
		return k, err
	case err != nil:
		return k, fmt.Errorf("%w: %v", ErrKeyFormat, err)
	case bad != nil:
		return k, bad
	case private:
		return k, fmt.Errorf("%w: holds private or symmetric key material; not used", ErrKeyFormat)
	case k.KeyID == "":
		return k, fmt.Errorf("%w: no kid", ErrKeyFormat)
	case badUse:
		return k, fmt.Errorf("%w: kid %q is not for signatures (use)", ErrUnsupportedKey, truncate(k.KeyID))
	case hasOps && !opVerify:
		return k, fmt.Errorf("%w: kid %q is not for verifying (key_ops)", ErrUnsupportedKey, truncate(k.KeyID))
	}
	switch kty {
	case "RSA":
		if n == nil || e == nil || len(e) > 4 || n[0] == 0 {
			return k, fmt.Errorf("%w: RSA key %q without a valid n and e", ErrKeyFormat, truncate(k.KeyID))
		}
		exp := new(big.Int).SetBytes(e)
		if exp.Int64() < 3 || exp.Int64()%2 == 0 || exp.BitLen() > 31 {
			return k, fmt.Errorf("%w: RSA key %q: bad exponent", ErrKeyFormat, truncate(k.KeyID))
		}
		k.Key = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}
	case "EC":
		var spec *algSpec
		for i := range algorithms {
			if c := algorithms[i].curve; c != nil && curveName(c) == crv {
				spec = &algorithms[i]
			}
		}
		if spec == nil {
			return k, fmt.Errorf("%w: EC key %q on curve %q", ErrUnsupportedKey, truncate(k.KeyID), truncate(crv))
		}
		if len(x) != spec.size || len(y) != spec.size {
			return k, fmt.Errorf("%w: EC key %q: coordinates of the wrong size", ErrKeyFormat, truncate(k.KeyID))
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(spec.curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return k, fmt.Errorf("%w: EC key %q: not a point on %s", ErrKeyFormat, truncate(k.KeyID), crv)
		}
		k.Key = pub
	case "OKP":
		if crv != "Ed25519" {
			return k, fmt.Errorf("%w: OKP key %q on curve %q", ErrUnsupportedKey, truncate(k.KeyID), truncate(crv))
		}
		if len(x) != ed25519.PublicKeySize {
			return k, fmt.Errorf("%w: Ed25519 key %q of the wrong size", ErrKeyFormat, truncate(k.KeyID))
		}
		k.Key = ed25519.PublicKey(bytes.Clone(x))
	default:
		return k, fmt.Errorf("%w: kid %q: key type %q", ErrUnsupportedKey, truncate(k.KeyID), truncate(kty))
	}
	if err := checkPublicKey(k.Key); err != nil {
		return k, fmt.Errorf("kid %q: %w", truncate(k.KeyID), err)
	}
	if k.Algorithm != "" {
		spec := k.Algorithm.spec()
		if spec == nil || !spec.fits(k.Key) {
			return k, fmt.Errorf("%w: kid %q: alg %q does not fit the key", ErrUnsupportedAlgorithm, truncate(k.KeyID), truncate(string(k.Algorithm)))
		}
	}
	return k, nil
}
