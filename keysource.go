package asymjwt

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/asymjwt/asymjwt/internal/keyformat"
	"github.com/asymjwt/asymjwt/internal/sigconv"
	"golang.org/x/crypto/ssh"
)

// Key is a private key that signs tokens. The key itself may live in this
// process ([KeyFromFile], [ParseKey], [KeyFromSigner]) or elsewhere (an
// ssh-agent, a KMS). Implementations must be safe for concurrent use.
type Key interface {
	// Public returns the public half of the key: *rsa.PublicKey,
	// *ecdsa.PublicKey or ed25519.PublicKey.
	Public() crypto.PublicKey

	// SignJWS signs a JWS signing input (RFC 7515 §5.1) with alg and returns
	// the signature in the form RFC 7518 §3 gives it: for ECDSA the
	// fixed-width r||s, not ASN.1. It should give up when ctx is done.
	SignJWS(ctx context.Context, alg Algorithm, signingInput []byte) ([]byte, error)
}

type keyOptions struct {
	passphrase func() ([]byte, error)
	certFile   string // WithCertificateFile
	noCert     bool   // WithoutCertificate
}

// WithPassphrase gives the passphrase of an encrypted key. It is used only if
// the key is encrypted; the slice is not retained.
func WithPassphrase(passphrase []byte) KeyOption {
	return keyOptionFunc(func(o *keyOptions) error {
		o.passphrase = func() ([]byte, error) { return passphrase, nil }
		return nil
	})
}

// WithPassphraseFunc gives a function that returns the passphrase of an
// encrypted key, for example by prompting on a terminal. It is called at most
// once, and only if the key is encrypted. An error it returns is passed on
// wrapped; an empty passphrase counts as none. f must not be nil.
func WithPassphraseFunc(f func() ([]byte, error)) KeyOption {
	return keyOptionFunc(func(o *keyOptions) error {
		if f == nil {
			return optionError("WithPassphraseFunc", "nil function")
		}
		o.passphrase = f
		return nil
	})
}

// KeyFromFile reads a private key from a file. A leading "~/" in path stands
// for the user's home directory. The formats are those of [ParseKey]. Errors
// are [*KeyError] values naming the path and wrapping the cause; they never
// contain key bytes or the passphrase.
//
// When path-cert.pub exists beside the key (id_ed25519-cert.pub beside
// id_ed25519), as ssh -i looks for it, the key carries that OpenSSH user
// certificate (see [CertifiedKey]); a certificate file that exists but
// cannot be read, is not a user certificate or certifies another key is an
// error naming it. [WithCertificateFile] names another file;
// [WithoutCertificate] reads none.
func KeyFromFile(path string, opts ...KeyOption) (Key, error) {
	o, err := keyOpts(opts)
	if err != nil {
		return nil, err
	}
	expanded, err := expandHome(path)
	if err != nil {
		return nil, &KeyError{Path: path, Err: err}
	}
	fi, err := os.Stat(expanded)
	if err != nil {
		return nil, &KeyError{Path: path, Err: err}
	}
	if !fi.Mode().IsRegular() {
		return nil, &KeyError{Path: path, Err: ErrNotKeyFile}
	}
	data, err := os.ReadFile(expanded)
	if err != nil {
		return nil, &KeyError{Path: path, Err: err}
	}
	defer clear(data)
	k, err := parseKey(data, path, o)
	if err != nil {
		return nil, &KeyError{Path: path, Err: err}
	}
	return attachCertificateFile(k, path, o)
}

