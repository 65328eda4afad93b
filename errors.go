package asymjwt

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/asymjwt/asymjwt/internal/keyformat"
)

// Every error this package returns names the package once, at its start
// ("asymjwt: loading key id_ed25519: key is encrypted and no passphrase was
// given"). The sentinels below carry no prefix of their own: they are the
// reason, wrapped by an error that names the operation. Test for them with
// [errors.Is], and for the typed errors with [errors.As]. No error ever
// holds key material, a passphrase or a token.

// Errors about keys.
var (
	// ErrKeyFormat means the input is not a key this package can read:
	// garbage, a truncated file, or a key of the other kind (a public key
	// where a private one is wanted, a private key in an authorized_keys
	// file).
	ErrKeyFormat = keyformat.ErrFormat

	// ErrEmptyKey means the key file or key bytes are empty.
	ErrEmptyKey = errors.New("key is empty")

	// ErrNotKeyFile means the key path names a directory or another
	// non-regular file.
	ErrNotKeyFile = errors.New("key path is not a regular file")

	// ErrUnsupportedKey means the key is of a type or curve that JWS cannot
	// use here (DSA, X25519, secp256k1, ...).
	ErrUnsupportedKey = keyformat.ErrUnsupported

	// ErrWeakKey means an RSA key is shorter than 2048 bits.
	ErrWeakKey = errors.New("RSA key shorter than 2048 bits")

	// ErrPassphraseRequired means the key is encrypted and no passphrase was
	// given. The error is also a [*PassphraseMissingError].
	ErrPassphraseRequired = errors.New("key is encrypted and no passphrase was given")

	// ErrIncorrectPassphrase means the key is encrypted and the passphrase
	// given does not decrypt it.
	ErrIncorrectPassphrase = keyformat.ErrIncorrectPassphrase

	// ErrUnsupportedAlgorithm means a signing algorithm is unknown, not
	// allowed, or does not fit the key (ES384 for a P-256 key, HS256, none).
	ErrUnsupportedAlgorithm = errors.New("unsupported algorithm for key")

	// ErrInvalidUsername means a username is empty, too long, not UTF-8 or
	// contains control characters.
	ErrInvalidUsername = errors.New("invalid username")

	// ErrInvalidOption means an option was given a value it cannot use (a
	// nil function, a negative size, an empty list). Constructors return it,
	// wrapped with the option's name; no option falls back to a default
	// silently.
	ErrInvalidOption = errors.New("invalid option")
)

