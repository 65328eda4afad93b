package keyformat

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"fmt"
	"hash"

	"golang.org/x/crypto/scrypt"
)

// Encrypted PKCS#8 (RFC 5958 EncryptedPrivateKeyInfo) with PBES2 (RFC 8018):
// PBKDF2 (HMAC-SHA1/224/256/384/512) or scrypt (RFC 7914) and AES-CBC. This
// is what `openssl genpkey -aes256`, `openssl pkcs8 -topk8 [-scrypt]` and
// Python's cryptography write. The KDF cost is capped so a hostile file cannot
// make loading take minutes or gigabytes.

var (
	oidPBES2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA224 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

const (
	maxPBKDF2Iterations = 10_000_000
	maxScryptMemory     = 256 << 20 // bytes: 128 * N * r
	maxScryptP          = 16
	maxScryptWork       = 1 << 22 // N*r*p; openssl's default (N=16384, r=8, p=1) is 1<<17
)

type algorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

type encryptedPrivateKeyInfo struct {
	Algorithm     algorithmIdentifier
	EncryptedData []byte
}

type pbes2Params struct {
	KeyDerivationFunc algorithmIdentifier
	EncryptionScheme  algorithmIdentifier
}

type pbkdf2Params struct {
	Salt           []byte
	IterationCount int
	KeyLength      int                 `asn1:"optional"`
	PRF            algorithmIdentifier `asn1:"optional"`
}

type scryptParams struct {
	Salt                     []byte
	CostParameter            int
	BlockSize                int
	ParallelizationParameter int
	KeyLength                int `asn1:"optional"`
}

// DecryptPKCS8 decrypts the DER of an "ENCRYPTED PRIVATE KEY" block and
// returns the DER of the PKCS#8 PrivateKeyInfo inside. A padding failure is
// reported as ErrIncorrectPassphrase.
func DecryptPKCS8(der, passphrase []byte) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if err := unmarshalExact(der, &info); err != nil {
		return nil, fmt.Errorf("%w: encrypted PKCS#8", ErrFormat)
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("%w: encrypted PKCS#8 scheme %s (only PBES2)", ErrUnsupported, info.Algorithm.Algorithm)
	}
	var params pbes2Params
	if err := unmarshalExact(info.Algorithm.Parameters.FullBytes, &params); err != nil {
		return nil, fmt.Errorf("%w: PBES2 parameters", ErrFormat)
	}

	var keyLen int
	switch enc := params.EncryptionScheme.Algorithm; {
	case enc.Equal(oidAES128CBC):
		keyLen = 16
	case enc.Equal(oidAES192CBC):
		keyLen = 24
	case enc.Equal(oidAES256CBC):
		keyLen = 32
	default:
		return nil, fmt.Errorf("%w: PBES2 cipher %s (only AES-CBC)", ErrUnsupported, enc)
	}
	var iv []byte
	if err := unmarshalExact(params.EncryptionScheme.Parameters.FullBytes, &iv); err != nil || len(iv) != aes.BlockSize {
		return nil, fmt.Errorf("%w: PBES2 IV", ErrFormat)
	}

	key, err := deriveKey(params.KeyDerivationFunc, passphrase, keyLen)
	if err != nil {
		return nil, err
	}
	defer clear(key)

	ct := info.EncryptedData
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: encrypted PKCS#8 data length", ErrFormat)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	n := int(pt[len(pt)-1])
	if n == 0 || n > aes.BlockSize {
		clear(pt)
		return nil, ErrIncorrectPassphrase
	}
	for _, b := range pt[len(pt)-n:] {
		if int(b) != n {
			clear(pt)
			return nil, ErrIncorrectPassphrase
		}
	}
	return pt[:len(pt)-n], nil
}

func deriveKey(kdf algorithmIdentifier, passphrase []byte, keyLen int) ([]byte, error) {
	switch {
	case kdf.Algorithm.Equal(oidPBKDF2):
		var p pbkdf2Params
		if err := unmarshalExact(kdf.Parameters.FullBytes, &p); err != nil {
			return nil, fmt.Errorf("%w: PBKDF2 parameters", ErrFormat)
		}
		if p.IterationCount < 1 || p.IterationCount > maxPBKDF2Iterations {
			return nil, fmt.Errorf("%w: PBKDF2 iteration count %d out of range", ErrUnsupported, p.IterationCount)
		}
		if p.KeyLength != 0 && p.KeyLength != keyLen {
			return nil, fmt.Errorf("%w: PBKDF2 key length %d", ErrFormat, p.KeyLength)
		}
		var h func() hash.Hash
		switch prf := p.PRF.Algorithm; {
		case len(prf) == 0, prf.Equal(oidHMACSHA1):
			h = sha1.New
		case prf.Equal(oidHMACSHA224):
			h = sha256.New224
		case prf.Equal(oidHMACSHA256):
			h = sha256.New
		case prf.Equal(oidHMACSHA384):
			h = sha512.New384
		case prf.Equal(oidHMACSHA512):
			h = sha512.New
		default:
			return nil, fmt.Errorf("%w: PBKDF2 PRF %s", ErrUnsupported, prf)
		}
		key, err := pbkdf2.Key(h, string(passphrase), p.Salt, p.IterationCount, keyLen)
		if err != nil {
			return nil, fmt.Errorf("%w: PBKDF2: %w", ErrFormat, err)
		}
		return key, nil
	case kdf.Algorithm.Equal(oidScrypt):
		var p scryptParams
		if err := unmarshalExact(kdf.Parameters.FullBytes, &p); err != nil {
			return nil, fmt.Errorf("%w: scrypt parameters", ErrFormat)
		}
		// scrypt allocates 128*r*(N+p) bytes and works through N*r*p blocks.
		n, r, par := p.CostParameter, p.BlockSize, p.ParallelizationParameter
		if n < 2 || r < 1 || par < 1 || par > maxScryptP ||
			r > maxScryptMemory/128 || n+par > maxScryptMemory/128/r ||
			n > maxScryptWork/r/par {
			return nil, fmt.Errorf("%w: scrypt parameters out of range", ErrUnsupported)
		}
		if p.KeyLength != 0 && p.KeyLength != keyLen {
			return nil, fmt.Errorf("%w: scrypt key length %d", ErrFormat, p.KeyLength)
		}
		key, err := scrypt.Key(passphrase, p.Salt, p.CostParameter, p.BlockSize, p.ParallelizationParameter, keyLen)
		if err != nil {
			return nil, fmt.Errorf("%w: scrypt: %w", ErrFormat, err)
		}
		return key, nil
	default:
		return nil, fmt.Errorf("%w: PBES2 key derivation %s", ErrUnsupported, kdf.Algorithm)
	}
}

// unmarshalExact is asn1.Unmarshal that refuses trailing bytes.
func unmarshalExact(der []byte, v any) error {
	rest, err := asn1.Unmarshal(der, v)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return asn1.SyntaxError{Msg: "trailing data"}
	}
	return nil
}
