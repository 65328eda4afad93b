package asymjwt

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asymjwt/asymjwt/internal/sigconv"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Agent is a connection to an ssh-agent, whose keys sign tokens without ever
// leaving the agent. Get one with [DialAgent] (a socket, or SSH_AUTH_SOCK) or
// [NewAgent] (an agent.ExtendedAgent of the caller's), then pick a key with
// [Agent.Key] or [Agent.KeyForPublicKey].
//
// An Agent is safe for concurrent use by multiple goroutines. Every agent
// call is bounded by the caller's context: x/crypto's agent calls take no
// context, so when the context is done first the call returns the context's
// error and, on a dialled socket, the connection is dropped (its state is
// unknown) and the next call dials again.
type Agent struct {
	socket string              // path dialled by DialAgent; "" for NewAgent
	given  agent.ExtendedAgent // the agent given to NewAgent; nil for DialAgent

	closed atomic.Bool

	mu   sync.Mutex
	conn *agentConn      // current connection (DialAgent only); nil when none
	keys []agentKeyEntry // cached usable keys, in the agent's order
	have bool            // keys holds a listing
}

// agentConn is a connection dialled by DialAgent, with the x/crypto client
// that speaks over it. broken records that a read or write on it failed, so
// an error can be told apart from a refusal by the agent.
type agentConn struct {
	net.Conn
	client agent.ExtendedAgent
	broken atomic.Bool
}

func (c *agentConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.broken.Store(true)
	}
	return n, err
}

func (c *agentConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		c.broken.Store(true)
	}
	return n, err
}

// DialAgent connects to the ssh-agent listening on the unix socket at path
// socket. An empty socket means the one named by the SSH_AUTH_SOCK
// environment variable, read here and only here; when it is unset the error
// wraps [ErrNoAgent].
//
// The Agent owns the connection and reuses it for every request; [Agent.Close]
// closes it. If the connection breaks or the agent restarts, the Agent dials
// the same socket again once and retries the request; if that fails too the
// error is an [*AgentError] wrapping [ErrAgentUnavailable]. Requests from
// several goroutines share the connection (x/crypto's client pipelines them
// and is safe for concurrent use).
func DialAgent(socket string) (*Agent, error) {
	if socket == "" {
		socket = os.Getenv("SSH_AUTH_SOCK")
		if socket == "" {
			return nil, &AgentError{Op: "dial", Err: fmt.Errorf("%w: SSH_AUTH_SOCK is not set", ErrNoAgent)}
		}
	}
	a := &Agent{socket: socket}
	if _, err := a.connect(context.Background()); err != nil {
		return nil, a.error("dial", err)
	}
	return a, nil
}

// NewAgent returns an Agent that uses a, for example agent.NewKeyring() or
// agent.NewClient over a connection of the caller's. The caller keeps
// ownership: [Agent.Close] does not close a or its connection, and the caller
// closes them once done with the Agent. a must not be nil and must be safe
// for concurrent use, as agent.NewKeyring's and agent.NewClient's agents are.
//
// Nothing is redialled or retried: an error from a is returned as an
// [*AgentError] wrapping [ErrAgentRefused]. When a request's context is done
// before a answers, the request returns the context's error while the call
// to a finishes in the background.
func NewAgent(a agent.ExtendedAgent) *Agent {
	return &Agent{given: a}
}

// Close closes the connection of an Agent made by [DialAgent]; requests after
// Close fail with [ErrAgentUnavailable]. For an Agent made by [NewAgent] it
// only marks the Agent closed. Keys obtained from the Agent stop working.
func (a *Agent) Close() error {
	a.closed.Store(true)
	a.mu.Lock()
	c := a.conn
	a.conn = nil
	a.mu.Unlock()
	if c != nil {
		return c.Close()
	}
	return nil
}

// AgentKeyInfo describes a key held by an ssh-agent. It carries no key
// material.
type AgentKeyInfo struct {
	// Fingerprint is the SHA-256 fingerprint of the public key, as
	// ssh-keygen -l prints it ("SHA256:...") and as tokens carry it in "kid".
	Fingerprint string
	// Comment is the comment the key was added with, often a file name or
	// user@host; it may be empty.
	Comment string
	// Type is the SSH key type, such as "ssh-ed25519", "ecdsa-sha2-nistp256"
	// or "ssh-rsa"; certificates and keys this package cannot sign with are
	// listed too.
	Type string
}

// Keys lists the keys the agent holds, asking the agent afresh, in the order
// the agent gives them. It also refreshes the Agent's cached list.
func (a *Agent) Keys(ctx context.Context) ([]AgentKeyInfo, error) {
	all, err := a.refresh(ctx)
	if err != nil {
		return nil, err
	}
	infos := make([]AgentKeyInfo, len(all))
	for i, k := range all {
		infos[i] = AgentKeyInfo{Fingerprint: ssh.FingerprintSHA256(k), Comment: k.Comment, Type: k.Format}
	}
	return infos, nil
}

