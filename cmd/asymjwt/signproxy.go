package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/asymjwt/asymjwt"
)

const signProxySynopsis = "asymjwt sign-proxy -listen ADDR -upstream URL -user NAME (-key FILE [-passphrase-file F] | -agent [-agent-key FP_OR_COMMENT]) [-cert FILE] [-allow-remote]"

const signProxyDescription = `
The client half for programs in any language: a local HTTP proxy that
forwards every request it receives to upstream, signed as user NAME with a
new token (the library's Transport): a fresh nonce and time for every
request and every attempt, bound to the method and upstream URL. A caller's
own Authorization header is replaced. Point a program at
http://127.0.0.1:PORT/path instead of https://upstream/path.

The key is a private key file (OpenSSH or PEM, plain or encrypted; the
passphrase from -passphrase-file or asked on the terminal at start) or a key
held by ssh-agent (SSH_AUTH_SOCK; -agent-key picks one of several). An
OpenSSH user certificate of the key goes into every token, as with
"asymjwt header": with -key FILE, FILE-cert.pub when it exists; with
-agent, one the agent holds for the key; -cert FILE names one instead. It
is read once, at start: a renewed certificate needs a restart, and one that
is not valid at start is used with a warning.

Whoever can reach the proxy signs as NAME, so it listens on loopback only:
a -listen address that is not a loopback address (127.0.0.1, [::1] or
localhost) is a usage error unless -allow-remote is given.

Attempts: a request is sent again, with a new token, after a connection to
upstream could not be made, or when a verifier answered 503 (it could not
verify: nothing reached the service); for idempotent methods (GET, HEAD,
OPTIONS, TRACE, PUT, DELETE, or a request with an Idempotency-Key header)
also after a broken connection or a 502, 503 or 504, at most -retries
times, with backoff. A 401 "stale" teaches the Transport the server's clock
and the request is sent once more (clock skew correction). To send a body
again it is kept: in memory up to 64 KiB, else in a temporary file (mode
0600, in $TMPDIR, unlinked at once). With -retries 0 bodies stream
straight through.

Answers stream back, flushes pass, and Upgrade (WebSocket) connections
pass. Upstream down: 502; no response headers within -upstream-timeout: 504.
On SIGTERM or SIGINT the proxy stops accepting, lets requests in flight
finish within -grace, and exits 0.

Standard error gets one line "listening on http://HOST:PORT" once it
listens, then the logs (text or JSON, -log-format), never a token.

Exit codes: 0 stopped by a signal; 1 serving failed; 2 a usage or input
error (bad flags, an unreadable key, a missing passphrase, no agent key).`

func runSignProxy(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("sign-proxy")
	pf := addProxyFlags(fs)
	sf := addSignerFlags(fs)
	allowRemote := fs.Bool("allow-remote", false, "allow a -listen address beyond loopback: whoever reaches it signs as NAME")
	retries := fs.Int("retries", 2, "send a failed request again at most `N` times (see above); 0: never")
	usage := func(w io.Writer) { printUsage(w, fs, signProxySynopsis, signProxyDescription) }

	rest, code := parseArgs(fs, args, stdout, stderr, usage)
	if code >= 0 {
		return code
	}
	if len(rest) > 0 {
		return usageError(stderr, "sign-proxy", "unexpected argument %q", rest[0])
	}
	if err := pf.check(); err != nil {
		return usageError(stderr, "sign-proxy", "%v", err)
	}
	problem := sf.problem()
	switch {
	case problem != "":
		return usageError(stderr, "sign-proxy", "%s", problem)
	case *retries < 0 || *retries > 10:
		return usageError(stderr, "sign-proxy", "-retries %d: want 0 to 10", *retries)
	}
	if !*allowRemote {
		if err := checkLoopback(pf.listen); err != nil {
			return usageError(stderr, "sign-proxy", "%v", err)
		}
	}

	logger := newLogger(pf.logFormat, stderr)
	ctx, cancel := context.WithTimeout(context.Background(), agentTimeout)
	signer, done, code := sf.newSigner(ctx, "sign-proxy", stdin, stderr)
	cancel()
	if code >= 0 {
		return code
	}
	defer done()

	handler := newSignProxy(signer, pf.upstreamURL, newUpstreamTransport(pf.upstreamTimeout), *retries, "", logger)
	ctx, stop := notifyStop()
	defer stop()
	ln, err := listen(pf.listen)
	if err != nil {
		return inputError(stderr, "sign-proxy", err)
	}
	if !*allowRemote && !isLoopbackAddr(ln.Addr()) {
		ln.Close()
		return usageError(stderr, "sign-proxy", "-listen %q is not on loopback (give -allow-remote to allow it)", pf.listen)
	}
	fmt.Fprintf(stderr, "listening on http://%s\n", ln.Addr())
	attrs := []any{"listen", ln.Addr().String(), "upstream", pf.upstreamURL.Redacted(),
		"user", *sf.username, "key", signer.KeyID(), "retries", *retries}
	if c := signer.Certificate(); c != nil {
		attrs = append(attrs, "certificate", c.KeyId)
	}
	logger.Info("sign-proxy started", attrs...)
	flight := &inFlight{}
	return serve(ctx, stop, newServer(flight.wrap(handler), logger), ln, flight, nil, pf.grace, logger, nil)
}

// checkLoopback accepts a listen address on a loopback IP or "localhost";
// any other (an empty host means every interface) is refused.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-listen %q: want host:port", addr)
	}
	if strings.EqualFold(host, "localhost") {
		return nil // the listener's address is checked too
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-listen %q is not a loopback address; whoever reaches the proxy signs as the user (give -allow-remote to allow it)", addr)
}

