package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/asymjwt/asymjwt"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

const headerSynopsis = "asymjwt header -user NAME (-key FILE [-passphrase-file F] | -agent [-agent-key FP_OR_COMMENT]) [-cert FILE] [-method M] [-url U [-body FILE [-digest]]]"

const headerDescription = `
Prints one line (two with -digest, below), "JWT <token>": the value of an
Authorization header that signs one request as user NAME. Every run makes a new token with a fresh
nonce, valid for about 20 seconds and only once.

The key is a private key file (OpenSSH, PKCS#1, PKCS#8 or SEC1 PEM, plain or
encrypted) or a key held by ssh-agent (the agent at SSH_AUTH_SOCK). For an
encrypted key file the passphrase is read from -passphrase-file (one trailing
newline is not part of it) or, when standard input is a terminal, asked for
without echo. When the agent holds several keys, -agent-key chooses one by
its fingerprint (as ssh-keygen -l prints it) or its comment.

An OpenSSH user certificate of the key (made by ssh-keygen -s, or a CA such
as Vault or step-ca) goes into the token's header, so a server that trusts
the CA accepts the key without storing it: with -key FILE, FILE-cert.pub
when it exists (as ssh -i looks for it); with -agent, a certificate the
agent holds for the chosen key; -cert FILE names one instead (a missing or
unusable one is an error). A certificate that is expired or not yet valid
is still sent, with a warning.

-url binds the token to one request (the "htm", "htu" and "htq" claims):
its method (-method, GET by default), scheme, host, path and query. Example:

  curl -H "Authorization: $(asymjwt header -user svc -key ~/.ssh/id_ed25519 -url https://api.example.com/v1/items)" \
       https://api.example.com/v1/items

-body FILE (or - for standard input) binds the token to that body too (the
"hcd" claim): the request must then carry the body's digest in the header
"Content-Digest: sha-256=:<base64>:" (RFC 9530), exactly these bytes as its
body. Without -body the token binds no body. -digest prints that header's
value on a second line; without it, it is shown on standard error. With
bash and curl:

  { read -r auth; read -r digest; } < <(asymjwt header -user svc -key ~/.ssh/id_ed25519 \
      -method POST -url https://api.example.com/v1/items -body item.json -digest)
  curl -H "Authorization: $auth" -H "Content-Digest: $digest" \
       -H "Content-Type: application/json" --data-binary @item.json https://api.example.com/v1/items`

// agentTimeout bounds the talk with ssh-agent, which may ask its user to
// confirm a signature.
const agentTimeout = time.Minute

func runHeader(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("header")
	sf := addSignerFlags(fs)
	method := fs.String("method", "", "bind the token to the HTTP `METHOD` (needs -url; default GET)")
	target := fs.String("url", "", "bind the token to the request `URL` (scheme, host, path and query)")
	bodyFile := fs.String("body", "", "bind the token to the request body in `FILE` (- for standard input; needs -url)")
	printDigest := fs.Bool("digest", false, "with -body, print the Content-Digest header value on a second line")
	usage := func(w io.Writer) { printUsage(w, fs, headerSynopsis, headerDescription) }

	rest, code := parseArgs(fs, args, stdout, stderr, usage)
	if code >= 0 {
		return code
	}
	problem := sf.problem()
	switch {
	case len(rest) > 0:
		return usageError(stderr, "header", "unexpected argument %q", rest[0])
	case problem != "":
		return usageError(stderr, "header", "%s", problem)
	case *method != "" && *target == "":
		return usageError(stderr, "header", "-method needs -url")
	case *bodyFile != "" && *target == "":
		return usageError(stderr, "header", "-body needs -url")
	case *printDigest && *bodyFile == "":
		return usageError(stderr, "header", "-digest needs -body")
	}
	var req *http.Request
	if *target != "" {
		if err := checkTargetURL(*target); err != nil {
			return usageError(stderr, "header", "%v", err)
		}
		m := *method
		if m == "" {
			m = http.MethodGet
		}
		var err error
		if req, err = http.NewRequest(m, *target, nil); err != nil {
			return usageError(stderr, "header", "-method %q: not a valid HTTP method", m)
		}
	}
	digest := ""
	if *bodyFile != "" {
		var err error
		if digest, err = bodyDigest(*bodyFile, stdin); err != nil {
			return inputError(stderr, "header", err)
		}
		// Sign binds the Content-Digest header the request carries.
		req.Header.Set("Content-Digest", digest)
	}

	ctx, cancel := context.WithTimeout(context.Background(), agentTimeout)
	defer cancel()
	signer, done, code := sf.newSigner(ctx, "header", stdin, stderr)
	if code >= 0 {
		return code
	}
	defer done()
	token, err := signer.Sign(ctx, req)
	if err != nil {
		return inputError(stderr, "header", err)
	}
	fmt.Fprintf(stdout, "JWT %s\n", token)
	switch {
	case *printDigest:
		fmt.Fprintln(stdout, digest)
	case digest != "":
		fmt.Fprintf(stderr, "asymjwt header: note: send the body with the header \"Content-Digest: %s\" (-digest prints it)\n", digest)
	}
	return exitOK
}