// Key returns the agent's key that selector names: its SHA-256 fingerprint
// ("SHA256:..." as ssh-keygen -l prints it) or its comment. An empty selector
// chooses the agent's only key. Only keys this package can sign with
// (Ed25519, ECDSA P-256/P-384/P-521, RSA of 2048 bits or more) are
// considered.
//
// An agent lists a certificate added with its key (ssh-add of a key with a
// -cert.pub beside it) as an entry of its own; such entries are paired with
// their key by its public half, and count as the same key. The key returned
// carries the user certificate (see [CertifiedKey]): one valid now when the
// agent holds several, else the first listed. A key held only as a
// certificate is signed with through the certificate's entry.
//
// When no key matches the error wraps [ErrAgentKeyNotFound], when several
// match (or selector is empty and the agent holds several keys) it wraps
// [ErrAgentKeyAmbiguous]; both are [*AgentKeyChoiceError] values listing the
// fingerprints and comments on offer.
//
// The key list is cached; it is asked for again when the cached one has no
// single match.
func (a *Agent) Key(ctx context.Context, selector string) (Key, error) {
	return a.choose(ctx, selector, func(e *agentKeyEntry) bool {
		return selector == "" || e.fingerprint == selector || e.key.Comment == selector
	})
}

// KeyForPublicKey returns the agent's key whose public half is pub: an
// *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey, or an ssh.PublicKey
// such as ssh.ParseAuthorizedKey returns for a ".pub" file (for a
// certificate, the key it certifies). When the agent
// does not hold it the error wraps [ErrAgentKeyNotFound] and is an
// [*AgentKeyChoiceError].
func (a *Agent) KeyForPublicKey(ctx context.Context, pub crypto.PublicKey) (Key, error) {
	var want string
	if cert, ok := pub.(*ssh.Certificate); ok {
		pub = cert.Key
	}
	if sshPub, ok := pub.(ssh.PublicKey); ok {
		want = ssh.FingerprintSHA256(sshPub)
	} else {
		fp, err := Fingerprint(pub)
		if err != nil {
			return nil, err
		}
		want = fp
	}
	return a.choose(ctx, want, func(e *agentKeyEntry) bool { return e.fingerprint == want })
}

// agentKeyEntry is a usable key from the agent's list, with the user
// certificates the agent holds for it.
type agentKeyEntry struct {
	key         *agent.Key // the plain key's entry, or a certificate's
	pub         crypto.PublicKey
	fingerprint string
	certs       []*ssh.Certificate
	plain       bool // key is the plain key's own entry
}

// choose picks the one usable key that match accepts, from the cached list
// first and, failing that, from a fresh one.
func (a *Agent) choose(ctx context.Context, selector string, match func(*agentKeyEntry) bool) (Key, error) {
	a.mu.Lock()
	keys, have := a.keys, a.have
	a.mu.Unlock()
	if have {
		if found := matching(keys, match); len(found) == 1 {
			return a.newKey(found[0]), nil
		}
	}
	if _, err := a.refresh(ctx); err != nil {
		return nil, err
	}
	a.mu.Lock()
	keys = a.keys
	a.mu.Unlock()
	found := matching(keys, match)
	switch {
	case len(found) == 1:
		return a.newKey(found[0]), nil
	case len(found) == 0:
		return nil, &AgentKeyChoiceError{Selector: selector, Choices: keyInfos(keys), Err: ErrAgentKeyNotFound}
	default:
		return nil, &AgentKeyChoiceError{Selector: selector, Choices: keyInfos(found), Err: ErrAgentKeyAmbiguous}
	}
}

func matching(keys []agentKeyEntry, match func(*agentKeyEntry) bool) []agentKeyEntry {
	var found []agentKeyEntry
	for i := range keys {
		if match(&keys[i]) {
			found = append(found, keys[i])
		}
	}
	return found
}

func keyInfos(keys []agentKeyEntry) []AgentKeyInfo {
	infos := make([]AgentKeyInfo, len(keys))
	for i, e := range keys {
		infos[i] = AgentKeyInfo{Fingerprint: e.fingerprint, Comment: e.key.Comment, Type: e.key.Format}
	}
	return infos
}

