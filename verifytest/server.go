// Package verifytest helps test code that signs or verifies asymjwt tokens,
// in the manner of net/http/httptest: a verifying HTTP server on loopback
// with an in-memory key store and a record of every request, throw-away key
// pairs written to a test's temporary directory, an in-process ssh-agent on
// a unix socket, and a throw-away OpenSSH certificate authority ([NewCA])
// that certifies key pairs.
package verifytest

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"time"

	"github.com/asymjwt/asymjwt"
)

// Server is a verifying HTTP server on a loopback address. Requests that
// verify reach the handler (by default one that answers 200 with
// "hello <username>"); the others are refused as asymjwt's Middleware
// refuses them. Every request is recorded (see [Server.Requests]).
type Server struct {
	// URL is the base URL of the server, "http://127.0.0.1:port" (https
	// when started with [Server.StartTLS] or [WithTLS]).
	URL string

	srv      *httptest.Server
	keys     *asymjwt.MemoryKeyStore
	verifier *asymjwt.Verifier
	handler  http.Handler
	cfg      config

	mu       sync.Mutex
	requests []Request
}

// Request is the record of one request the server received.
type Request struct {
	// Method and Path are the request's.
	Method, Path string
	// Username is the verified user; empty when the request was refused.
	Username string
	// Err is why the request was refused (it wraps one of asymjwt's ErrX
	// sentinels); nil when it verified.
	Err error
	// Kind is asymjwt.ErrorKind(Err), the error the client was sent; empty
	// when the request verified.
	Kind string
	// Authorized reports whether the request verified and reached the
	// handler.
	Authorized bool
	// Body is the request body as the handler saw it; nil when refused.
	Body []byte
	// Certificate describes the OpenSSH certificate through which the key
	// was trusted; nil for a stored key or a refused request.
	Certificate *asymjwt.CertificateInfo
}

// Option configures a [Server].
type Option func(*config)

type config struct {
	handler      http.Handler
	clockOffset  time.Duration
	requireBind  bool
	tls          bool
	verifierOpts []asymjwt.VerifierOption
}

// WithHandler sets the handler that verified requests reach. The caller's
// identity is in the request's context (asymjwt.IdentityFrom). h must not
// be nil.
func WithHandler(h http.Handler) Option {
	return func(c *config) {
		if h == nil {
			panic("verifytest: WithHandler(nil)")
		}
		c.handler = h
	}
}

// WithClockOffset runs the server's clock d ahead of the real one (behind,
// when negative), to test clients with a skewed clock.
func WithClockOffset(d time.Duration) Option { return func(c *config) { c.clockOffset = d } }

// WithRequireBinding makes the server require the htm and htu claims.
func WithRequireBinding() Option { return func(c *config) { c.requireBind = true } }

// WithTLS serves HTTPS with httptest's self-signed certificate; use
// [Server.Client] or [Server.Transport] to trust it.
func WithTLS() Option { return func(c *config) { c.tls = true } }

// WithVerifierOptions passes options on to asymjwt.NewVerifier, after the
// server's own (clock, binding, error hook).
func WithVerifierOptions(opts ...asymjwt.VerifierOption) Option {
	return func(c *config) { c.verifierOpts = append(c.verifierOpts, opts...) }
}

// NewServer starts and returns a new Server. The caller should call Close
// when finished, to shut it down. It panics if the server cannot be set up.
func NewServer(opts ...Option) *Server {
	s := NewUnstartedServer(opts...)
	if s.cfg.tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	return s
}

// NewUnstartedServer returns a new Server but doesn't start it, so keys can
// be added first. After changing its configuration, the caller should call
// Start or StartTLS, and Close when finished.
func NewUnstartedServer(opts ...Option) *Server {
	s := &Server{keys: asymjwt.NewMemoryKeyStore()}
	for _, opt := range opts {
		opt(&s.cfg)
	}
	s.handler = s.cfg.handler
	if s.handler == nil {
		s.handler = http.HandlerFunc(hello)
	}
	s.srv = httptest.NewUnstartedServer(nil)
	vopts := []asymjwt.VerifierOption{
		// Tokens must be bound to this server's own address, not to
		// whatever Host a request claims.
		asymjwt.WithHosts(s.srv.Listener.Addr().String()),
		// The verifier's own nonce store follows this clock too.
		asymjwt.WithClock(s.now),
		asymjwt.WithErrorHook(s.recordRefusal),
	}
	if s.cfg.requireBind {
		vopts = append(vopts, asymjwt.WithRequireBinding())
	}
	v, err := asymjwt.NewVerifier(s.keys, append(vopts, s.cfg.verifierOpts...)...)
	if err != nil {
		panic("verifytest: " + err.Error())
	}
	s.verifier = v
	s.srv.Config.Handler = v.Middleware(http.HandlerFunc(s.serveVerified))
	return s
}

