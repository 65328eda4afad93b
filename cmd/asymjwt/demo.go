package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/asymjwt/asymjwt"
	"github.com/asymjwt/asymjwt/internal/agentserver"
	"golang.org/x/crypto/ssh/agent"
)

const demoSynopsis = "asymjwt demo"

const demoDescription = `
Shows asymjwt at work, on loopback only, and cleans up after itself. It makes
two users' keys in a temporary directory: alice's in a key file (written and
read back), bob's in an in-process ssh-agent. It starts a verifying server on
127.0.0.1 that reads their public keys from DIR/<username>.pub, sends signed
requests to it through asymjwt.Transport, and shows that a replayed token, a
body changed in flight, a query changed in flight, a stale token (signed
with a clock 60 seconds behind) and a token bound to another request are
refused. Then it shows token exchange on the same server: a signed
assertion buys an access token at its token endpoint, the access token
calls the server as "Authorization: Bearer", a refresh token is rotated,
and a reused refresh token revokes its whole chain. It prints an account
of what happened.

Exit codes: 0 everything went as expected; 1 something did not.`

func runDemo(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo")
	usage := func(w io.Writer) { printUsage(w, fs, demoSynopsis, demoDescription) }
	rest, code := parseArgs(fs, args, stdout, stderr, usage)
	if code >= 0 {
		return code
	}
	if len(rest) > 0 {
		return usageError(stderr, "demo", "unexpected argument %q", rest[0])
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fmt.Fprintln(stdout, "asymjwt demo: signed requests to a verifying server on loopback")
	cleanup, err := demo(ctx, stdout)
	if err == nil {
		fmt.Fprintln(stdout, "\nEvery request went as expected.")
	}
	fmt.Fprintf(stdout, "Cleaned up: %s.\n", cleanup)
	if err != nil {
		fmt.Fprintf(stderr, "asymjwt demo: %v\n", errText(err))
		return exitInvalid
	}
	return exitOK
}

// demo runs the demonstration, writing its account to out, and returns what
// it cleaned up.
func demo(ctx context.Context, out io.Writer) (cleaned string, err error) {
	var done []string
	defer func() { cleaned = strings.Join(done, ", ") }()

	dir, err := os.MkdirTemp("", "asymjwt-demo-")
	if err != nil {
		return "", err
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = rerr
		}
		done = append(done, "removed "+dir)
	}()
	keysDir := filepath.Join(dir, "keys")
	if err := os.Mkdir(keysDir, 0o700); err != nil {
		return "", err
	}
	fmt.Fprintf(out, "\nSetup, in the temporary directory %s\n", dir)

	// alice: a key file, written in OpenSSH format and read back.
	_, alicePriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	aliceFile := filepath.Join(dir, "alice_ed25519")
	privPEM, pubLine, err := marshalKeyPair(alicePriv, "alice@demo", nil)
	if err != nil {
		return "", err
	}
	if err := writeNewFile(aliceFile, privPEM, 0o600, false); err != nil {
		return "", err
	}
	clear(privPEM)
	if err := writeNewFile(filepath.Join(keysDir, "alice.pub"), pubLine, 0o644, false); err != nil {
		return "", err
	}
	aliceKey, err := asymjwt.KeyFromFile(aliceFile)
	if err != nil {
		return "", err
	}
	alice, err := asymjwt.NewSigner("alice", aliceKey)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(out, "  alice: Ed25519 key file %s, read back with KeyFromFile; key %s\n", filepath.Base(aliceFile), alice.KeyID())

	// bob: a key held by an ssh-agent of our own, on a unix socket.
	bobPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	keyring, ok := agent.NewKeyring().(agent.ExtendedAgent)
	if !ok {
		return "", errors.New("x/crypto's keyring is not an agent.ExtendedAgent")
	}
	if err := keyring.Add(agent.AddedKey{PrivateKey: bobPriv, Comment: "bob@demo"}); err != nil {
		return "", err
	}
	_, bobPub, err := marshalKeyPair(bobPriv, "bob@demo", nil)
	if err != nil {
		return "", err
	}
	if err := writeNewFile(filepath.Join(keysDir, "bob.pub"), bobPub, 0o644, false); err != nil {
		return "", err
	}
	ag, where, stopAgent, err := startDemoAgent(keyring, filepath.Join(dir, "agent.sock"))
	if err != nil {
		return "", err
	}
	defer func() {
		stopAgent()
		done = append(done, "agent stopped")
	}()
	bobKey, err := ag.Key(ctx, "bob@demo")
	if err != nil {
		return "", err
	}
	bob, err := asymjwt.NewSigner("bob", bobKey)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(out, "  bob:   ECDSA P-256 key held by an in-process ssh-agent %s; key %s\n", where, bob.KeyID())

	// The verifying server, on loopback.
	store, err := asymjwt.NewDirKeyStore(keysDir)
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	baseURL := "http://" + ln.Addr().String()
	// The access-token issuer: its own Ed25519 key, in memory.
	_, issuerPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		ln.Close()
		return "", err
	}
	issuerKey, err := asymjwt.KeyFromSigner(issuerPriv)
	if err != nil {
		ln.Close()
		return "", err
	}
	issuer, err := asymjwt.NewIssuer(baseURL, issuerKey)
	if err != nil {
		ln.Close()
		return "", err
	}
	var reasons refusalLog
	verifier, err := asymjwt.NewVerifier(store, asymjwt.WithErrorHook(reasons.record),
		asymjwt.WithHosts(ln.Addr().String()), // bound tokens must name this server
		asymjwt.WithTrustedIssuer(issuer))     // and Bearer tokens, this issuer
	if err != nil {
		ln.Close()
		return "", err
	}
	endpoint, err := asymjwt.NewTokenEndpoint(verifier, issuer, baseURL+"/oauth/token")
	if err != nil {
		ln.Close()
		return "", err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /oauth/token", endpoint)
	mux.Handle("GET /.well-known/jwks.json", issuer)
	mux.Handle("/", verifier.Middleware(http.HandlerFunc(greet)))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	base := &http.Transport{Proxy: nil} // loopback only: never a proxy
	defer func() {
		srv.Close()
		<-served
		base.CloseIdleConnections()
		done = append(done, "server closed")
	}()
	fmt.Fprintf(out, "  server: %s, verifying with the public keys in keys/alice.pub and keys/bob.pub\n", baseURL)
	fmt.Fprintf(out, "  token endpoint: %s/oauth/token, issuing access tokens signed by key %s (JWK set at /.well-known/jwks.json)\n", baseURL, issuer.KeyID())

	fmt.Fprintln(out, "\nRequests")
	r := &demoRunner{ctx: ctx, out: out, base: base, baseURL: baseURL, reasons: &reasons}

	// 1. A request signed with the key file, through the Transport.
	rec := &recordingTransport{base: base}
	aliceClient := &http.Client{Transport: &asymjwt.Transport{Signer: alice, Base: rec}, Timeout: 30 * time.Second}
	if err := r.step("alice GET /hello, signed with her key file", aliceClient, http.MethodGet, "/hello", http.StatusOK, ""); err != nil {
		return "", err
	}
	firstAuth := rec.last()
	if firstAuth == "" {
		return "", fmt.Errorf("request 1 was sent without a token")
	}

	// 2. Another, with a body; the token is bound to POST /items and to
	// the body, through its Content-Digest header.
	if err := r.step("alice POST /items, token bound to POST /items and its body", aliceClient, http.MethodPost, "/items", http.StatusOK, ""); err != nil {
		return "", err
	}

	// 3. A request signed by the agent.
	bobClient := &http.Client{Transport: &asymjwt.Transport{Signer: bob, Base: base}, Timeout: 30 * time.Second}
	if err := r.step("bob GET /hello, signed by the ssh-agent", bobClient, http.MethodGet, "/hello", http.StatusOK, ""); err != nil {
		return "", err
	}

	// 4. Request 1's token again: a replay.
	if err := r.raw("request 1's token sent again (a replay)", http.MethodGet, "/hello", firstAuth, "replay"); err != nil {
		return "", err
	}

	// 5. A body changed in flight, to the same length, by something between
	// the client and the server: the server's handler fails to read it.
	tampered := &http.Client{Transport: &asymjwt.Transport{Signer: alice, Base: tamperingTransport{base}}, Timeout: 30 * time.Second}
	if err := r.stepBody("alice POST /transfers {\"amount\":1}, changed in flight to 9", tampered, http.MethodPost, "/transfers", `{"amount":1}`, http.StatusUnauthorized, "binding"); err != nil {
		return "", err
	}

	// 6. A token made for one query, sent with another.
	if err := r.signedRaw("a token for GET /hello?page=1 sent with ?page=2", alice, http.MethodGet, "/hello?page=1", "/hello?page=2", "binding"); err != nil {
		return "", err
	}

	// 7. A token made with a clock 60 s behind: stale. It is sent as is,
	// since a Transport may learn the server's clock from the refusal and
	// try again.
	late, err := asymjwt.NewSigner("alice", aliceKey, asymjwt.WithClock(func() time.Time { return time.Now().Add(-60 * time.Second) }))
	if err != nil {
		return "", err
	}
	if err := r.signedRaw("alice GET /hello, her clock 60 s behind", late, http.MethodGet, "/hello", "/hello", "stale"); err != nil {
		return "", err
	}

	// 8. A token made for GET /hello, sent to GET /admin.
	if err := r.signedRaw("a token for GET /hello sent to GET /admin", alice, http.MethodGet, "/hello", "/admin", "binding"); err != nil {
		return "", err
	}

	// 9. No token at all.
	if err := r.raw("an unsigned request", http.MethodGet, "/hello", "", "no_token"); err != nil {
		return "", err
	}

	fmt.Fprintln(out, "\nToken exchange (RFC 7523): sign once, then call with an access token")
	if err := r.exchange(alice, bob); err != nil {
		return "", err
	}
	return "", nil
}

