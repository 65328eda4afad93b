package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/asymjwt/asymjwt"
	"github.com/asymjwt/asymjwt/redisnonce"
	"github.com/redis/go-redis/v9"
)

const verifyProxySynopsis = "asymjwt verify-proxy -listen ADDR -upstream URL -keys DIR [-keys-recheck DURATION] [-public-url URL] [-redis ADDR] [-require-binding] [-require-body-binding] [-metrics ADDR] [-log-format text|json] [-issuer-key FILE [-issuer URL] [-token-ttl DURATION]]"

const verifyProxyDescription = `
A verifying reverse proxy in front of an HTTP service in any language. Every
request must carry "Authorization: JWT <token>" signed by a key of its user
in DIR/<username>.pub (files are read again when they change). A request
that does not verify is refused as the library's Verifier.Middleware
refuses it (401, or 503 when a store cannot answer, with WWW-Authenticate
and Date) and never reaches upstream.

A verified request goes to upstream without its Authorization header and
with two headers the service can trust:

  Asymjwt-User: <username>
  Asymjwt-Key:  <SHA256:... fingerprint of the key that verified>

Copies of them sent by a client are removed on every path: in any case,
repeated, spelled with "_" (Asymjwt_User, which CGI and WSGI servers read as
the same header), or named in Connection. A username with a leading or
trailing space cannot be passed as it is: such a request is answered 403.
X-Forwarded-For, -Host and -Proto are set; the Host header is upstream's.

Bodies and answers stream both ways, flushes pass at once, and Upgrade
(WebSocket) connections pass. A body whose token binds it is checked as it
streams against its Content-Digest: one that does not match is answered
401 (WWW-Authenticate: JWT error="binding") and upstream gets it cut short,
never whole. Upstream down: 502; no response headers within
-upstream-timeout: 504. On SIGTERM or SIGINT the proxy stops accepting,
lets requests in flight finish within -grace, and exits 0.

Key files are stat'ed on every request and read again when they change, so
a key added or removed takes effect at once. -keys-recheck D looks at a
user's file at most every D instead (three system calls less per request;
a removed key may still verify for up to D).

-public-url is the scheme and host clients use (such as
https://api.example.com behind a load balancer that terminates TLS): tokens
must be bound to it. Without it, the request's own Host is believed.
-redis shares the nonces with the other proxies of a fleet (redisnonce), so
a token accepted by one is refused by all: host:port, or a redis:// or
rediss:// URL. While Redis cannot answer, requests are refused with 503.
-require-binding refuses tokens without "htm", "htu" and "htq" claims.
-require-body-binding refuses a request with a body whose token does not
bind it (no "hcd" claim), as sign-proxy and the library's Transport bind
every body they send.

-metrics ADDR serves GET /healthz (200 "ok", 503 while shutting down) and
GET /metrics (Prometheus text format): asymjwt_requests_total{result},
asymjwt_verify_seconds, asymjwt_key_store_seconds{result},
asymjwt_nonce_store_seconds{result}, asymjwt_upstream_seconds,
asymjwt_upstream_errors_total{reason}, asymjwt_bodies_refused_total{result}
(a body that did not match its digest after the headers verified), and the
Go runtime's and process's.

With -issuer-key FILE it is also a token endpoint (RFC 7523): it serves
POST /oauth/token and GET /.well-known/jwks.json itself, issues access
tokens signed with the key in FILE (lifetime -token-ttl, issuer -issuer,
by default -public-url or its own address), and accepts them as
"Authorization: Bearer" besides "JWT".

Standard error gets one line "listening on http://HOST:PORT" (after
"metrics on http://HOST:PORT" with -metrics) once it listens, then the logs,
text or JSON (-log-format): a line per request, never a token.

Exit codes: 0 stopped by a signal; 1 serving failed; 2 a usage or input
error (bad flags, an unreadable DIR, an address that cannot be listened on).`