// refresh asks the agent for its keys and caches them.
func (a *Agent) refresh(ctx context.Context) ([]*agent.Key, error) {
	all, err := agentCall(ctx, a, "list", func(ag agent.ExtendedAgent) ([]*agent.Key, error) {
		return ag.List()
	})
	if err != nil {
		return nil, err
	}
	var usable []agentKeyEntry
	index := make(map[string]int) // fingerprint -> usable[i]
	for _, k := range all {
		e, ok := usableAgentKey(k)
		if !ok {
			continue
		}
		i, seen := index[e.fingerprint]
		if !seen {
			index[e.fingerprint] = len(usable)
			usable = append(usable, e)
			continue
		}
		// A key and its certificates are one key; sign through the plain
		// key's entry when there is one.
		if e.plain && !usable[i].plain {
			usable[i].key, usable[i].plain = e.key, true
		}
		usable[i].certs = append(usable[i].certs, e.certs...)
	}
	a.mu.Lock()
	a.keys, a.have = usable, true
	a.mu.Unlock()
	return all, nil
}

// usableAgentKey parses a listed key or certificate and reports whether its
// key is one this package signs with.
func usableAgentKey(k *agent.Key) (agentKeyEntry, bool) {
	plain := true
	switch k.Format {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSA:
	case ssh.CertAlgoED25519v01, ssh.CertAlgoECDSA256v01, ssh.CertAlgoECDSA384v01, ssh.CertAlgoECDSA521v01, ssh.CertAlgoRSAv01:
		plain = false
	default:
		return agentKeyEntry{}, false
	}
	sshPub, err := ssh.ParsePublicKey(k.Blob)
	if err != nil || sshPub.Type() != k.Format {
		return agentKeyEntry{}, false
	}
	var certs []*ssh.Certificate
	if cert, ok := sshPub.(*ssh.Certificate); ok {
		sshPub = cert.Key
		if cert.CertType == ssh.UserCert {
			certs = []*ssh.Certificate{cert}
		}
	}
	cpk, ok := sshPub.(ssh.CryptoPublicKey)
	if !ok {
		return agentKeyEntry{}, false
	}
	pub := cpk.CryptoPublicKey()
	if checkPublicKey(pub) != nil {
		return agentKeyEntry{}, false
	}
	return agentKeyEntry{key: k, pub: pub, fingerprint: ssh.FingerprintSHA256(sshPub), certs: certs, plain: plain}, true
}

func (a *Agent) newKey(e agentKeyEntry) *agentKey {
	return &agentKey{agent: a, key: e.key, pub: e.pub, cert: chooseCertificate(e.certs, time.Now())}
}

// chooseCertificate picks, among a key's user certificates, the first valid
// at now, else the first.
func chooseCertificate(certs []*ssh.Certificate, now time.Time) *ssh.Certificate {
	t := uint64(max(now.Unix(), 0))
	for _, c := range certs {
		if c.ValidAfter <= t && (c.ValidBefore == ssh.CertTimeInfinity || t < c.ValidBefore) {
			return c
		}
	}
	if len(certs) > 0 {
		return certs[0]
	}
	return nil
}

// agentKey is a Key held by an ssh-agent.
type agentKey struct {
	agent *Agent
	key   *agent.Key // as listed: the key's entry, or its certificate's
	pub   crypto.PublicKey
	cert  *ssh.Certificate // the user certificate sent with tokens; nil for none
}

func (k *agentKey) Public() crypto.PublicKey { return k.pub }

// canSign tells NewSigner, before any token is made, which algorithms the
// agent can sign with: the table names the format the agent answers in.
func (k *agentKey) canSign(spec *algSpec) bool {
	return spec.agentFormat != "" && spec.fits(k.pub)
}

// SignJWS asks the agent to sign. Agents sign RSA only with PKCS #1 v1.5 and
// SHA-256 or SHA-512, so RSA keys support RS256 and RS512 only.
func (k *agentKey) SignJWS(ctx context.Context, alg Algorithm, signingInput []byte) ([]byte, error) {
	spec := alg.spec()
	if spec == nil || !k.canSign(spec) {
		return nil, fmt.Errorf("%w: %s with an ssh-agent key (RSA: RS256 and RS512 only)", ErrUnsupportedAlgorithm, truncate(string(alg)))
	}
	sig, err := agentCall(ctx, k.agent, "sign", func(ag agent.ExtendedAgent) (*ssh.Signature, error) {
		return ag.SignWithFlags(k.key, signingInput, spec.agentFlags)
	})
	if err != nil {
		return nil, err
	}
	out, err := agentSignatureToJWS(sig, spec, k.pub)
	if err != nil {
		return nil, k.agent.error("sign", err)
	}
	return out, nil
}