// bodyDigest returns the Content-Digest value of the body in path, or of
// standard input for "-", reading it as a stream.
func bodyDigest(path string, stdin io.Reader) (string, error) {
	if path == "-" {
		d, err := asymjwt.ContentDigest(stdin)
		if err != nil {
			return "", fmt.Errorf("-body -: %w", err)
		}
		return d, nil
	}
	f, err := openBodyFile(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	d, err := asymjwt.ContentDigest(f)
	if err != nil {
		return "", fmt.Errorf("-body %s: %w", path, err)
	}
	return d, nil
}

// openBodyFile opens a -body file, refusing what is not a regular file
// (a directory would read as an error midway; a FIFO is fine).
func openBodyFile(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("-body: %w", err)
	}
	if fi, err := f.Stat(); err != nil || fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("-body %s: not a file", path)
	}
	return f, nil
}

// signerFlags are the flags that header, token and sign-proxy share to
// choose the user and the key.
type signerFlags struct {
	username, keyFile, passFile, agentKey, certFile *string
	useAgent                                        *bool
}

// addSignerFlags defines the shared flags on fs.
func addSignerFlags(fs *flag.FlagSet) *signerFlags {
	return &signerFlags{
		username: fs.String("user", "", "sign as user `NAME` (required)"),
		keyFile:  fs.String("key", "", "sign with the private key in `FILE`"),
		passFile: fs.String("passphrase-file", "", "read the key's passphrase from `F` (one trailing newline is not part of it)"),
		useAgent: fs.Bool("agent", false, "sign with a key held by ssh-agent (SSH_AUTH_SOCK)"),
		agentKey: fs.String("agent-key", "", "with -agent, the key to use: its `FINGERPRINT_OR_COMMENT`"),
		certFile: fs.String("cert", "", "send the OpenSSH user certificate in `FILE` (default: the key file's -cert.pub, or the agent's)"),
	}
}

// problem says what is wrong with the flags, or "".
func (f *signerFlags) problem() string {
	switch {
	case *f.username == "":
		return "-user NAME is required"
	case *f.keyFile == "" && !*f.useAgent:
		return "give -key FILE or -agent"
	case *f.keyFile != "" && *f.useAgent:
		return "-key and -agent exclude each other"
	case *f.passFile != "" && *f.useAgent:
		return "-passphrase-file goes with -key, not -agent"
	case *f.agentKey != "" && !*f.useAgent:
		return "-agent-key needs -agent"
	}
	return ""
}

