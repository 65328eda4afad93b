package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// What verify-proxy and sign-proxy share: the flags that place them
// between a listener and an upstream, the transport to upstream, the
// answers to upstream faults, the logger, and serving until a signal.

// proxyFlags are the flags both proxies take.
type proxyFlags struct {
	listen          string
	upstream        string
	upstreamTimeout time.Duration
	grace           time.Duration
	logFormat       string

	upstreamURL *url.URL // parsed by check
}

func addProxyFlags(fs *flag.FlagSet) *proxyFlags {
	f := &proxyFlags{}
	fs.StringVar(&f.listen, "listen", "", "listen on `ADDR`, host:port; port 0 picks a free one (required)")
	fs.StringVar(&f.upstream, "upstream", "", "forward requests to `URL`, http:// or https://, with an optional path prefix (required)")
	fs.DurationVar(&f.upstreamTimeout, "upstream-timeout", 60*time.Second, "wait at most `DURATION` for upstream's response headers, then answer 504")
	fs.DurationVar(&f.grace, "grace", 30*time.Second, "on SIGTERM or SIGINT, give requests in flight at most `DURATION` to finish")
	fs.StringVar(&f.logFormat, "log-format", "text", "log as `text` or json (log/slog) to standard error")
	return f
}

// check validates the flags; it returns a usage error's message.
func (f *proxyFlags) check() error {
	switch {
	case f.listen == "":
		return errors.New("-listen ADDR is required")
	case f.upstream == "":
		return errors.New("-upstream URL is required")
	case f.upstreamTimeout <= 0:
		return fmt.Errorf("-upstream-timeout %v: must be positive", f.upstreamTimeout)
	case f.grace < 0:
		return fmt.Errorf("-grace %v: must not be negative", f.grace)
	case f.logFormat != "text" && f.logFormat != "json":
		return fmt.Errorf("-log-format %q: want text or json", f.logFormat)
	}
	if _, _, err := net.SplitHostPort(f.listen); err != nil {
		return fmt.Errorf("-listen %q: want host:port (such as 127.0.0.1:8080, or :0 for any free port)", f.listen)
	}
	u, err := url.Parse(f.upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("-upstream %q: want an absolute http or https URL without user, query or fragment", f.upstream)
	}
	f.upstreamURL = u
	return nil
}

// newLogger returns the structured logger of a proxy, on stderr.
func newLogger(format string, stderr io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(stderr, opts))
	}
	return slog.New(slog.NewTextHandler(stderr, opts))
}

// newUpstreamTransport returns the transport to upstream: pooled
// connections, no proxy from the environment, and responseTimeout for the
// response headers (504 after it).
func newUpstreamTransport(responseTimeout time.Duration) *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: responseTimeout,
	}
}

// upstreamFault classifies an error of the round trip to upstream: the
// status to answer (504 for a timeout, 502 otherwise) and the reason for
// logs and metrics, "timeout" or "error". A request whose client went away
// is "canceled": nobody reads the answer and upstream is not at fault.
func upstreamFault(r *http.Request, err error) (status int, reason string) {
	if r.Context().Err() != nil {
		return http.StatusBadGateway, "canceled"
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return http.StatusGatewayTimeout, "timeout"
	}
	return http.StatusBadGateway, "error"
}

// writeUpstreamFault answers a request that upstream did not answer.
func writeUpstreamFault(w http.ResponseWriter, status int) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if status == http.StatusGatewayTimeout {
		io.WriteString(w, "upstream timed out\n")
	} else {
		io.WriteString(w, "upstream unavailable\n")
	}
}

// newServer returns an http.Server for a proxy: a bound on reading headers
// (slow clients), none on bodies or answers, which stream.
func newServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// inFlight counts the requests being served, upgraded (hijacked)
// connections included, which http.Server.Shutdown does not wait for.
type inFlight struct{ wg sync.WaitGroup }

func (f *inFlight) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.wg.Add(1)
		defer f.wg.Done()
		h.ServeHTTP(w, r)
	})
}

// wait waits for the requests in flight until ctx is done, and reports
// whether they all finished.
func (f *inFlight) wait(ctx context.Context) bool {
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// listen listens on addr; a failure is an input error of the command.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	return ln, nil
}

// notifyStop returns a context done at the first SIGTERM or SIGINT. Call
// it before printing the listening line, so that a signal sent as soon as
// the line is read is not fatal; call stop to let the next one be.
func notifyStop() (ctx context.Context, stop context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
}

// serve serves srv on ln (and side servers, such as metrics, on theirs)
// until ctx is done (see notifyStop), then shuts down: it stops accepting
// at once, lets the requests in flight (flight) finish within grace, and
// closes what is left. It returns the exit code: 0 after a signal, 1 if
// serving failed. It calls stop once ctx is done, so that a second signal
// during the grace ends the process at once.
func serve(ctx context.Context, stop context.CancelFunc, srv *http.Server, ln net.Listener, flight *inFlight, side map[*http.Server]net.Listener, grace time.Duration, logger *slog.Logger, onDrain func()) int {
	defer stop()
	errc := make(chan error, 1+len(side))
	go func() { errc <- srv.Serve(ln) }()
	for s, l := range side {
		go func() { errc <- s.Serve(l) }()
	}
	code := exitOK
	select {
	case <-ctx.Done():
		logger.Info("shutting down: no new connections; waiting for requests in flight", "grace", grace.String())
	case err := <-errc:
		logger.Error("serving failed", "error", err.Error())
		code = exitInvalid
	}
	stop()

	if onDrain != nil {
		onDrain()
	}
	graceCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(graceCtx)
	if err == nil && !flight.wait(graceCtx) {
		err = graceCtx.Err()
	}
	if err != nil {
		logger.Warn("grace period over: closing the connections still open", "error", err.Error())
		srv.Close()
	}
	for s := range side {
		s.Close()
	}
	logger.Info("stopped")
	return code
}
