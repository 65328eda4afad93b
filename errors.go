package asymjwt

import (
	"errors"
	"fmt"
)

// Errors about keys. Errors returned by this package wrap one of these, so
// callers can test for them with [errors.Is]. None of them ever carries key
// material, a passphrase or a token.
var (
	// ErrKeyFormat means the input is not a key this package can read:
	// garbage, a truncated file, or a key of the other kind (a public key
	// where a private one is wanted, a private key in an authorized_keys
	// file).
	ErrKeyFormat = errors.New("asymjwt: not a recognised key")

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

// Error names the key file (if any) and the cause; never key bytes.
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

// Error names the key file (if any).
func (e *PassphraseMissingError) Error() string {
	if e.Path == "" {
		return ErrPassphraseRequired.Error()
	}
	return fmt.Sprintf("asymjwt: key %s is encrypted and no passphrase was given", e.Path)
}

// Is reports whether target is [ErrPassphraseRequired].
func (e *PassphraseMissingError) Is(target error) bool { return target == ErrPassphraseRequired }

// Errors of the verifier, one per cause. [Verifier.Verify] returns an error
// that wraps exactly one of them; [ErrorKind] gives the short name sent to
// clients in "WWW-Authenticate: JWT error=<kind>".
var (
	// ErrNoToken means the request has no "Authorization: JWT" header.
	ErrNoToken = errors.New("asymjwt: no JWT authorization")

	// ErrTokenTooLarge means the header or token exceeds the size limit and
	// was not parsed.
	ErrTokenTooLarge = errors.New("asymjwt: token too large")

	// ErrMalformed means the token is not a strict compact JWS with a JSON
	// object header and claims (bad base64, wrong segment count, duplicate
	// or case-variant names, ...).
	ErrMalformed = errors.New("asymjwt: malformed token")

	// ErrBadHeader means the JOSE header asks for something refused: a key
	// from elsewhere (jku, x5u, jwk, x5c), a "crit" extension, a "typ" other
	// than JWT.
	ErrBadHeader = errors.New("asymjwt: refused token header")

	// ErrBadAlgorithm means "alg" is missing, not allowed, or does not fit
	// the stored key (none, HS256, ES384 on a P-256 key, ...).
	ErrBadAlgorithm = errors.New("asymjwt: algorithm not allowed for key")

	// ErrBadClaims means a required claim is missing or of the wrong type,
	// or a claim is out of range.
	ErrBadClaims = errors.New("asymjwt: invalid claims")

	// ErrUnknownUser means the user has no keys. On the wire it is reported
	// as "invalid_signature", so clients cannot probe for usernames.
	ErrUnknownUser = errors.New("asymjwt: unknown user")

	// ErrBadSignature means no key of the user verifies the signature.
	ErrBadSignature = errors.New("asymjwt: invalid signature")

	// ErrStale means the token's time is outside the accepted window.
	ErrStale = errors.New("asymjwt: token time outside the accepted window")

	// ErrReplay means the token's nonce was already used.
	ErrReplay = errors.New("asymjwt: nonce already used")

	// ErrBinding means the htm/htu claims do not match the request, or are
	// missing where binding is required.
	ErrBinding = errors.New("asymjwt: token bound to another request")

	// ErrUnavailable means verification could not be completed (the key
	// store or nonce store failed): the request is refused with 503, never
	// accepted.
	ErrUnavailable = errors.New("asymjwt: cannot verify now")
)

// Errors about keys held by an ssh-agent (see [Agent]). Requests to an agent
// fail with an [*AgentError] wrapping one of them, or the request context's
// error; key selection fails with an [*AgentKeyChoiceError].
var (
	// ErrNoAgent means no agent socket was given and SSH_AUTH_SOCK is not
	// set.
	ErrNoAgent = errors.New("asymjwt: no ssh-agent")

	// ErrAgentUnavailable means the agent cannot be reached: the socket
	// cannot be dialled, the connection broke and dialling again failed, or
	// the Agent was closed.
	ErrAgentUnavailable = errors.New("asymjwt: ssh-agent unavailable")

	// ErrAgentRefused means the agent answered with a failure: it no longer
	// holds the key, it is locked, or a confirmation was refused.
	ErrAgentRefused = errors.New("asymjwt: ssh-agent refused the request")

	// ErrAgentSignature means the agent returned a signature other than the
	// one asked for (such as a SHA-1 "ssh-rsa" signature when rsa-sha2-512
	// was asked for) or a malformed one. No token is made from it.
	ErrAgentSignature = errors.New("asymjwt: unexpected signature from ssh-agent")

	// ErrAgentKeyNotFound means no key in the agent matches the selector.
	ErrAgentKeyNotFound = errors.New("asymjwt: no matching key in ssh-agent")

	// ErrAgentKeyAmbiguous means several keys in the agent match, or the
	// agent holds several keys and none was chosen.
	ErrAgentKeyAmbiguous = errors.New("asymjwt: several matching keys in ssh-agent")
)

// Errors of the key stores and of the clients.
var (
	// ErrNotKeyDir means the path given to [NewDirKeyStore] is not a
	// readable directory.
	ErrNotKeyDir = errors.New("asymjwt: not a readable key directory")

	// ErrRedirectRefused is returned (inside a *url.Error) by the clients of
	// [NewClient] and [NewRetryClient] when a server redirects to another
	// scheme or host that [WithAllowedHosts] does not name, or from https to
	// http.
	ErrRedirectRefused = errors.New("asymjwt: redirect to another host refused")
)
