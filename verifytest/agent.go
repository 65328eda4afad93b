package verifytest

import (
	"net"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh/agent"
)

// Agent is an in-process ssh-agent serving on a unix socket, for testing
// code that signs with keys held by an agent.
type Agent struct {
	// Socket is the path of the agent's unix socket, as SSH_AUTH_SOCK would
	// hold it.
	Socket string
	// Keyring is the agent's keyring; add or remove keys at any time.
	Keyring agent.Agent

	ln        net.Listener
	wg        sync.WaitGroup
	mu        sync.Mutex
	conns     []net.Conn
	closeOnce sync.Once
}

// NewAgent starts an in-process agent holding keys, on a socket in a new
// temporary directory. It stops when the test ends. It does not set
// SSH_AUTH_SOCK: pass Socket to the code under test (or t.Setenv it).
func NewAgent(t testing.TB, keys ...*KeyPair) *Agent {
	t.Helper()
	keyring := agent.NewKeyring()
	for _, kp := range keys {
		if err := keyring.Add(agent.AddedKey{PrivateKey: kp.Private, Comment: kp.Comment}); err != nil {
			t.Fatalf("verifytest: NewAgent: %v", err)
		}
	}
	// Unix socket paths are short (108 bytes); t.TempDir() can be long.
	dir, err := shortTempDir(t)
	if err != nil {
		t.Fatalf("verifytest: NewAgent: %v", err)
	}
	a, err := ServeAgent(keyring, filepath.Join(dir, "agent.sock"))
	if err != nil {
		t.Fatalf("verifytest: NewAgent: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

// ServeAgent serves keyring as an ssh-agent on a new unix socket at socket,
// for programs that have no testing.TB (a demo, an example). The caller must
// call Close.
func ServeAgent(keyring agent.Agent, socket string) (*Agent, error) {
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return nil, err
	}
	a := &Agent{Socket: socket, Keyring: keyring, ln: ln}
	a.wg.Go(a.serve)
	return a, nil
}

func (a *Agent) serve() {
	for {
		c, err := a.ln.Accept()
		if err != nil {
			return // closed by Close
		}
		a.mu.Lock()
		a.conns = append(a.conns, c)
		a.mu.Unlock()
		a.wg.Go(func() { _ = agent.ServeAgent(a.Keyring, c) })
	}
}

// Close stops the agent: it closes the socket and every connection to it,
// and waits until nothing is served. Clients see the agent go away, as when
// a real agent is killed.
func (a *Agent) Close() {
	a.closeOnce.Do(func() {
		a.ln.Close()
		a.mu.Lock()
		for _, c := range a.conns {
			c.Close()
		}
		a.mu.Unlock()
		a.wg.Wait()
	})
}
