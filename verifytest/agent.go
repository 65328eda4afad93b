package verifytest

import (
	"errors"
	"net"
	"path/filepath"
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

	ln net.Listener
}

// NewAgent starts an in-process agent holding keys, on a socket in
// t.TempDir(). It stops when the test ends. It does not set SSH_AUTH_SOCK:
// pass Socket to the code under test (or t.Setenv it yourself).
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
	a := &Agent{Socket: filepath.Join(dir, "agent.sock"), Keyring: keyring}
	if a.ln, err = net.Listen("unix", a.Socket); err != nil {
		t.Fatalf("verifytest: NewAgent: %v", err)
	}
	go a.serve()
	t.Cleanup(a.Close)
	return a
}

func (a *Agent) serve() {
	for {
		c, err := a.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		go func() {
			defer c.Close()
			_ = agent.ServeAgent(a.Keyring, c)
		}()
	}
}

// Close stops the agent from accepting connections. Connections already
// open are served until their clients close them.
func (a *Agent) Close() {
	a.ln.Close()
}