func runVerifyProxy(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify-proxy")
	pf := addProxyFlags(fs)
	keysDir := fs.String("keys", "", "`DIR` of public keys, one file per user: DIR/<username>.pub (required)")
	keysRecheck := fs.Duration("keys-recheck", 0, "look at a user's key file again at most every `DURATION` (0: on every request; a removed key may verify this long)")
	publicURL := fs.String("public-url", "", "the scheme and host clients reach this proxy at, `URL` such as https://api.example.com; tokens are bound to it")
	redisAddr := fs.String("redis", "", "share nonces through Redis at `ADDR` (host:port or redis:// URL), for a fleet of proxies")
	requireBinding := fs.Bool("require-binding", false, `refuse tokens without "htm", "htu" and "htq" claims`)
	requireBodyBinding := fs.Bool("require-body-binding", false, `refuse a request with a body whose token does not bind it (no "hcd" claim)`)
	metricsAddr := fs.String("metrics", "", "serve /healthz and /metrics (Prometheus) on `ADDR`")
	issuerKey := fs.String("issuer-key", "", "also serve POST /oauth/token and GET /.well-known/jwks.json, issuing access tokens signed with the private key in `FILE`, and accept them as Bearer")
	issuerName := fs.String("issuer", "", "the issuer identifier and base `URL` of the token endpoint (default: -public-url, else http://the listen address)")
	tokenTTL := fs.Duration("token-ttl", 5*time.Minute, "lifetime of the access tokens -issuer-key issues")
	usage := func(w io.Writer) { printUsage(w, fs, verifyProxySynopsis, verifyProxyDescription) }

	rest, code := parseArgs(fs, args, stdout, stderr, usage)
	if code >= 0 {
		return code
	}
	if len(rest) > 0 {
		return usageError(stderr, "verify-proxy", "unexpected argument %q", rest[0])
	}
	if err := pf.check(); err != nil {
		return usageError(stderr, "verify-proxy", "%v", err)
	}
	switch {
	case *keysDir == "":
		return usageError(stderr, "verify-proxy", "-keys DIR is required")
	case *metricsAddr != "" && !validHostPort(*metricsAddr):
		return usageError(stderr, "verify-proxy", "-metrics %q: want host:port", *metricsAddr)
	case *issuerKey == "" && *issuerName != "":
		return usageError(stderr, "verify-proxy", "-issuer needs -issuer-key")
	case *tokenTTL <= 0:
		return usageError(stderr, "verify-proxy", "-token-ttl %v: want a positive duration", *tokenTTL)
	case *keysRecheck < 0:
		return usageError(stderr, "verify-proxy", "-keys-recheck %v: want 0 or a positive duration", *keysRecheck)
	}
	var redisOpts *redis.Options
	if *redisAddr != "" {
		var err error
		if redisOpts, err = parseRedisAddr(*redisAddr); err != nil {
			return usageError(stderr, "verify-proxy", "%v", err)
		}
	}

	logger := newLogger(pf.logFormat, stderr)
	keys, err := asymjwt.NewDirKeyStore(*keysDir, asymjwt.WithLogger(logger), asymjwt.WithRecheckInterval(*keysRecheck))
	if err != nil {
		return inputError(stderr, "verify-proxy", err)
	}
	opts := []asymjwt.VerifierOption{asymjwt.WithLogger(logger)}
	if *publicURL != "" {
		opts = append(opts, asymjwt.WithPublicURL(*publicURL))
	}
	if *requireBinding {
		opts = append(opts, asymjwt.WithRequireBinding())
	}
	if *requireBodyBinding {
		opts = append(opts, asymjwt.WithRequireBodyBinding())
	}
	var metrics *proxyMetrics
	if *metricsAddr != "" {
		metrics = newProxyMetrics()
		opts = append(opts, asymjwt.WithMetrics(metrics))
	}
	if redisOpts != nil {
		client := redis.NewClient(redisOpts)
		defer client.Close()
		store, err := redisnonce.New(client)
		if err != nil {
			return inputError(stderr, "verify-proxy", err)
		}
		opts = append(opts, asymjwt.WithNonceStore(store))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := client.Ping(ctx).Err(); err != nil {
			logger.Warn("Redis does not answer yet: requests are refused with 503 until it does", "redis", redisOpts.Addr, "error", err.Error())
		}
		cancel()
	}
	ln, err := listen(pf.listen)
	if err != nil {
		return inputError(stderr, "verify-proxy", err)
	}
	var issuer *asymjwt.Issuer
	if *issuerKey != "" {
		base := *issuerName
		if base == "" {
			base = *publicURL
		}
		if base == "" {
			base = "http://" + ln.Addr().String()
		}
		base = strings.TrimSuffix(base, "/")
		key, err := loadKeyFile(*issuerKey, "", "", stdin, stderr)
		if err != nil {
			return inputError(stderr, "verify-proxy", err)
		}
		if issuer, err = asymjwt.NewIssuer(base, key); err != nil {
			return usageError(stderr, "verify-proxy", "-issuer-key: %s", errText(err))
		}
		opts = append(opts, asymjwt.WithTrustedIssuer(issuer))
	}
	verifier, err := asymjwt.NewVerifier(keys, opts...)
	if err != nil {
		return usageError(stderr, "verify-proxy", "%s", errText(err))
	}

	handler := newVerifyProxy(verifier, pf.upstreamURL, *publicURL, newUpstreamTransport(pf.upstreamTimeout), logger, metrics)
	if issuer != nil {
		ep, err := asymjwt.NewTokenEndpoint(verifier, issuer, issuer.Issuer()+"/oauth/token", asymjwt.WithAccessTokenLifetime(*tokenTTL))
		if err != nil {
			return usageError(stderr, "verify-proxy", "%s", errText(err))
		}
		mux := http.NewServeMux()
		mux.Handle("POST /oauth/token", ep)
		mux.Handle("GET /.well-known/jwks.json", issuer)
		mux.Handle("/", handler)
		handler = mux
	}
	flight := &inFlight{}
	side := map[*http.Server]net.Listener{}
	if metrics != nil {
		mln, err := listen(*metricsAddr)
		if err != nil {
			return inputError(stderr, "verify-proxy", err)
		}
		side[newServer(metrics.handler(), logger)] = mln
		fmt.Fprintf(stderr, "metrics on http://%s\n", mln.Addr())
	}
	ctx, stop := notifyStop()
	defer stop()
	fmt.Fprintf(stderr, "listening on http://%s\n", ln.Addr())
	logger.Info("verify-proxy started", "listen", ln.Addr().String(), "upstream", pf.upstreamURL.Redacted(), "keys", *keysDir, "redis", *redisAddr != "")
	var onDrain func()
	if metrics != nil {
		onDrain = func() { metrics.draining.Store(true) }
	}
	return serve(ctx, stop, newServer(flight.wrap(handler), logger), ln, flight, side, pf.grace, logger, onDrain)
}