func hello(w http.ResponseWriter, r *http.Request) {
	id, _ := asymjwt.IdentityFrom(r.Context())
	fmt.Fprintf(w, "hello %s\n", id.Username)
}

// Start starts a server from NewUnstartedServer.
func (s *Server) Start() {
	s.srv.Start()
	s.URL = s.srv.URL
}

// StartTLS starts TLS on a server from NewUnstartedServer.
func (s *Server) StartTLS() {
	s.srv.StartTLS()
	s.URL = s.srv.URL
}

// Close shuts down the server and blocks until all outstanding requests on
// it have completed.
func (s *Server) Close() { s.srv.Close() }

// Client returns an HTTP client that trusts the server's certificate and
// signs nothing.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Transport returns the server's http.RoundTripper (trusting its
// certificate under TLS), to use as asymjwt.Transport's Base.
func (s *Server) Transport() http.RoundTripper { return s.srv.Client().Transport }

// SignedClient returns an HTTP client that signs its requests with signer
// and trusts the server's certificate.
func (s *Server) SignedClient(signer *asymjwt.Signer) *http.Client {
	return &http.Client{Transport: &asymjwt.Transport{Signer: signer, Base: s.Transport()}}
}

// Verifier returns the server's verifier.
func (s *Server) Verifier() *asymjwt.Verifier { return s.verifier }

// AddKey lets username sign with the private key of pub. It panics on a key
// the verifier would refuse (RSA under 2048 bits, other curves).
func (s *Server) AddKey(username string, pub crypto.PublicKey) {
	if err := s.keys.Add(username, pub); err != nil {
		panic("verifytest: AddKey: " + err.Error())
	}
}

// AddKeyFile adds the keys in a public key file (authorized_keys lines
// and/or PEM blocks) for username, and trusts the CAs of its cert-authority
// lines for username, as a DirKeyStore would. It panics if the file cannot
// be read or holds neither a usable key nor a CA.
func (s *Server) AddKeyFile(username, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		panic("verifytest: AddKeyFile: " + err.Error())
	}
	ak, skipped := asymjwt.ParseAuthorizedKeys(data)
	if len(ak.Keys) == 0 && len(ak.Authorities) == 0 {
		panic(fmt.Sprintf("verifytest: AddKeyFile: no usable key in %s (%v)", path, skipped))
	}
	if len(ak.Keys) > 0 {
		if err := s.keys.AddPublicKeys(username, ak.Keys...); err != nil {
			panic("verifytest: AddKeyFile: " + err.Error())
		}
	}
	for _, ca := range ak.Authorities {
		s.AddCertAuthority(username, ca)
	}
}

// AddCertAuthority trusts ca to certify username's keys, as a
// cert-authority line in the user's authorized_keys does (principals=
// being ca.Principals). To trust a CA for every user, start the server
// WithVerifierOptions(asymjwt.WithTrustedCAs(ca)). It panics on a CA key
// the verifier would refuse.
func (s *Server) AddCertAuthority(username string, ca asymjwt.CertAuthority) {
	cas, _ := s.keys.CertAuthorities(context.Background(), username)
	if err := s.keys.SetCertAuthorities(username, append(cas, ca)); err != nil {
		panic("verifytest: AddCertAuthority: " + err.Error())
	}
}

// Requests returns the record of the requests received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Reset forgets the recorded requests.
func (s *Server) Reset() {
	s.mu.Lock()
	s.requests = nil
	s.mu.Unlock()
}

func (s *Server) now() time.Time { return time.Now().Add(s.cfg.clockOffset) }

func (s *Server) recordRefusal(r *http.Request, err error) {
	s.record(Request{Method: r.Method, Path: r.URL.Path, Err: err, Kind: asymjwt.ErrorKind(err)})
}

func (s *Server) serveVerified(w http.ResponseWriter, r *http.Request) {
	id, _ := asymjwt.IdentityFrom(r.Context())
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.record(Request{Method: r.Method, Path: r.URL.Path, Username: id.Username, Authorized: true, Body: body, Certificate: id.Certificate})
	s.handler.ServeHTTP(w, r)
}

func (s *Server) record(r Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r)
	s.mu.Unlock()
}