// agentSignatureToJWS checks that the agent signed in the format asked for
// and converts the signature to its JWS form.
func agentSignatureToJWS(sig *ssh.Signature, spec *algSpec, pub crypto.PublicKey) ([]byte, error) {
	format := spec.agentFormat
	if sig.Format != format {
		return nil, fmt.Errorf("%w: format %q, asked for %q", ErrAgentSignature, sig.Format, format)
	}
	if len(sig.Rest) != 0 {
		return nil, fmt.Errorf("%w: unexpected data after %s signature", ErrAgentSignature, format)
	}
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		out, err := sigconv.SSHToJWS(sig.Blob, spec.size)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrAgentSignature, err)
		}
		return out, nil
	case ed25519.PublicKey:
		if len(sig.Blob) != ed25519.SignatureSize {
			return nil, fmt.Errorf("%w: Ed25519 signature of %d bytes", ErrAgentSignature, len(sig.Blob))
		}
		return sig.Blob, nil
	case *rsa.PublicKey:
		// RFC 7518 §3.3 and crypto/rsa want exactly the modulus size; an agent
		// may strip leading zero bytes.
		n := rsaModulusBytes(pub)
		if len(sig.Blob) == 0 || len(sig.Blob) > n {
			return nil, fmt.Errorf("%w: RSA signature of %d bytes for a %d-byte modulus", ErrAgentSignature, len(sig.Blob), n)
		}
		if len(sig.Blob) == n {
			return sig.Blob, nil
		}
		out := make([]byte, n)
		copy(out[n-len(sig.Blob):], sig.Blob)
		return out, nil
	}
	return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
}

// agentCall runs fn against the agent, bounded by ctx. On a dialled socket a
// broken connection is redialled once and fn retried.
func agentCall[T any](ctx context.Context, a *Agent, op string, fn func(agent.ExtendedAgent) (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, a.error(op, err)
	}
	if a.closed.Load() {
		return zero, a.error(op, errAgentClosed)
	}
	if a.given != nil {
		v, err := callGiven(ctx, a.given, fn)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return zero, a.error(op, ctxErr)
			}
			return zero, a.refused(op, err)
		}
		return v, nil
	}
	for retried := false; ; retried = true {
		c, err := a.connect(ctx)
		if err != nil {
			return zero, a.error(op, err)
		}
		v, err := callConn(ctx, a, c, fn)
		if err == nil {
			return v, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return zero, a.error(op, ctxErr)
		}
		if !c.broken.Load() {
			// The agent answered, with a failure: the key is gone, the
			// agent is locked, a confirmation was refused. Asking again
			// would only prompt the user again.
			return zero, a.refused(op, err)
		}
		a.drop(c)
		if retried {
			return zero, a.error(op, fmt.Errorf("%w: %w", ErrAgentUnavailable, err))
		}
	}
}

// callConn calls fn over c. Instead of a goroutine per call, a done context
// closes the connection, which makes the x/crypto client return at once.
func callConn[T any](ctx context.Context, a *Agent, c *agentConn, fn func(agent.ExtendedAgent) (T, error)) (T, error) {
	if ctx.Done() == nil {
		return fn(c.client)
	}
	stop := context.AfterFunc(ctx, func() { a.drop(c) })
	defer stop()
	return fn(c.client)
}

// callGiven calls fn on a caller's agent, which cannot be interrupted: when
// ctx is done first, the call is left to finish in its goroutine.
func callGiven[T any](ctx context.Context, ag agent.ExtendedAgent, fn func(agent.ExtendedAgent) (T, error)) (T, error) {
	if ctx.Done() == nil {
		return fn(ag)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn(ag)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

var errAgentClosed = fmt.Errorf("%w: %w", ErrAgentUnavailable, net.ErrClosed)

// connect returns the current connection, dialling the socket when there is
// none or the current one is known to be broken.
func (a *Agent) connect(ctx context.Context) (*agentConn, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed.Load() {
		return nil, errAgentClosed
	}
	if a.conn != nil {
		if !a.conn.broken.Load() {
			return a.conn, nil
		}
		a.conn.Close()
		a.conn = nil
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", a.socket)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAgentUnavailable, err)
	}
	c := &agentConn{Conn: nc}
	c.client = agent.NewClient(c)
	a.conn = c
	return c, nil
}

// drop closes c, whose state is unknown or broken, so the next call dials
// again.
func (a *Agent) drop(c *agentConn) {
	c.broken.Store(true)
	a.mu.Lock()
	if a.conn == c {
		a.conn = nil
	}
	a.mu.Unlock()
	c.Close()
}

// refused reports a failure answered by the agent. The cached key list may
// be out of date (the key removed), so it is asked for again next time.
func (a *Agent) refused(op string, err error) error {
	a.mu.Lock()
	a.have = false
	a.mu.Unlock()
	return a.error(op, fmt.Errorf("%w: %w", ErrAgentRefused, err))
}

func (a *Agent) error(op string, err error) error {
	return &AgentError{Socket: a.socket, Op: op, Err: err}
}

var (
	_ Key   = (*agentKey)(nil)
	_ error = (*AgentError)(nil)
	_ error = (*AgentKeyChoiceError)(nil)
)