func isLoopbackAddr(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// signProxy forwards requests to upstream, signed.
type signProxy struct {
	proxy    *httputil.ReverseProxy
	retries  int
	spoolDir string // "" for os.TempDir()
	logger   *slog.Logger
}

// newSignProxy returns sign-proxy's handler: a reverse proxy to upstream
// whose transport is the library's Transport (signing every attempt with
// signer, over base) under a retry layer of at most retries attempts more.
func newSignProxy(signer *asymjwt.Signer, upstream *url.URL, base http.RoundTripper, retries int, spoolDir string, logger *slog.Logger) http.Handler {
	p := &signProxy{retries: retries, spoolDir: spoolDir, logger: logger}
	var rt http.RoundTripper = &asymjwt.Transport{Signer: signer, Base: base}
	if retries > 0 {
		rt = &retryTransport{next: rt, retries: retries, logger: logger}
	}
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			// The Transport sets its own; never forward the caller's.
			pr.Out.Header.Del("Authorization")
		},
		Transport:     rt,
		FlushInterval: -1,
		ErrorHandler:  p.upstreamFailed,
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return p
}

func (p *signProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if p.retries > 0 {
		cleanup, err := spoolBody(r, p.spoolDir)
		defer cleanup()
		if err != nil {
			var re *bodyReadError
			status := http.StatusInternalServerError
			if errors.As(err, &re) {
				status = http.StatusBadRequest
			}
			p.logger.LogAttrs(r.Context(), slog.LevelWarn, "request body not forwarded",
				slog.String("error", err.Error()), slog.String("method", r.Method), slog.String("path", r.URL.Path))
			http.Error(w, http.StatusText(status), status)
			return
		}
	}
	e := &exchange{ResponseWriter: w, start: start}
	p.proxy.ServeHTTP(e, r)
	status := e.status
	if status == 0 {
		status = http.StatusSwitchingProtocols
	}
	p.logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", status), slog.Duration("duration", time.Since(start)))
}

// upstreamFailed is ReverseProxy's ErrorHandler: 504 when upstream did not
// answer in time, 502 when it could not be reached or signing failed.
func (p *signProxy) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	status, reason := upstreamFault(r, err)
	if reason != "canceled" {
		p.logger.LogAttrs(r.Context(), slog.LevelWarn, "upstream did not answer",
			slog.String("reason", reason), slog.String("error", err.Error()),
			slog.String("method", r.Method), slog.String("path", r.URL.Path))
	}
	writeUpstreamFault(w, status)
}

// retryTransport sends a request again through next, which signs each
// attempt afresh, when the attempt failed in a way that is safe to repeat
// (see the command's description). It is the retry layer above the
// signing Transport, as NewRetryClient puts it, for a ReverseProxy, which
// takes a RoundTripper rather than a client.
type retryTransport struct {
	next    http.RoundTripper
	retries int
	logger  *slog.Logger
}

// Backoff between attempts: doubling from retryWaitMin, at most
// retryWaitMax, with jitter; a Retry-After of up to retryWaitMax is
// followed.
const (
	retryWaitMin = 100 * time.Millisecond
	retryWaitMax = 2 * time.Second
)

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rewindable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	for attempt := 0; ; attempt++ {
		r := req
		if attempt > 0 {
			r = req.Clone(req.Context())
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				r.Body = body
			}
		}
		resp, err := t.next.RoundTrip(r)
		if attempt >= t.retries || !rewindable || !retryable(req, resp, err) {
			return resp, err
		}
		wait := backoff(attempt, resp)
		why := "connection failed"
		if resp != nil {
			why = resp.Status
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		t.logger.LogAttrs(req.Context(), slog.LevelInfo, "sending again with a new token",
			slog.String("after", why), slog.Int("attempt", attempt+2), slog.Duration("wait", wait),
			slog.String("method", req.Method), slog.String("path", req.URL.Path))
		timer := time.NewTimer(wait)
		select {
		case <-req.Context().Done():
			timer.Stop()
			return nil, req.Context().Err()
		case <-timer.C:
		}
	}
}

// retryable reports whether an attempt that gave resp or err may be
// repeated: always when nothing can have reached the service (no
// connection was made; a verifier could not verify), and for idempotent
// requests also after another error (a broken connection; signing failed,
// which an agent that restarted may cure) or a gateway's 502, 503 or 504.
// Timeouts are not repeated: the caller's own deadline is better placed to
// decide.
func retryable(req *http.Request, resp *http.Response, err error) bool {
	if req.Context().Err() != nil {
		return false
	}
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return true // no connection, nothing sent
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false
		}
		return idempotent(req)
	}
	var refused *asymjwt.RefusedError
	if errors.As(asymjwt.CheckResponse(resp), &refused) && refused.StatusCode == http.StatusServiceUnavailable {
		return true
	}
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return idempotent(req)
	}
	return false
}

// idempotent reports whether req may be sent twice (RFC 9110 §9.2.2), as
// net/http's transport decides when it retries by itself.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	_, ok := req.Header["Idempotency-Key"]
	_, ok2 := req.Header["X-Idempotency-Key"]
	return ok || ok2
}

// backoff is the wait before attempt+2.
func backoff(attempt int, resp *http.Response) time.Duration {
	if resp != nil {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			if d := time.Duration(s) * time.Second; d <= retryWaitMax {
				return d
			}
		}
	}
	d := retryWaitMin << attempt
	if d > retryWaitMax || d <= 0 {
		d = retryWaitMax
	}
	// Jitter: between half and all of d, so many proxies do not retry in step.
	return d/2 + rand.N(d/2+1)
}