// greet answers a verified request with who signed it, once it has read the
// body to its end: a body changed in flight fails that read with an error
// wrapping asymjwt.ErrBinding (it no longer matches the Content-Digest the
// token binds), and is refused as the verifier refuses.
func greet(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		if errors.Is(err, asymjwt.ErrBinding) {
			w.Header().Set("WWW-Authenticate", `JWT error="binding"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	id, _ := asymjwt.IdentityFrom(r.Context())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "hello %s, by %s (%s, key %s)\n", id.Username, id.Kind, id.Algorithm, id.Key.Fingerprint)
}

// startDemoAgent serves keyring as an ssh-agent on a unix socket at socket
// and connects to it with asymjwt.DialAgent. Where the path is too long for
// a unix socket it hands the keyring to asymjwt.NewAgent instead. stop closes
// the Agent and the served agent, and waits for them.
func startDemoAgent(keyring agent.ExtendedAgent, socket string) (ag *asymjwt.Agent, where string, stop func(), err error) {
	const maxSocketPath = 100 // sun_path is 104 or 108 bytes
	if len(socket) > maxSocketPath {
		ag = asymjwt.NewAgent(keyring)
		return ag, "(in memory: the temporary directory's path is too long for a socket)", func() { ag.Close() }, nil
	}
	served, err := agentserver.Serve(keyring, socket)
	if err != nil {
		return nil, "", nil, err
	}
	if ag, err = asymjwt.DialAgent(socket); err != nil {
		served.Close()
		return nil, "", nil, err
	}
	return ag, "on " + filepath.Base(socket), func() { ag.Close(); served.Close() }, nil
}

// demoRunner sends the demo's requests and writes one line per request.
type demoRunner struct {
	ctx     context.Context
	out     io.Writer
	base    http.RoundTripper
	baseURL string
	reasons *refusalLog
	n       int
}

// step sends a request through client and checks the answer: wantStatus,
// and for a refusal the error kind wantKind. A POST carries a small JSON
// body.
func (r *demoRunner) step(what string, client *http.Client, method, path string, wantStatus int, wantKind string) error {
	body := ""
	if method == http.MethodPost {
		body = `{"name":"demo"}`
	}
	return r.stepBody(what, client, method, path, body, wantStatus, wantKind)
}

// stepBody is step with the body ("" for none).
func (r *demoRunner) stepBody(what string, client *http.Client, method, path, body string, wantStatus int, wantKind string) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(r.ctx, method, r.baseURL+path, rd)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	return r.report(what, resp, wantStatus, wantKind)
}

// signedRaw signs a token with s for method and signedPath, sends it to
// sentPath, bypassing the Transport, and expects it refused with wantKind.
func (r *demoRunner) signedRaw(what string, s *asymjwt.Signer, method, signedPath, sentPath, wantKind string) error {
	req, err := http.NewRequestWithContext(r.ctx, method, r.baseURL+signedPath, nil)
	if err != nil {
		return err
	}
	tok, err := s.Sign(r.ctx, req)
	if err != nil {
		return err
	}
	return r.raw(what, method, sentPath, "JWT "+tok, wantKind)
}

// raw sends a request with the given Authorization header ("" for none),
// bypassing the Transport, and expects it refused with wantKind.
func (r *demoRunner) raw(what, method, path, authorization, wantKind string) error {
	req, err := http.NewRequestWithContext(r.ctx, method, r.baseURL+path, nil)
	if err != nil {
		return err
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return err
	}
	return r.report(what, resp, http.StatusUnauthorized, wantKind)
}

func (r *demoRunner) report(what string, resp *http.Response, wantStatus int, wantKind string) error {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	r.n++
	fmt.Fprintf(r.out, "  %d. %s\n", r.n, what)
	var result string
	kind := ""
	if resp.StatusCode == http.StatusOK {
		result = fmt.Sprintf("accepted: %s", strings.TrimSpace(string(b)))
	} else {
		kind = strings.TrimSuffix(strings.TrimPrefix(resp.Header.Get("WWW-Authenticate"), `JWT error="`), `"`)
		result = fmt.Sprintf("refused (%s); the server's reason, logged, never sent: %s", kind, r.reasons.last())
	}
	fmt.Fprintf(r.out, "     -> %s %s\n", resp.Status, result)
	if resp.StatusCode != wantStatus || kind != wantKind {
		want := http.StatusText(wantStatus)
		if wantKind != "" {
			want += " (" + wantKind + ")"
		}
		return fmt.Errorf("request %d (%s): got %s, want %s", r.n, what, resp.Status, want)
	}
	return nil
}

// refusalLog keeps the reason the server gave itself for its last refusal
// (which the client is never told).
type refusalLog struct {
	mu     sync.Mutex
	reason string
}

func (l *refusalLog) record(_ *http.Request, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reason = errText(err)
}

func (l *refusalLog) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reason == "" {
		return "none recorded"
	}
	return l.reason
}

// tamperingTransport stands for a proxy between the client and the server
// that changes request bodies in flight, keeping their length: "amount":1
// becomes "amount":9. The token and the Content-Digest header pass as
// they are.
type tamperingTransport struct{ base http.RoundTripper }

func (t tamperingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	changed := bytes.Replace(body, []byte(`"amount":1`), []byte(`"amount":9`), 1)
	r2 := req.Clone(req.Context())
	r2.Body = io.NopCloser(bytes.NewReader(changed))
	r2.ContentLength = int64(len(changed))
	return t.base.RoundTrip(r2)
}

// recordingTransport remembers the Authorization header of the last request
// it sent, so the demo can replay a token.
type recordingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	auth string
}

func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.mu.Lock()
	t.auth = req.Header.Get("Authorization")
	t.mu.Unlock()
	return t.base.RoundTrip(req)
}

func (t *recordingTransport) last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.auth
}
