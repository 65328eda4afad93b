package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/asymjwt/asymjwt"
)

const verifySynopsis = "asymjwt verify (-keys DIR | -ca FILE | both) [-method M] [-url U] [-body FILE] [-skew DURATION] TOKEN"

const verifyDescription = `
Verifies TOKEN against the public keys of its user, DIR/<username>.pub (one
file per user holding authorized_keys lines and/or PEM public keys), and
prints its claims as one JSON object on standard output. TOKEN may be "-" to
read it from standard input, with or without the leading "JWT ".

A token that carries an OpenSSH user certificate (asymjwt header sends the
key's certificate) is accepted through a CA: one of the CA keys in -ca FILE
(one public key a line, as sshd's TrustedUserCAKeys), trusted for every
user, or a cert-authority line in DIR/<username>.pub, trusted for that user
(with principals="..." naming the certificate principals it accepts). The
username must be among the certificate's principals, and the token's time
and now within its validity. The printed object then also has
"cert_key_id", "cert_serial" and "cert_ca" (the CA key's fingerprint); a
token whose own claims use those names is refused. authorized_keys options
are honoured: expiry-time is enforced, and a key (or CA) restricted by
from= or a certificate with source-address is refused, since there is no
client address here.

With -method and/or -url the token must carry matching "htm"/"htu"/"htq"
claims (method; scheme, host and path; query): a token without them fails.
With -body FILE (- for standard input, when TOKEN is not) the token must
carry an "hcd" claim matching the digest of the body in FILE. Without these
options those claims are printed but not checked.

Each run remembers nonces only for itself, so it cannot see that a token was
used before: replays are refused by a long-running verifier (the library's
Verifier and Middleware), not by this command.

Exit codes: 0 the token is valid; 1 it is not (malformed, bad signature,
unknown user, outside the time window, bound to another request, a
certificate not accepted), with the reason on standard error; 2 a usage or
input error (such as an unreadable DIR or FILE, or a FILE without a usable
CA key).`

// maxStdinToken bounds what is read from standard input; the verifier's own
// limit is far below it, so a larger input is reported as too large.
const maxStdinToken = 1 << 20

func runVerify(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify")
	keysDir := fs.String("keys", "", "`DIR` of public keys, one file per user: DIR/<username>.pub")
	caFile := fs.String("ca", "", "trust the CA keys in `FILE` (TrustedUserCAKeys format) to certify keys of every user")
	method := fs.String("method", "", "require the token to be bound to the HTTP `METHOD` (htm)")
	target := fs.String("url", "", "require the token to be bound to the request `URL` (htu and htq: scheme, host, path and query)")
	bodyFile := fs.String("body", "", "require the token to be bound to the request body in `FILE` (hcd; - for standard input)")
	skew := fs.Duration("skew", asymjwt.DefaultMaxSkew, "largest accepted `DURATION` between the token's time and now")
	usage := func(w io.Writer) { printUsage(w, fs, verifySynopsis, verifyDescription) }

	rest, code := parseArgs(fs, args, stdout, stderr, usage)
	if code >= 0 {
		return code
	}
	switch {
	case *keysDir == "" && *caFile == "":
		return usageError(stderr, "verify", "-keys DIR is required (or -ca FILE, or both)")
	case len(rest) == 0:
		return usageError(stderr, "verify", "TOKEN is required (or - to read it from standard input)")
	case len(rest) > 1:
		return usageError(stderr, "verify", "one TOKEN only; got %d arguments", len(rest))
	case *skew <= 0:
		return usageError(stderr, "verify", "-skew %v: must be positive", *skew)
	case *bodyFile == "-" && rest[0] == "-":
		return usageError(stderr, "verify", "-body - and TOKEN - cannot both read standard input")
	}
	if *target != "" {
		if err := checkTargetURL(*target); err != nil {
			return usageError(stderr, "verify", "%v", err)
		}
	}
	token := rest[0]
	if token == "-" {
		data, err := io.ReadAll(io.LimitReader(stdin, maxStdinToken))
		if err != nil {
			return inputError(stderr, "verify", fmt.Errorf("reading the token from standard input: %w", err))
		}
		token = string(data)
	}

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var store asymjwt.KeyStore = asymjwt.NewMemoryKeyStore()
	if *keysDir != "" {
		dirStore, err := asymjwt.NewDirKeyStore(*keysDir, asymjwt.WithLogger(logger))
		if err != nil {
			return inputError(stderr, "verify", fmt.Errorf("-keys %s: %w", *keysDir, err))
		}
		store = dirStore
	}
	// The verifier's own nonce store is new: one run cannot know of earlier
	// ones (see -h).
	opts := []asymjwt.VerifierOption{asymjwt.WithMaxSkew(*skew)}
	if *caFile != "" {
		cas, err := readCAFile(*caFile, stderr)
		if err != nil {
			return inputError(stderr, "verify", err)
		}
		opts = append(opts, asymjwt.WithTrustedCAs(cas...))
	}
	verifier, err := asymjwt.NewVerifier(store, opts...)
	if err != nil {
		return inputError(stderr, "verify", err)
	}
	var body io.Reader
	switch *bodyFile {
	case "":
	case "-":
		body = stdin
	default:
		f, err := openBodyFile(*bodyFile)
		if err != nil {
			return inputError(stderr, "verify", err)
		}
		defer f.Close()
		body = f
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := verifier.VerifyTokenWithBody(ctx, token, *method, *target, body)
	if errors.Is(err, asymjwt.ErrUnavailable) {
		// The key store could not read the user's file: an input error.
		return inputError(stderr, "verify", err)
	}
	if err != nil {
		fmt.Fprintf(stderr, "asymjwt verify: invalid token (%s): %s\n", localKind(err), errText(err))
		return exitInvalid
	}

	var claims bytes.Buffer
	if err := json.Compact(&claims, id.Claims); err != nil {
		// The verifier parsed these claims as JSON already.
		fmt.Fprintf(stderr, "asymjwt verify: invalid token (malformed): claims: %v\n", err)
		return exitInvalid
	}
	if name := reservedClaim(id.Claims); name != "" {
		fmt.Fprintf(stderr, "asymjwt verify: invalid token (bad_claims): claim %q is a name verify prints for certificates\n", name)
		return exitInvalid
	}
	if c := id.Certificate; c != nil {
		// Inside the object, before its closing brace.
		extra, err := json.Marshal(map[string]any{"cert_key_id": c.KeyID, "cert_serial": c.Serial, "cert_ca": c.CA})
		if err != nil {
			return inputError(stderr, "verify", err)
		}
		out := claims.Bytes()[:claims.Len()-1] // without '}'
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, extra[1:]...)
		claims.Reset()
		claims.Write(out)
	}
	claims.WriteByte('\n')
	if _, err := stdout.Write(claims.Bytes()); err != nil {
		return inputError(stderr, "verify", fmt.Errorf("writing the claims: %w", err))
	}
	if unchecked := uncheckedBinding(id.Claims, *method, *target, *bodyFile); unchecked != "" {
		fmt.Fprintf(stderr, "asymjwt verify: note: %s not checked (give -method, -url and -body to check the binding)\n", unchecked)
	}
	return exitOK
}