// Errors of the verifier, one per cause. [Verifier.Verify] returns an error
// that wraps exactly one of them; [ErrorKind] gives the short name sent to
// clients in "WWW-Authenticate: JWT error=<kind>".
var (
	// ErrNoToken means the request has no "Authorization: JWT" header.
	ErrNoToken = errors.New("no JWT authorization")

	// ErrTokenTooLarge means the header or token exceeds the size limit and
	// was not parsed.
	ErrTokenTooLarge = errors.New("token too large")

	// ErrMalformed means the token is not a strict compact JWS with a JSON
	// object header and claims (bad base64, wrong segment count, duplicate
	// or case-variant names, ...).
	ErrMalformed = errors.New("malformed token")

	// ErrBadHeader means the JOSE header asks for something refused: a key
	// from elsewhere (jku, x5u, jwk, x5c), a "crit" extension, a "typ" other
	// than JWT.
	ErrBadHeader = errors.New("refused token header")

	// ErrBadAlgorithm means "alg" is missing, not allowed, or does not fit
	// the stored key (none, HS256, ES384 on a P-256 key, ...).
	ErrBadAlgorithm = errors.New("algorithm not allowed for key")

	// ErrBadClaims means a required claim is missing or of the wrong type,
	// or a claim is out of range.
	ErrBadClaims = errors.New("invalid claims")

	// ErrUnknownUser means the user has no keys. On the wire it is reported
	// as "invalid_signature", so clients cannot probe for usernames.
	ErrUnknownUser = errors.New("unknown user")

	// ErrBadSignature means no key of the user verifies the signature.
	ErrBadSignature = errors.New("invalid signature")

	// ErrStale means the token's time is outside the accepted window.
	ErrStale = errors.New("token time outside the accepted window")

	// ErrReplay means the token's nonce was already used.
	ErrReplay = errors.New("nonce already used")

	// ErrBinding means the binding claims (htm, htu, htq, hcd) do not
	// match the request, or are missing where binding is required; or the
	// Content-Digest header does not match the token; or the body does not
	// match its Content-Digest, which a request body's Read reports at its
	// end (see [Verifier.Verify]).
	ErrBinding = errors.New("token bound to another request")

	// ErrUnavailable means verification could not be completed (the key
	// store, the nonce store or the revocation list failed): the request is
	// refused with 503, never accepted.
	ErrUnavailable = errors.New("cannot verify now")

	// ErrKeyExpired means the key's authorized_keys line (or the
	// cert-authority line of the CA that certified it) has an "expiry-time"
	// that has passed.
	ErrKeyExpired = errors.New("key expired (expiry-time)")

	// ErrAddressRefused means the request's client address is not one the
	// key may be used from: the "from=" option of its authorized_keys line
	// or cert-authority line, or the "source-address" critical option of
	// its certificate. An unknown address (a token checked by
	// [Verifier.VerifyToken], or an address [WithClientAddr] could not
	// tell) is refused too.
	ErrAddressRefused = errors.New("client address not allowed for the key")

	// ErrRevoked means the key, its certificate or the CA that signed it is
	// in the revocation list ([WithRevocationFile]).
	ErrRevoked = errors.New("key or certificate revoked")

	// ErrCertUntrusted means a token's certificate is not signed by a CA
	// trusted for the user (neither [WithTrustedCAs] nor a cert-authority
	// line of the user names it), or its CA signature does not verify. On
	// the wire it is reported as "invalid_signature", like an unknown user,
	// so clients cannot probe for usernames.
	ErrCertUntrusted = errors.New("certificate not signed by a CA trusted for the user")

	// ErrCertType means a token's certificate is not a user certificate (a
	// host certificate), or certifies a key tokens are not signed with (a
	// security key, DSA, RSA under 2048 bits).
	ErrCertType = errors.New("not a usable user certificate")

	// ErrCertPrincipal means the username is not among the certificate's
	// principals (or, for a cert-authority line with principals=, none of
	// that line's names is), or the certificate lists no principals.
	ErrCertPrincipal = errors.New("user not among the certificate's principals")

	// ErrCertExpired means the token's time, or the verifier's clock, is
	// outside the certificate's validity period.
	ErrCertExpired = errors.New("certificate outside its validity period")

	// ErrCertOption means the certificate has a critical option this
	// verifier cannot honour: "force-command" (HTTP runs no command),
	// "verify-required", or one it does not know.
	ErrCertOption = errors.New("certificate critical option cannot be honoured")
)

// Errors about keys held by an ssh-agent (see [Agent]). Requests to an agent
// fail with an [*AgentError] wrapping one of them, or the request context's
// error; key selection fails with an [*AgentKeyChoiceError].
var (
	// ErrNoAgent means no agent socket was given and SSH_AUTH_SOCK is not
	// set.
	ErrNoAgent = errors.New("no ssh-agent")

	// ErrAgentUnavailable means the agent cannot be reached: the socket
	// cannot be dialled, the connection broke and dialling again failed, or
	// the Agent was closed.
	ErrAgentUnavailable = errors.New("ssh-agent unavailable")

	// ErrAgentRefused means the agent answered with a failure: it no longer
	// holds the key, it is locked, or a confirmation was refused.
	ErrAgentRefused = errors.New("ssh-agent refused the request")

	// ErrAgentSignature means the agent returned a signature other than the
	// one asked for (such as a SHA-1 "ssh-rsa" signature when rsa-sha2-512
	// was asked for) or a malformed one. No token is made from it.
	ErrAgentSignature = errors.New("unexpected signature from ssh-agent")

	// ErrAgentKeyNotFound means no key in the agent matches the selector.
	ErrAgentKeyNotFound = errors.New("no matching key in ssh-agent")

	// ErrAgentKeyAmbiguous means several keys in the agent match, or the
	// agent holds several keys and none was chosen.
	ErrAgentKeyAmbiguous = errors.New("several matching keys in ssh-agent")
)

