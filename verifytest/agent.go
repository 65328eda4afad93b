package verifytest

import (
	"path/filepath"
	"testing"

	"github.com/asymjwt/asymjwt/internal/agentserver"
	"golang.org/x/crypto/ssh/agent"
)

// Agent is an in-process ssh-agent serving on a unix socket, for testing
// code that signs with keys held by an agent.
type Agent struct {
	// Socket is the path of the agent's unix socket, as SSH_AUTH_SOCK would
	// hold it.
	Socket string
	// Keyring is the keyring the agent serves; add or remove keys at any
	// time. Setting the field to another keyring has no effect.
	Keyring agent.Agent

	srv *agentserver.Server
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
	srv, err := agentserver.Serve(keyring, filepath.Join(dir, "agent.sock"))
	if err != nil {
		t.Fatalf("verifytest: NewAgent: %v", err)
	}
	a := &Agent{Socket: srv.Socket, Keyring: keyring, srv: srv}
	t.Cleanup(a.Close)
	return a
}

// Close stops the agent: it closes the socket and every connection to it,
// and waits until nothing is served. Clients see the agent go away, as when
// a real agent is killed. The test's end calls it too; calling it again
// does nothing.
func (a *Agent) Close() { a.srv.Close() }