func keyOpts(opts []KeyOption) (keyOptions, error) {
	var o keyOptions
	for _, opt := range opts {
		if err := opt.applyKey(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// ParseKey reads a PEM-encoded private key:
//
//   - "RSA PRIVATE KEY" (PKCS#1), "EC PRIVATE KEY" (SEC1) and "PRIVATE KEY"
//     (PKCS#8 holding RSA, ECDSA or Ed25519), as openssl writes them;
//   - "OPENSSH PRIVATE KEY", as ssh-keygen writes it, plain or encrypted
//     (bcrypt KDF);
//   - "ENCRYPTED PRIVATE KEY" (PKCS#8 PBES2 with PBKDF2 or scrypt and AES-CBC);
//   - legacy encrypted PEM with "Proc-Type: 4,ENCRYPTED" and "DEK-Info".
//
// Encrypted keys need [WithPassphrase] or [WithPassphraseFunc]; without one
// the error is a [*PassphraseMissingError], with a wrong one it wraps
// [ErrIncorrectPassphrase]. RSA keys under 2048 bits ([ErrWeakKey]) and other
// key types or curves ([ErrUnsupportedKey]) are refused. With
// [WithCertificateFile] the key carries that OpenSSH certificate.
func ParseKey(data []byte, opts ...KeyOption) (Key, error) {
	o, err := keyOpts(opts)
	if err != nil {
		return nil, err
	}
	k, err := parseKey(data, "", o)
	if err != nil {
		return nil, &KeyError{Err: err}
	}
	return attachCertificateFile(k, "", o)
}

func parseKey(data []byte, path string, o keyOptions) (Key, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ErrEmptyKey
	}
	block, _ := pem.Decode(data)
	if block == nil {
		if t := bytes.TrimSpace(data); bytes.HasPrefix(t, []byte("ssh-")) || bytes.HasPrefix(t, []byte("ecdsa-sha2-")) {
			return nil, fmt.Errorf("%w: an authorized_keys line is a public key, not a private key", ErrKeyFormat)
		}
		return nil, fmt.Errorf("%w: no PEM block found", ErrKeyFormat)
	}
	var (
		raw any
		err error
	)
	switch block.Type {
	case "ENCRYPTED PRIVATE KEY":
		raw, err = withPassphrase(o, path, func(p []byte) (any, error) {
			der, err := keyformat.DecryptPKCS8(block.Bytes, p)
			if err != nil {
				return nil, err
			}
			defer clear(der)
			return wrongPassphraseIfGarbage(keyformat.ParsePKCS8(der))
		})
	case "PRIVATE KEY":
		raw, err = keyformat.ParsePKCS8(block.Bytes)
	case "RSA PRIVATE KEY", "EC PRIVATE KEY":
		if _, encrypted := block.Headers["DEK-Info"]; !encrypted {
			raw, err = keyformat.ParseTraditional(block.Type, block.Bytes)
			break
		}
		raw, err = withPassphrase(o, path, func(p []byte) (any, error) {
			//lint:ignore SA1019 legacy encrypted PEM is insecure but is what the original library's keys use; we only read it.
			der, err := x509.DecryptPEMBlock(block, p) //nolint:staticcheck
			if errors.Is(err, x509.IncorrectPasswordError) {
				return nil, ErrIncorrectPassphrase
			}
			if err != nil { // a bad DEK-Info, IV or length
				return nil, fmt.Errorf("%w: encrypted PEM", ErrKeyFormat)
			}
			defer clear(der)
			return wrongPassphraseIfGarbage(keyformat.ParseTraditional(block.Type, der))
		})
	case "OPENSSH PRIVATE KEY":
		raw, err = ssh.ParseRawPrivateKey(data)
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing):
			raw, err = withPassphrase(o, path, func(p []byte) (any, error) {
				raw, err := ssh.ParseRawPrivateKeyWithPassphrase(data, p)
				if errors.Is(err, x509.IncorrectPasswordError) {
					return nil, ErrIncorrectPassphrase
				}
				return raw, opensshError(err)
			})
		case err != nil:
			err = opensshError(err)
		}
	case "DSA PRIVATE KEY":
		return nil, fmt.Errorf("%w: DSA", ErrUnsupportedKey)
	default:
		return nil, fmt.Errorf("%w: PEM block %q is not a private key", ErrKeyFormat, block.Type)
	}
	if err != nil {
		return nil, err
	}
	return newInProcessKey(raw)
}