// Errors of the key stores and of the clients.
var (
	// ErrNotKeyDir means the path given to [NewDirKeyStore] is not a
	// readable directory.
	ErrNotKeyDir = errors.New("not a readable key directory")

	// ErrOutsideKeyDir means a user's file in a [DirKeyStore] is a symbolic
	// link that is absolute or leads out of the key directory.
	ErrOutsideKeyDir = errors.New("symbolic link leads outside the key directory")

	// ErrKeyOption means an authorized_keys line has an option the verifier
	// cannot honour ("command=", an unknown option, a "from=" hostname that
	// would need DNS) or a malformed one; the line is skipped, never used
	// without its option.
	ErrKeyOption = errors.New("authorized_keys option cannot be honoured")

	// ErrCertificateMismatch means a certificate given for a key certifies
	// another key.
	ErrCertificateMismatch = errors.New("certificate is for another key")

	// ErrRedirectRefused is returned (inside a *url.Error) by the clients of
	// [NewClient] and [NewRetryClient] when a server redirects to another
	// scheme or host that [Transport.AllowedHosts] does not name, or from
	// https to http.
	ErrRedirectRefused = errors.New("redirect to another host refused")

	// ErrBodyTooLarge means a request body that cannot be read again is
	// larger than the Transport may hold in memory to bind it (see
	// [WithMaxBufferedBody]). The error is also a [*BodyTooLargeError].
	ErrBodyTooLarge = errors.New("request body too large to bind")
)

// Errors of the token endpoint ([TokenEndpoint]), one per RFC 6749 §5.2
// error code it answers with, and of refresh tokens. The endpoint's errors
// wrap one of them and, where a check of the verifier refused an
// assertion, that check's sentinel too (an assertion used twice is both
// ErrInvalidGrant and ErrReplay).
var (
	// ErrInvalidRequest means a token request is not well formed: not a
	// POST of a form, a parameter missing or given twice, parameters in the
	// URL ("invalid_request", 400).
	ErrInvalidRequest = errors.New("invalid token request")

	// ErrInvalidClient means a token request tried a client
	// authentication the endpoint does not take, such as a client secret
	// or HTTP Basic ("invalid_client", 401): the assertion is what
	// authenticates.
	ErrInvalidClient = errors.New("client authentication not supported")

	// ErrInvalidGrant means an assertion or refresh token was refused:
	// forged, expired, replayed, for another audience or user, revoked or
	// reused ("invalid_grant", 400).
	ErrInvalidGrant = errors.New("invalid grant")

	// ErrUnsupportedGrantType means a token request asked for a grant type
	// the endpoint does not offer ("unsupported_grant_type", 400).
	ErrUnsupportedGrantType = errors.New("unsupported grant type")

	// ErrInvalidScope means the scope asked for is malformed, refused by
	// the endpoint's scope policy, or wider than the refresh token's
	// ("invalid_scope", 400).
	ErrInvalidScope = errors.New("invalid scope")

	// ErrRefreshReused means a refresh token was presented after it had
	// been used: the token was copied, so its whole chain is revoked (RFC
	// 9700 §4.14.2). Errors that wrap it also wrap ErrInvalidGrant.
	ErrRefreshReused = errors.New("refresh token reused: its chain is revoked")
)

// KeyError reports a failure to load a key, naming where it came from. It
// wraps one of the key errors above (or an I/O error).
type KeyError struct {
	// Path is the file the key was read from; empty for keys given as bytes
	// or as a crypto.Signer.
	Path string
	// Err is the cause.
	Err error
}

// Error names the key file (if any) and the cause; never key bytes.
func (e *KeyError) Error() string { return prefix + e.reason() }

func (e *KeyError) reason() string {
	if e.Path == "" {
		return "loading key: " + reasonOf(e.Err)
	}
	return "loading key " + e.Path + ": " + reasonOf(e.Err)
}

// Unwrap returns the cause.
func (e *KeyError) Unwrap() error { return e.Err }

// PassphraseMissingError is returned, inside a [*KeyError], when a key is
// encrypted and no passphrase (or passphrase function) was given. It
// matches [ErrPassphraseRequired] with [errors.Is].
type PassphraseMissingError struct {
	// Path is the key file; empty for keys given as bytes.
	Path string
}