// newSigner makes the Signer the flags name, for the command name. done
// closes the agent connection, if any; code is the exit code when that
// failed, else -1.
func (f *signerFlags) newSigner(ctx context.Context, name string, stdin io.Reader, stderr io.Writer) (_ *asymjwt.Signer, done func(), code int) {
	username, keyFile, passFile, certFile := *f.username, *f.keyFile, *f.passFile, *f.certFile
	useAgent, agentKey := *f.useAgent, *f.agentKey
	done = func() {}
	var key asymjwt.Key
	if useAgent {
		ag, err := asymjwt.DialAgent("")
		if err != nil {
			return nil, done, inputError(stderr, name, err)
		}
		done = func() { ag.Close() }
		if key, err = ag.Key(ctx, agentKey); err != nil {
			done()
			return nil, done, inputError(stderr, name, err)
		}
		if certFile != "" {
			cert, err := os.ReadFile(certFile)
			if err != nil {
				done()
				return nil, done, inputError(stderr, name, fmt.Errorf("-cert: %w", err))
			}
			if key, err = asymjwt.KeyWithCertificate(key, cert); err != nil {
				done()
				return nil, done, inputError(stderr, name, fmt.Errorf("-cert %s: %w", certFile, err))
			}
		}
	} else {
		var err error
		if key, err = loadKeyFile(keyFile, passFile, certFile, stdin, stderr); err != nil {
			return nil, done, inputError(stderr, name, err)
		}
	}
	warnCertificateValidity(stderr, name, key, time.Now())

	signer, err := asymjwt.NewSigner(username, key)
	if err != nil {
		done()
		if errors.Is(err, asymjwt.ErrInvalidUsername) {
			return nil, done, usageError(stderr, name, "-user: not a valid username (1 to 256 bytes, no control characters)")
		}
		return nil, done, inputError(stderr, name, err)
	}
	return signer, done, -1
}

// checkTargetURL accepts an absolute http or https URL with a host.
func checkTargetURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-url %q: want an absolute http or https URL", s)
	}
	return nil
}

// warnCertificateValidity warns when the key's certificate is not valid at
// now: a verifier would refuse it.
func warnCertificateValidity(stderr io.Writer, name string, key asymjwt.Key, now time.Time) {
	ck, ok := key.(asymjwt.CertifiedKey)
	if !ok || ck.Certificate() == nil {
		return
	}
	c, t := ck.Certificate(), uint64(max(now.Unix(), 0))
	switch {
	case t < c.ValidAfter:
		fmt.Fprintf(stderr, "asymjwt %s: warning: certificate %q is not valid before %s\n", name, c.KeyId, time.Unix(int64(c.ValidAfter), 0).UTC().Format(time.RFC3339))
	case c.ValidBefore != ssh.CertTimeInfinity && t >= c.ValidBefore:
		fmt.Fprintf(stderr, "asymjwt %s: warning: certificate %q expired at %s\n", name, c.KeyId, time.Unix(int64(c.ValidBefore), 0).UTC().Format(time.RFC3339))
	}
}

// loadKeyFile reads a private key file, with the certificate in certFile
// or, when certFile is empty, the one beside the key. The passphrase of an
// encrypted key comes from passFile when given, else from a prompt when
// stdin is a terminal; otherwise loading fails naming the missing
// passphrase.
func loadKeyFile(path, passFile, certFile string, stdin io.Reader, stderr io.Writer) (asymjwt.Key, error) {
	var opts []asymjwt.KeyOption
	if certFile != "" {
		opts = append(opts, asymjwt.WithCertificateFile(certFile))
	}
	switch {
	case passFile != "":
		p, err := readPassphraseFile(passFile)
		if err != nil {
			return nil, err
		}
		defer clear(p)
		opts = append(opts, asymjwt.WithPassphrase(p))
	case isTerminal(stdin):
		fd := int(stdin.(*os.File).Fd())
		opts = append(opts, asymjwt.WithPassphraseFunc(func() ([]byte, error) {
			fmt.Fprintf(stderr, "Passphrase for %s: ", path)
			p, err := term.ReadPassword(fd)
			fmt.Fprintln(stderr)
			return p, err
		}))
	}
	key, err := asymjwt.KeyFromFile(path, opts...)
	if errors.Is(err, asymjwt.ErrPassphraseRequired) {
		if passFile == "" && isTerminal(stdin) {
			return nil, fmt.Errorf("key %s is encrypted and no passphrase was entered", path)
		}
		return nil, fmt.Errorf("key %s is encrypted and no passphrase was given: use -passphrase-file F (standard input is not a terminal to ask on)", path)
	}
	return key, err
}

// isTerminal reports whether r is a terminal, to ask a passphrase on.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
