package asymjwt

import (
	"errors"
	"fmt"
)

// Errors about keys. Errors returned by this package wrap one of these, so
// callers can test for them with [errors.Is]. None of them ever carries key
// material, a passphrase or a token.
var (
	// ErrKeyFormat means the input is not a private key this package can
	// read (garbage, a public key, a certificate, a truncated file).
	ErrKeyFormat = errors.New("asymjwt: not a recognised private key")

	// ErrEmptyKey means the key file or key bytes are empty.
	ErrEmptyKey = errors.New("asymjwt: key is empty")

	// ErrNotKeyFile means the key path names a directory or another
	// non-regular file.
	ErrNotKeyFile = errors.New("asymjwt: key path is not a regular file")

	// ErrUnsupportedKey means the key is of a type or curve that JWS cannot
	// use here (DSA, X25519, secp256k1, ...).
	ErrUnsupportedKey = errors.New("asymjwt: unsupported key type")

	// ErrWeakKey means an RSA key is shorter than 2048 bits.
	ErrWeakKey = errors.New("asymjwt: RSA key shorter than 2048 bits")

	// ErrPassphraseRequired means the key is encrypted and no passphrase was
	// given. The error is also a [*PassphraseMissingError].
	ErrPassphraseRequired = errors.New("asymjwt: key is encrypted and no passphrase was given")

	// ErrIncorrectPassphrase means the key is encrypted and the passphrase
	// given does not decrypt it.
	ErrIncorrectPassphrase = errors.New("asymjwt: incorrect passphrase")

	// ErrUnsupportedAlgorithm means a signing algorithm is unknown, not
	// allowed, or does not fit the key (ES384 for a P-256 key, HS256, none).
	ErrUnsupportedAlgorithm = errors.New("asymjwt: unsupported algorithm for key")

	// ErrInvalidUsername means a username is empty, too long, not UTF-8 or
	// contains control characters.
	ErrInvalidUsername = errors.New("asymjwt: invalid username")
)

// KeyError reports a failure to load a key, naming where it came from. It
// wraps one of the ErrX values above (or an I/O error).
type KeyError struct {
	// Path is the file the key was read from; empty for keys given as bytes.
	Path string
	// Err is the cause.
	Err error
}

func (e *KeyError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("asymjwt: loading key: %v", e.Err)
	}
	return fmt.Sprintf("asymjwt: loading key %s: %v", e.Path, e.Err)
}

// Unwrap returns the cause.
func (e *KeyError) Unwrap() error { return e.Err }

// PassphraseMissingError is returned when a key is encrypted and no passphrase
// (or passphrase callback) was given. It matches [ErrPassphraseRequired] with
// [errors.Is].
type PassphraseMissingError struct {
	// Path is the key file; empty for keys given as bytes.
	Path string
}

func (e *PassphraseMissingError) Error() string {
	if e.Path == "" {
		return ErrPassphraseRequired.Error()
	}
	return fmt.Sprintf("asymjwt: key %s is encrypted and no passphrase was given", e.Path)
}

// Is reports whether target is [ErrPassphraseRequired].
func (e *PassphraseMissingError) Is(target error) bool { return target == ErrPassphraseRequired }
