// Package agentserver serves an in-process keyring as an ssh-agent on a
// unix socket. verifytest.NewAgent uses it for tests and the asymjwt demo
// uses it to show signing through an agent; neither needs the testing
// package for it.
package agentserver

import (
	"net"
	"sync"

	"golang.org/x/crypto/ssh/agent"
)

// Server is an ssh-agent serving a keyring on a unix socket. Its methods
// are safe for concurrent use by multiple goroutines.
type Server struct {
	// Socket is the path of the agent's unix socket, as SSH_AUTH_SOCK would
	// hold it.
	Socket string

	keyring agent.Agent
	ln      net.Listener
	wg      sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool

	closeOnce sync.Once
}

// Serve listens on a new unix socket at socket and serves keyring on every
// connection to it, until Close. Keys added to or removed from keyring
// later are seen by the next request. The caller must call Close.
func Serve(keyring agent.Agent, socket string) (*Server, error) {
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return nil, err
	}
	s := &Server{Socket: socket, keyring: keyring, ln: ln, conns: make(map[net.Conn]struct{})}
	s.wg.Go(s.accept)
	return s, nil
}

func (s *Server) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed by Close
		}
		if !s.track(c) {
			c.Close()
			return
		}
		s.wg.Go(func() {
			_ = agent.ServeAgent(s.keyring, c)
			s.untrack(c)
			c.Close()
		})
	}
}

// track records an accepted connection, so Close can end it. It reports
// false when Close has begun, which may have missed c.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// untrack forgets a connection whose client hung up, so a long-lived
// server does not hold every connection it ever served.
func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// Close stops the agent: it closes the socket and every connection to it,
// and waits until nothing is served. Clients see the agent go away, as when
// a real agent is killed. It does not wait for clients to hang up. Calling
// Close again does nothing.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.ln.Close()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}