// validHostPort reports whether addr is host:port.
func validHostPort(addr string) bool {
	_, _, err := net.SplitHostPort(addr)
	return err == nil
}

// parseRedisAddr reads -redis: host:port, or a redis:// or rediss:// URL.
// Commands that cannot answer in time fail closed (503), so the client stops
// at the context's deadline.
func parseRedisAddr(addr string) (*redis.Options, error) {
	var opts *redis.Options
	if strings.Contains(addr, "://") {
		var err error
		if opts, err = redis.ParseURL(addr); err != nil {
			// The URL may hold a password: do not repeat it.
			return nil, fmt.Errorf("-redis: not a valid redis:// or rediss:// URL")
		}
	} else {
		if !validHostPort(addr) {
			return nil, fmt.Errorf("-redis %q: want host:port or a redis:// URL", addr)
		}
		opts = &redis.Options{Addr: addr}
	}
	opts.ContextTimeoutEnabled = true
	return opts, nil
}

// verifyProxy forwards verified requests upstream with the caller's
// identity in headers.
type verifyProxy struct {
	proxy   *httputil.ReverseProxy
	logger  *slog.Logger
	metrics *proxyMetrics // nil without -metrics
}

// newVerifyProxy returns verify-proxy's handler: v's Middleware in front
// of a reverse proxy to upstream. publicURL, when set, gives the
// X-Forwarded-Host and -Proto. metrics may be nil.
func newVerifyProxy(v *asymjwt.Verifier, upstream *url.URL, publicURL string, transport http.RoundTripper, logger *slog.Logger, metrics *proxyMetrics) http.Handler {
	p := &verifyProxy{logger: logger, metrics: metrics}
	var public *url.URL
	if publicURL != "" {
		public, _ = url.Parse(publicURL) // checked by WithPublicURL
	}
	p.proxy = &httputil.ReverseProxy{
		// Rewrite runs after the hop-by-hop headers (those named in
		// Connection included) are removed, and the client's
		// X-Forwarded-* with them.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.SetXForwarded()
			if public != nil {
				pr.Out.Header.Set("X-Forwarded-Host", public.Host)
				pr.Out.Header.Set("X-Forwarded-Proto", public.Scheme)
			}
		},
		Transport:      transport,
		FlushInterval:  -1,
		ModifyResponse: p.upstreamAnswered,
		ErrorHandler:   p.upstreamFailed,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return v.Middleware(http.HandlerFunc(p.forward))
}

