package agentserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// socketPath returns a path for a unix socket in a new directory with a
// short name, since t.TempDir() can exceed the 108-byte limit of sun_path.
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "as")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s")
}

func newKey(t *testing.T, kind string) crypto.Signer {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch kind {
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "ecdsa":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// serve starts a Server holding keys and closes it when the test ends.
func serve(t *testing.T, keys ...crypto.Signer) (*Server, agent.Agent) {
	t.Helper()
	keyring := agent.NewKeyring()
	for _, k := range keys {
		if err := keyring.Add(agent.AddedKey{PrivateKey: k}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Serve(keyring, socketPath(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, keyring
}

func dial(t *testing.T, s *Server) (agent.ExtendedAgent, net.Conn) {
	t.Helper()
	conn, err := net.Dial("unix", s.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return agent.NewClient(conn), conn
}

func TestServeSigns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		kinds []string
	}{
		{"empty keyring", nil},
		{"one key", []string{"ed25519"}},
		{"two keys", []string{"ed25519", "ecdsa"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var keys []crypto.Signer
			for _, k := range tt.kinds {
				keys = append(keys, newKey(t, k))
			}
			s, _ := serve(t, keys...)
			client, _ := dial(t, s)
			listed, err := client.List()
			if err != nil {
				t.Fatal(err)
			}
			if len(listed) != len(keys) {
				t.Fatalf("List: %d keys, want %d", len(listed), len(keys))
			}
			for _, k := range listed {
				sig, err := client.Sign(k, []byte("data"))
				if err != nil {
					t.Fatalf("Sign with %s: %v", k.Type(), err)
				}
				if err := k.Verify([]byte("data"), sig); err != nil {
					t.Fatalf("signature by %s: %v", k.Type(), err)
				}
			}
		})
	}
}

func TestServeSeesKeyringChanges(t *testing.T) {
	t.Parallel()
	s, keyring := serve(t)
	client, _ := dial(t, s)
	k := newKey(t, "ed25519")
	if err := keyring.Add(agent.AddedKey{PrivateKey: k}); err != nil {
		t.Fatal(err)
	}
	listed, err := client.List()
	if err != nil || len(listed) != 1 {
		t.Fatalf("List after Add: %d keys, %v", len(listed), err)
	}
	pub, err := ssh.NewPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := keyring.Remove(pub); err != nil {
		t.Fatal(err)
	}
	if listed, err := client.List(); err != nil || len(listed) != 0 {
		t.Fatalf("List after Remove: %d keys, %v", len(listed), err)
	}
}

func TestServeErrors(t *testing.T) {
	t.Parallel()
	inUse, _ := serve(t)
	tests := []struct {
		name   string
		socket string
	}{
		{"no such directory", filepath.Join(t.TempDir(), "missing", "s")},
		{"socket in use", inUse.Socket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Serve(agent.NewKeyring(), tt.socket)
			if err == nil {
				s.Close()
				t.Fatalf("Serve(%s) succeeded", tt.socket)
			}
		})
	}
}

func TestCloseEndsConnections(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		open, hungUp int
	}{
		{"no connections", 0, 0},
		{"one connection", 1, 0},
		{"several connections", 4, 0},
		{"some clients hung up", 3, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := serve(t, newKey(t, "ed25519"))
			var clients []agent.ExtendedAgent
			for range tt.open {
				c, _ := dial(t, s)
				clients = append(clients, c)
			}
			for range tt.hungUp {
				c, conn := dial(t, s)
				if _, err := c.List(); err != nil {
					t.Fatal(err)
				}
				conn.Close()
			}
			for _, c := range clients {
				if keys, err := c.List(); err != nil || len(keys) != 1 {
					t.Fatalf("List: %d keys, %v", len(keys), err)
				}
			}

			s.Close() // returns: it does not wait for the clients to hang up
			for i, c := range clients {
				if _, err := c.List(); err == nil {
					t.Fatalf("connection %d outlived Close", i)
				}
			}
			if _, err := net.Dial("unix", s.Socket); err == nil {
				t.Fatal("the agent still accepts after Close")
			}
			if _, err := os.Lstat(s.Socket); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("socket file left behind: %v", err)
			}
			s.mu.Lock()
			left := len(s.conns)
			s.mu.Unlock()
			if left != 0 {
				t.Fatalf("%d connections still tracked after Close", left)
			}
			s.Close() // a second Close is harmless
		})
	}
}

// TestCloseWhileClientsConnect closes the server while clients keep
// dialling; Close must return, and no connection may outlive it.
func TestCloseWhileClientsConnect(t *testing.T) {
	t.Parallel()
	s, _ := serve(t, newKey(t, "ed25519"))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				conn, err := net.Dial("unix", s.Socket)
				if err != nil {
					return // the server is gone
				}
				// Whatever the timing, the server ends this connection at
				// Close, so List returns; it may fail.
				_, _ = agent.NewClient(conn).List()
				conn.Close()
			}
		})
	}
	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return")
	}
	wg.Wait()
}