// uncheckedBinding names the binding claims the token carries that were not
// checked because -method, -url or -body was not given.
func uncheckedBinding(claims []byte, method, target, body string) string {
	var c map[string]json.RawMessage
	if json.Unmarshal(claims, &c) != nil {
		return ""
	}
	var names []string
	for _, claim := range []struct {
		name  string
		given string
	}{{"htm", method}, {"htu", target}, {"htq", target}, {"hcd", body}} {
		if _, ok := c[claim.name]; ok && claim.given == "" {
			names = append(names, claim.name)
		}
	}
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// reservedClaim returns the first of the names verify adds to the printed
// claims for a certificate that the token's own claims use, or "": they may
// not, so the output cannot be forged.
func reservedClaim(claims []byte) string {
	var c map[string]json.RawMessage
	if json.Unmarshal(claims, &c) != nil {
		return ""
	}
	for _, name := range [...]string{"cert_key_id", "cert_serial", "cert_ca"} {
		if _, ok := c[name]; ok {
			return name
		}
	}
	return ""
}

// readCAFile reads -ca FILE: CA keys one a line. Skipped lines are warned
// about; a file without a usable CA key is an input error.
func readCAFile(path string, stderr io.Writer) ([]asymjwt.CertAuthority, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-ca: %w", err)
	}
	cas, skipped := asymjwt.ParseCertAuthorities(data)
	for _, err := range skipped {
		fmt.Fprintf(stderr, "asymjwt verify: -ca %s: skipped %s\n", path, errText(err))
	}
	if len(cas) == 0 {
		return nil, fmt.Errorf("-ca %s: no usable CA key", path)
	}
	return cas, nil
}

// localKind names the cause for the operator at the terminal. A server sends
// some causes under another kind, so clients cannot probe for usernames
// (asymjwt.ErrorKind); here there is nothing to hide.
func localKind(err error) string {
	switch {
	case errors.Is(err, asymjwt.ErrBadAlgorithm):
		return "bad_algorithm"
	case errors.Is(err, asymjwt.ErrUnknownUser):
		return "unknown_user"
	case errors.Is(err, asymjwt.ErrCertUntrusted):
		return "cert_untrusted"
	}
	return asymjwt.ErrorKind(err)
}