// exchangeKey is the context key of a request's *exchange.
type exchangeKey struct{}

// exchange is what verify-proxy records of one request it forwards.
type exchange struct {
	http.ResponseWriter
	start  time.Time
	status int
	fault  string // "timeout", "error" or "canceled" when upstream did not answer
}

// Unwrap lets http.ResponseController (which ReverseProxy flushes and
// hijacks through) reach the server's ResponseWriter.
func (e *exchange) Unwrap() http.ResponseWriter { return e.ResponseWriter }

func (e *exchange) WriteHeader(code int) {
	if e.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		e.status = code
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *exchange) Write(b []byte) (int, error) {
	if e.status == 0 {
		e.status = http.StatusOK
	}
	return e.ResponseWriter.Write(b)
}

// forward passes a request that verified (Middleware put its identity in
// the context) on to upstream.
func (p *verifyProxy) forward(w http.ResponseWriter, r *http.Request) {
	id, ok := asymjwt.IdentityFrom(r.Context())
	if !ok { // Middleware lets nothing else through
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	// The headers are changed in place: this handler owns the request, and
	// the server reads nothing of them once it has called the handler.
	// SetIdentityHeaders also drops the identity names from Connection, so
	// the hop-by-hop pass of ReverseProxy cannot remove the values set here.
	r.Header.Del("Authorization")
	asymjwt.StripIdentityHeaders(r.Trailer)
	if err := asymjwt.SetIdentityHeaders(r.Header, id); err != nil {
		p.logger.LogAttrs(r.Context(), slog.LevelWarn, "identity cannot be passed upstream: refused",
			slog.String("error", errText(err)), slog.String("method", r.Method), slog.String("path", r.URL.Path))
		http.Error(w, "forbidden: this username cannot be passed upstream", http.StatusForbidden)
		return
	}
	e := &exchange{ResponseWriter: w, start: time.Now()}
	p.proxy.ServeHTTP(e, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, e)))

	status := e.status
	if status == 0 && e.fault == "" {
		status = http.StatusSwitchingProtocols // hijacked: ReverseProxy wrote the 101 itself
	}
	level := slog.LevelInfo
	if e.fault != "" && e.fault != "canceled" {
		level = slog.LevelWarn
	}
	p.logger.LogAttrs(r.Context(), level, "request",
		slog.String("user", id.Username), slog.String("key", id.Key.Fingerprint),
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", status), slog.Duration("duration", time.Since(e.start)))
}

// upstreamAnswered is ReverseProxy's ModifyResponse: upstream's response
// headers are in.
func (p *verifyProxy) upstreamAnswered(resp *http.Response) error {
	if p.metrics != nil {
		if e, ok := resp.Request.Context().Value(exchangeKey{}).(*exchange); ok {
			p.metrics.upstream.Observe(time.Since(e.start).Seconds())
		}
	}
	return nil
}

// upstreamFailed is ReverseProxy's ErrorHandler: 504 when upstream did not
// answer in time, 502 when it could not be reached or broke off, and 401
// when the request's body did not match the Content-Digest its token binds.
func (p *verifyProxy) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, asymjwt.ErrBinding) {
		// The verifier has reported the refusal; upstream got the body cut
		// short, never whole. Answer as the verifier answers a refusal.
		h := w.Header()
		h.Set("WWW-Authenticate", `JWT error="binding"`)
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, "unauthorized\n")
		return
	}
	status, reason := upstreamFault(r, err)
	if e, ok := r.Context().Value(exchangeKey{}).(*exchange); ok {
		e.fault = reason
	}
	if reason != "canceled" {
		if p.metrics != nil {
			p.metrics.upstreamErrors.WithLabelValues(reason).Inc()
		}
		p.logger.LogAttrs(r.Context(), slog.LevelWarn, "upstream did not answer",
			slog.String("reason", reason), slog.String("error", err.Error()),
			slog.String("method", r.Method), slog.String("path", r.URL.Path))
	}
	writeUpstreamFault(w, status)
}