// Error says that a passphrase is needed.
func (e *PassphraseMissingError) Error() string { return prefix + e.reason() }

func (e *PassphraseMissingError) reason() string { return ErrPassphraseRequired.Error() }

// Is reports whether target is [ErrPassphraseRequired].
func (e *PassphraseMissingError) Is(target error) bool { return target == ErrPassphraseRequired }

// LineError reports a line of public key text that [ParsePublicKeys],
// [ParseAuthorizedKeys] or [ParseCertAuthorities] skipped. Err wraps
// [ErrKeyFormat] (corrupt line or PEM block), [ErrUnsupportedKey]
// (certificate, security key, DSA, unsupported curve, a cert-authority line
// where only keys are read), [ErrKeyOption] (an authorized_keys option that
// cannot be honoured) or [ErrWeakKey] (RSA under 2048 bits). The message
// names the line and, where known, the key type or comment, never key bytes.
type LineError struct {
	// Line is the 1-based line number in the text; for a PEM block, the line
	// of its BEGIN marker.
	Line int
	// Err is the cause.
	Err error
}

// Error names the line and the cause; never the key bytes.
func (e *LineError) Error() string { return prefix + e.reason() }

func (e *LineError) reason() string {
	if e.Err == nil {
		return fmt.Sprintf("key line %d skipped", e.Line)
	}
	return fmt.Sprintf("key line %d: %s", e.Line, reasonOf(e.Err))
}

// Unwrap returns the cause.
func (e *LineError) Unwrap() error { return e.Err }

// AgentError reports a failed request to an ssh-agent. Err wraps
// [ErrAgentUnavailable], [ErrAgentRefused], [ErrAgentSignature], [ErrNoAgent]
// or the request context's error (context.DeadlineExceeded,
// context.Canceled).
type AgentError struct {
	// Socket is the agent's socket path; empty for an agent given to
	// [NewAgent].
	Socket string
	// Op is what was asked: "dial", "list" or "sign".
	Op string
	// Err is the cause.
	Err error
}

// Error names the socket and operation and the cause; never key material.
func (e *AgentError) Error() string { return prefix + e.reason() }

func (e *AgentError) reason() string {
	where := "ssh-agent"
	if e.Socket != "" {
		where = "ssh-agent " + e.Socket
	}
	return where + ": " + e.Op + ": " + reasonOf(e.Err)
}

// Unwrap returns the cause.
func (e *AgentError) Unwrap() error { return e.Err }

// AgentKeyChoiceError reports that a key could not be chosen among the
// agent's: none matched ([ErrAgentKeyNotFound]) or several did
// ([ErrAgentKeyAmbiguous]). Its message lists the fingerprints and comments
// on offer, so a user can pick one.
type AgentKeyChoiceError struct {
	// Selector is what was asked for: a fingerprint, a comment, or empty.
	Selector string
	// Choices are the usable keys the agent holds when none matched, or the
	// keys that matched when several did.
	Choices []AgentKeyInfo
	// Err is ErrAgentKeyNotFound or ErrAgentKeyAmbiguous.
	Err error
}

// Error lists the fingerprints and comments on offer.
func (e *AgentKeyChoiceError) Error() string { return prefix + e.reason() }

