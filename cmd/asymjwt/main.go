// Command asymjwt makes keys, makes and checks asymjwt tokens, puts a
// verifying or a signing proxy beside a service in any language, and shows
// the library at work on loopback.
//
// Usage:
//
//	asymjwt keygen [-type ed25519|ecdsa|rsa] [-bits N] [-passphrase-file F] [-f] -o FILE
//	asymjwt header -user NAME (-key FILE [-passphrase-file F] | -agent [-agent-key FP_OR_COMMENT]) [-cert FILE] [-method M] [-url U [-body FILE [-digest]]]
//	asymjwt verify (-keys DIR | -ca FILE | both) [-method M] [-url U] [-body FILE] [-skew DURATION] TOKEN
//	asymjwt token -user NAME (-key FILE [-passphrase-file F] | -agent [-agent-key FP_OR_COMMENT]) [-cert FILE] -url TOKEN_URL [-scope S] [-audience AUD]
//	asymjwt verify-proxy -listen ADDR -upstream URL -keys DIR [-public-url URL] [-redis ADDR] [-require-binding] [-metrics ADDR] [-log-format text|json] [-issuer-key FILE [-issuer URL] [-token-ttl DURATION]]
//	asymjwt sign-proxy -listen ADDR -upstream URL -user NAME (-key FILE [-passphrase-file F] | -agent [-agent-key FP_OR_COMMENT]) [-allow-remote]
//	asymjwt demo
//	asymjwt version
//
// keygen writes a private key in OpenSSH format to FILE (mode 0600,
// encrypted when -passphrase-file is given) and its public half to FILE.pub
// as an authorized_keys line. It makes Ed25519 keys unless told otherwise;
// ECDSA keys are P-256 unless -bits is 384 or 521; RSA keys are 3072 bits
// unless -bits says otherwise (2048 at least). It never overwrites a file
// without -f.
//
// header prints one line, "JWT <token>", the value of an Authorization
// header for user NAME, signed with a key file or a key held by ssh-agent
// (SSH_AUTH_SOCK). With -url (and -method, GET by default) the token is
// bound to that request's method, URL and query; with -body FILE (or - for
// standard input) also to that body, which must then be sent with its
// Content-Digest header (-digest prints its value on a second line). For an
// encrypted key the passphrase comes from
// -passphrase-file (one trailing newline is not part of it) or is asked for
// on the terminal. The key's OpenSSH user certificate goes into the token's
// header: FILE-cert.pub beside a key file, the agent's certificate for an
// agent key, or -cert FILE.
//
// verify checks a token (an argument, or "-" for standard input, with or
// without "JWT ") against the public keys in DIR/<username>.pub and prints
// its claims as one JSON object. With -method or -url the token must be bound
// to that request, and with -body FILE to that body. A token with an
// OpenSSH certificate verifies through a CA of -ca FILE (every user) or a
// cert-authority line of the user's file; its key ID, serial and CA are
// printed as "cert_key_id", "cert_serial" and "cert_ca".
//
// verify-proxy is a verifying reverse proxy (a gateway) in front of an HTTP
// service: requests that verify against DIR/<username>.pub go upstream
// without their Authorization header and with Asymjwt-User and Asymjwt-Key
// (the key's fingerprint) set, any copies a client sent being removed;
// others are refused as the library's Middleware refuses them. Bodies and
// answers stream, Upgrade passes, upstream faults give 502 and 504. -redis
// shares nonces with a fleet, -public-url names the URL clients use behind
// a TLS-terminating load balancer, -metrics serves /healthz and Prometheus
// /metrics.
//
// sign-proxy is the client half: a loopback proxy that forwards every
// request to one upstream, signed afresh per request and per attempt with a
// key file or a key held by ssh-agent, with retries and clock-skew
// correction. It refuses to listen beyond loopback unless -allow-remote.
//
// Both proxies print "listening on http://HOST:PORT" to standard error once
// they listen (the real port for port 0), log with log/slog (-log-format
// text or json; never a token), and on SIGTERM or SIGINT stop accepting,
// let requests in flight finish within -grace, and exit 0.
//
// token signs an RFC 7523 assertion as user NAME (key flags as for header),
// posts it to the token endpoint at TOKEN_URL for an access token, and
// prints the endpoint's JSON answer; a refusal exits 1 with the endpoint's
// error on standard error.
//
// demo starts a verifying server on 127.0.0.1, signs requests to it with a
// key file and an in-process ssh-agent, shows a replayed and a stale token
// and a body changed in flight refused, prints what happened and cleans up.
//
// version prints one line, the version of asymjwt and the Go release and
// platform it was built with, as in "asymjwt v1.0.0 (go1.26.8,
// linux/amd64)"; a build from a checkout names its commit when the go tool
// recorded it. -version and --version do the same.
//
// Exit codes: 0 success (for the proxies: stopped by a signal), 1 the token
// did not verify (or the token endpoint refused, or the demo did not go as
// expected, or a proxy could not go on serving), 2 a usage or input error
// (bad flags, an unreadable key file or key directory, a missing
// passphrase). A usage error prints one line naming the problem and one
// pointing to "asymjwt <command> -h", which prints the command's full
// usage.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit codes, part of the command line contract (DESIGN.md).
const (
	exitOK      = 0
	exitInvalid = 1
	exitUsage   = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

// commands returns the subcommands, in the order the help lists them. It is
// a function so that no package variable can be changed under a run.
func commands() []command {
	return []command{
		{"keygen", "make a key pair: FILE (OpenSSH private key) and FILE.pub", runKeygen},
		{"header", `print an Authorization header value, "JWT <token>"`, runHeader},
		{"verify", "verify a token against DIR/<username>.pub and print its claims", runVerify},
		{"token", "buy an access token at a token endpoint and print the answer", runToken},
		{"verify-proxy", "a verifying reverse proxy in front of a service in any language", runVerifyProxy},
		{"sign-proxy", "a local proxy that signs every request it forwards", runSignProxy},
		{"demo", "sign and verify requests on loopback, and show what happens", runDemo},
		{"version", "print the version of asymjwt and of the Go that built it", runVersion},
	}
}

// run runs the command line args (without the program name) and returns the
// exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		topUsage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(args) > 2 {
			return usageError(stderr, "", "help takes one command; unexpected argument %q", args[2])
		}
		if name == "help" && len(args) > 1 {
			return run([]string{args[1], "-h"}, stdin, stdout, stderr)
		}
		topUsage(stdout)
		return exitOK
	case "-version", "--version":
		return runVersion(args[1:], stdin, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(args[1:], stdin, stdout, stderr)
		}
	}
	return usageError(stderr, "", "unknown command %q", name)
}

func topUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: asymjwt <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "asymjwt <command> -h" for a command's flags.`)
	fmt.Fprintln(w, "Exit codes: 0 success, 1 verification failed or refused, 2 usage or input error.")
}

// newFlagSet returns a FlagSet for a subcommand that prints nothing itself:
// the flag package would print its error and the whole usage, where
// parseArgs prints the error as one line and the help only for -h.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("asymjwt "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// printUsage writes a subcommand's synopsis, description and flags to w.
func printUsage(w io.Writer, fs *flag.FlagSet, synopsis, description string) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", synopsis, strings.TrimSpace(description))
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nFlags:")
		out := fs.Output()
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(out)
	}
}

// parseArgs parses args with fs, allowing flags after positional arguments
// ("verify TOKEN -keys DIR"); everything after "--" is positional. It
// returns the positional arguments. For -h it prints the usage to stdout;
// a bad flag is a usage error. The returned code is -1 when parsing
// succeeded.
func parseArgs(fs *flag.FlagSet, args []string, stdout, stderr io.Writer, usage func(io.Writer)) ([]string, int) {
	var positional []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return nil, exitOK
		}
		if err != nil {
			return nil, usageError(stderr, strings.TrimPrefix(fs.Name(), "asymjwt "), "%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, -1
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), -1
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// usageError reports a usage error of the subcommand name ("" for the
// command itself) on stderr: one line naming the problem, and one saying
// where the usage is. The full usage would bury the problem.
func usageError(stderr io.Writer, name string, format string, args ...any) int {
	prog, hint := "asymjwt", "run 'asymjwt -h' for the commands"
	if name != "" {
		prog += " " + name
		hint = "run 'asymjwt " + name + " -h' for usage"
	}
	fmt.Fprintf(stderr, "%s: %s\n%s\n", prog, oneLine(fmt.Sprintf(format, args...)), hint)
	return exitUsage
}

// oneLine escapes line breaks, which an argument quoted into a message
// without %q (the flag package's "flag provided but not defined: -x") may
// hold, so the message stays one line.
func oneLine(s string) string {
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

// inputError reports an input error (a file that cannot be read, a missing
// passphrase): the message only.
func inputError(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "asymjwt %s: %s\n", name, errText(err))
	return exitUsage
}

// readPassphraseFile reads a passphrase from path. One trailing newline (LF
// or CRLF) is not part of the passphrase, as with openssl's "file:". The
// caller clears the returned slice when done.
func readPassphraseFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading passphrase file: %w", err)
	}
	p := data
	if n := len(p); n > 0 && p[n-1] == '\n' {
		p = p[:n-1]
		if n := len(p); n > 0 && p[n-1] == '\r' {
			p = p[:n-1]
		}
	}
	if len(p) == 0 {
		clear(data)
		return nil, fmt.Errorf("passphrase file %s is empty", path)
	}
	return p, nil
}

// errText is a library error's message for a line that already names the
// command ("asymjwt verify: ..."): the library names the package once, at
// the start of every message, and this is the one place that drops it.
func errText(err error) string { return strings.TrimPrefix(err.Error(), "asymjwt: ") }