// withPassphrase obtains the passphrase and runs decrypt with it.
func withPassphrase(o keyOptions, path string, decrypt func([]byte) (any, error)) (any, error) {
	if o.passphrase == nil {
		return nil, &PassphraseMissingError{Path: path}
	}
	p, err := o.passphrase()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errPassphraseFunc, err)
	}
	if len(p) == 0 {
		return nil, &PassphraseMissingError{Path: path}
	}
	return decrypt(p)
}

var errPassphraseFunc = errors.New("reading passphrase")

// opensshError classifies an x/crypto/ssh parse error, which carries no key
// bytes but has no sentinel of its own for unsupported key types.
func opensshError(err error) error {
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "unhandled key type") {
		return fmt.Errorf("%w: OpenSSH private key", ErrUnsupportedKey)
	}
	return fmt.Errorf("%w: OpenSSH private key", ErrKeyFormat)
}

// wrongPassphraseIfGarbage turns a format error after decryption into
// ErrIncorrectPassphrase: a wrong passphrase that happens to leave valid
// padding yields bytes that do not parse.
func wrongPassphraseIfGarbage(raw any, err error) (any, error) {
	if errors.Is(err, ErrKeyFormat) {
		return nil, ErrIncorrectPassphrase
	}
	return raw, err
}

// newInProcessKey wraps a parsed private key after checking its type and size.
func newInProcessKey(raw any) (Key, error) {
	switch k := raw.(type) {
	case *ed25519.PrivateKey: // x/crypto/ssh returns a pointer for OpenSSH keys
		raw = *k
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
	default:
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, raw)
	}
	return newSignerKey(raw.(crypto.Signer))
}

// KeyFromSigner makes a Key of a crypto.Signer: an in-memory
// *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey, or a signer
// backed by a KMS, an HSM or PKCS#11. The signer must follow the
// crypto.Signer contract: ECDSA signatures in ASN.1 DER (they are converted
// to r||s here), RSA PSS when given *rsa.PSSOptions. crypto.Signer takes no
// context, so a remote signer should apply its own timeout; implement [Key]
// directly to honour the request's context.
//
// Errors are [*KeyError] values.
func KeyFromSigner(s crypto.Signer) (Key, error) {
	k, err := newSignerKey(s)
	if err != nil {
		return nil, &KeyError{Err: err}
	}
	return k, nil
}

func newSignerKey(s crypto.Signer) (Key, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: nil signer", ErrUnsupportedKey)
	}
	pub := s.Public()
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	return &signerKey{signer: s, pub: pub}, nil
}

// signerKey is a Key backed by a crypto.Signer.
type signerKey struct {
	signer crypto.Signer
	pub    crypto.PublicKey
	cert   *ssh.Certificate // nil: none
}

func (k *signerKey) Public() crypto.PublicKey { return k.pub }

func (k *signerKey) SignJWS(ctx context.Context, alg Algorithm, signingInput []byte) ([]byte, error) {
	spec := alg.spec()
	if spec == nil || !spec.fits(k.pub) {
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedAlgorithm, truncate(string(alg)))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var buf [64]byte
	sig, err := k.signer.Sign(rand.Reader, spec.digest(signingInput, &buf), spec.signerOpts())
	if err != nil {
		return nil, fmt.Errorf("signing with %s: %w", alg, err)
	}
	if spec.key == ecdsaKey {
		if sig, err = sigconv.DERToJWS(sig, spec.size); err != nil {
			return nil, fmt.Errorf("signing with %s: signer returned a %w", alg, err)
		}
	}
	return sig, nil
}

// expandHome replaces a leading "~/" with the user's home directory, as the
// original library does.
func expandHome(path string) (string, error) {
	if path != "~" && !strings.HasPrefix(path, "~/") {
		return path, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("expanding ~: %w", err)
	}
	return filepath.Join(home, path[1:]), nil
}
