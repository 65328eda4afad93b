package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/asymjwt/asymjwt"
)

const tokenSynopsis = "asymjwt token -user NAME (-key FILE [-passphrase-file F] | -agent [-agent-key FP_OR_COMMENT]) [-cert FILE] -url TOKEN_URL [-scope SCOPE] [-audience AUD]"

const tokenDescription = `
Buys an access token: signs a JWT bearer assertion (RFC 7523) as user NAME,
with a key file or a key held by ssh-agent, posts it to the token endpoint at
TOKEN_URL (grant_type urn:ietf:params:oauth:grant-type:jwt-bearer), and
prints the endpoint's JSON answer (access_token, token_type, expires_in,
refresh_token, scope) on standard output.

The assertion's "iss" and "sub" are NAME, its "aud" TOKEN_URL (or -audience,
for servers that want their issuer identifier), it lives one minute and has
a random "jti"; its "kid" is the key's fingerprint, and its header carries
the key's OpenSSH certificate when there is one. The key flags are those of
"asymjwt header". TOKEN_URL must be https, or http on a loopback address.

The answer holds secrets: the access token works as "Authorization: Bearer"
until it expires, and the refresh token buys new ones. Example:

  asymjwt token -user svc -key ~/.ssh/id_ed25519 -url https://auth.example.com/oauth/token | jq -r .access_token

Exit codes: 0 a token was issued; 1 the endpoint refused (its error and
error_description go to standard error) or could not be reached; 2 a usage
or input error.`

// tokenTimeout bounds the exchange with the endpoint.
const tokenTimeout = 30 * time.Second

// maxTokenAnswer bounds the endpoint's answer that is read.
const maxTokenAnswer = 1 << 20

func runToken(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("token")
	sf := addSignerFlags(fs)
	tokenURL := fs.String("url", "", "the token endpoint's `URL` (required)")
	scope := fs.String("scope", "", "ask for `SCOPE` (space-separated)")
	audience := fs.String("audience", "", "the assertion's \"aud\" `AUD`, if not the token URL")
	usage := func(w io.Writer) { printUsage(w, fs, tokenSynopsis, tokenDescription) }

	rest, code := parseArgs(fs, args, stdout, stderr, usage)
	if code >= 0 {
		return code
	}
	problem := sf.problem()
	switch {
	case len(rest) > 0:
		return usageError(stderr, "token", "unexpected argument %q", rest[0])
	case problem != "":
		return usageError(stderr, "token", "%s", problem)
	case *tokenURL == "":
		return usageError(stderr, "token", "-url TOKEN_URL is required")
	}
	if err := checkTokenURL(*tokenURL); err != nil {
		return usageError(stderr, "token", "%v", err)
	}
	aud := *audience
	if aud == "" {
		aud = *tokenURL
	}

	ctx, cancel := context.WithTimeout(context.Background(), agentTimeout+tokenTimeout)
	defer cancel()
	signer, done, code := sf.newSigner(ctx, "token", stdin, stderr)
	if code >= 0 {
		return code
	}
	defer done()
	assertion, err := signer.SignAssertion(ctx, aud)
	if err != nil {
		return inputError(stderr, "token", err)
	}
	form := url.Values{"grant_type": {asymjwt.GrantTypeJWTBearer}, "assertion": {assertion}}
	if *scope != "" {
		form.Set("scope", *scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return usageError(stderr, "token", "-url %q: %v", *tokenURL, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	client := &http.Client{Timeout: tokenTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		// The error names the URL, never the assertion (it is in the body).
		fmt.Fprintf(stderr, "asymjwt token: %v\n", err)
		return exitInvalid
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenAnswer))
	if err != nil {
		fmt.Fprintf(stderr, "asymjwt token: reading the answer: %v\n", err)
		return exitInvalid
	}
	var answer struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	isJSON := mt == "application/json" && json.Unmarshal(body, &answer) == nil
	switch {
	case resp.StatusCode == http.StatusOK && isJSON && answer.AccessToken != "":
		stdout.Write(bytes.TrimSpace(body))
		fmt.Fprintln(stdout)
		return exitOK
	case isJSON && answer.Error != "":
		msg := oneLine(answer.Error)
		if answer.Description != "" {
			msg += ": " + oneLine(answer.Description)
		}
		fmt.Fprintf(stderr, "asymjwt token: refused: %.300s (%s)\n", msg, resp.Status)
	default:
		fmt.Fprintf(stderr, "asymjwt token: the endpoint answered %s without a token\n", resp.Status)
	}
	return exitInvalid
}

// checkTokenURL accepts an absolute https URL, or http on a loopback
// address: the answer holds tokens that work for minutes.
func checkTokenURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("-url %q: want an absolute https URL", s)
	}
	if u.Scheme == "http" {
		host := u.Hostname()
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("-url %q: use https (http only on a loopback address: the answer holds tokens)", s)
		}
	}
	return nil
}