func (e *AgentKeyChoiceError) reason() string {
	var b strings.Builder
	b.WriteString("ssh-agent: ")
	switch {
	case e.Err == ErrAgentKeyAmbiguous && e.Selector == "":
		fmt.Fprintf(&b, "the agent holds %d keys and none was chosen; choose one by fingerprint or comment", len(e.Choices))
	case e.Err == ErrAgentKeyAmbiguous:
		fmt.Fprintf(&b, "%d keys match %q; choose one by fingerprint", len(e.Choices), e.Selector)
	case len(e.Choices) == 0:
		b.WriteString("no usable key in the agent")
		if e.Selector != "" {
			fmt.Fprintf(&b, " (asked for %q)", e.Selector)
		}
		return b.String()
	case e.Selector == "":
		b.WriteString("no key chosen")
	default:
		fmt.Fprintf(&b, "no key matches %q", e.Selector)
	}
	b.WriteString("; keys on offer:")
	for _, c := range e.Choices {
		fmt.Fprintf(&b, " %s %q (%s);", c.Fingerprint, c.Comment, c.Type)
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Unwrap returns Err.
func (e *AgentKeyChoiceError) Unwrap() error { return e.Err }

// BodyTooLargeError is returned by [Transport.RoundTrip] (inside a
// *url.Error from an http.Client) when a request's body has no GetBody, so
// it must be held in memory to be hashed and sent, and is larger than the
// Signer's [WithMaxBufferedBody] limit. Nothing was sent and the body was
// closed. It matches [ErrBodyTooLarge] with [errors.Is]. To send such a
// body, give the request a GetBody, raise the limit, or sign without body
// binding ([WithoutBodyBinding]).
type BodyTooLargeError struct {
	// Limit is the largest body, in bytes, the Transport buffers.
	Limit int64
}

// Error names the limit.
func (e *BodyTooLargeError) Error() string { return prefix + e.reason() }

func (e *BodyTooLargeError) reason() string {
	return fmt.Sprintf("%s: the body has no GetBody and is larger than the %d bytes WithMaxBufferedBody allows in memory", ErrBodyTooLarge, e.Limit)
}

// Is reports whether target is [ErrBodyTooLarge].
func (e *BodyTooLargeError) Is(target error) bool { return target == ErrBodyTooLarge }

// RefusedError is a verifier's refusal as a client sees it: a 401 or 503
// answer carrying "WWW-Authenticate: JWT error=<kind>". [CheckResponse]
// returns it, as *oauth2.RetrieveError carries a token endpoint's answer.
// It matches the sentinel of its kind with [errors.Is] (a "replay" refusal
// is ErrReplay, "stale" ErrStale, "unavailable" ErrUnavailable, ...).
type RefusedError struct {
	// StatusCode is the answer's status: 401, or 503 when the verifier
	// could not check the token.
	StatusCode int
	// Kind is the error kind the verifier sent ("stale", "replay", ...; see
	// [ErrorKind]); "invalid_token" when it sent none this package knows.
	Kind string
	// Response is the answer, for its other headers. Its body has been
	// read or closed by the caller of CheckResponse.
	Response *http.Response
}

// Error names the kind and status.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("%srequest refused by the server: %s (%d %s)", prefix, e.Kind, e.StatusCode, http.StatusText(e.StatusCode))
}

// Is reports whether target is the sentinel of e's kind.
func (e *RefusedError) Is(target error) bool {
	s, ok := kindSentinel(e.Kind)
	return ok && s == target
}

// prefix starts every error message of this package.
const prefix = "asymjwt: "

// reasoner is an error of this package: its reason is its message without
// the prefix, so another error of this package can wrap it and still name
// the package once.
type reasoner interface {
	error
	reason() string
}

// reasonOf returns err's message as a cause inside another of this
// package's errors.
func reasonOf(err error) string {
	if r, ok := err.(reasoner); ok {
		return r.reason()
	}
	return err.Error()
}

// pkgError is an error made by errorf: its reason is the formatted
// message, and Error adds the prefix.
type pkgError struct{ err error }

func (e *pkgError) Error() string  { return prefix + e.err.Error() }
func (e *pkgError) reason() string { return e.err.Error() }
func (e *pkgError) Unwrap() error  { return e.err }

// asCause shows one of this package's errors by its reason, so that an
// error wrapping it names the package once; it unwraps to the error itself.
type asCause struct{ r reasoner }

func (c asCause) Error() string { return c.r.reason() }
func (c asCause) Unwrap() error { return c.r }

// errorf is fmt.Errorf for the errors this package returns: the message is
// prefixed once, and wrapped errors of this package contribute their reason
// without their own prefix.
func errorf(format string, args ...any) error {
	for i, a := range args {
		if r, ok := a.(reasoner); ok {
			args[i] = asCause{r}
		}
	}
	return &pkgError{fmt.Errorf(format, args...)}
}

// wrapOp is "asymjwt: <op>: <cause>".
func wrapOp(op string, err error) error { return errorf("%s: %w", op, err) }

// optionError reports an option given a value it cannot use.
func optionError(option, why string) error {
	return errorf("%s: %w: %s", option, ErrInvalidOption, why)
}
