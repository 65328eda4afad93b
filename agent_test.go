//go:build unix

// The tests need ssh-agent, unix sockets and shell scripts (SSH_ASKPASS).

package asymjwt

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt/internal/testenv"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// agentTestKey is an in-process private key put into a test agent.
type agentTestKey struct {
	name string // also the comment it is added with
	priv crypto.Signer
	alg  Algorithm
}

// agentTestKeys makes one key of every type the agent code signs with.
func agentTestKeys(t testing.TB) []agentTestKey {
	t.Helper()
	ec := func(c elliptic.Curve) crypto.Signer {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return []agentTestKey{
		{"ed25519", ed, EdDSA},
		{"p256", ec(elliptic.P256()), ES256},
		{"p384", ec(elliptic.P384()), ES384},
		{"p521", ec(elliptic.P521()), ES512},
		{"rsa2048", rk, RS512},
	}
}

// agentKeyring returns x/crypto's in-process agent holding keys, each with
// its name as comment.
func agentKeyring(t testing.TB, keys ...agentTestKey) agent.ExtendedAgent {
	t.Helper()
	kr := agent.NewKeyring().(agent.ExtendedAgent)
	for _, k := range keys {
		if err := kr.Add(agent.AddedKey{PrivateKey: k.priv, Comment: k.name}); err != nil {
			t.Fatal(err)
		}
	}
	return kr
}

// agentSocketDir returns a short temporary directory: a unix socket path
// must fit in 108 bytes, which t.TempDir() under a long test name may not.
func agentSocketDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ajwt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// agentServer serves an agent.Agent on a unix socket, as ssh-agent does.
type agentServer struct {
	socket  string
	accepts atomic.Int32
}

func serveAgent(t testing.TB, ag agent.Agent) *agentServer {
	t.Helper()
	s := &agentServer{socket: filepath.Join(agentSocketDir(t), "agent.sock")}
	ln, err := net.Listen("unix", s.socket)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				agent.ServeAgent(ag, c)
				c.Close()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

// agentVia makes an Agent for ag, either directly (NewAgent) or over a unix
// socket (DialAgent).
func agentVia(t testing.TB, how string, ag agent.ExtendedAgent) *Agent {
	t.Helper()
	if how == "direct" {
		return NewAgent(ag)
	}
	a, err := DialAgent(serveAgent(t, ag).socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

var agentTransports = []string{"direct", "socket"}

func TestAgentKeyringSigns(t *testing.T) {
	keys := agentTestKeys(t)
	kr := agentKeyring(t, keys...)
	for _, how := range agentTransports {
		a := agentVia(t, how, kr)
		for _, k := range keys {
			algs := []Algorithm{k.alg}
			if k.alg == RS512 {
				algs = append(algs, RS256)
			}
			for _, alg := range algs {
				t.Run(how+"/"+k.name+"/"+string(alg), func(t *testing.T) {
					ctx := t.Context()
					key, err := a.Key(ctx, k.name)
					if err != nil {
						t.Fatal(err)
					}
					pub := k.priv.Public()
					if fp, _ := Fingerprint(key.Public()); fp != mustFingerprint(t, pub) {
						t.Fatalf("Public() is not the key's public half")
					}
					s, err := NewSigner("alice", key, WithAlgorithm(alg))
					if err != nil {
						t.Fatal(err)
					}
					tok, err := s.Sign(ctx, nil)
					if err != nil {
						t.Fatal(err)
					}
					claims := verifyWithGolangJWT(t, tok, pub, alg)
					if claims["username"] != "alice" {
						t.Errorf("username = %v", claims["username"])
					}
				})
			}
		}
	}
}

func mustFingerprint(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	fp, err := Fingerprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

func TestAgentAlgorithmRefused(t *testing.T) {
	keys := agentTestKeys(t)
	a := NewAgent(agentKeyring(t, keys...))
	tests := []struct {
		key string
		alg Algorithm
	}{
		{"rsa2048", RS384}, // agents sign RSA with SHA-256 or SHA-512 only
		{"rsa2048", PS256},
		{"rsa2048", PS512},
		{"rsa2048", ES256},
		{"p256", ES384},
		{"p521", ES256},
		{"ed25519", ES256},
		{"p256", EdDSA},
		{"ed25519", "HS256"},
		{"ed25519", "none"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"/"+string(tt.alg), func(t *testing.T) {
			key, err := a.Key(t.Context(), tt.key)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := key.SignJWS(t.Context(), tt.alg, []byte("x.y"))
			if !errors.Is(err, ErrUnsupportedAlgorithm) || sig != nil {
				t.Fatalf("SignJWS = %x, %v; want ErrUnsupportedAlgorithm", sig, err)
			}
			// NewSigner says so at once, not on the first request.
			if _, err := NewSigner("u", key, WithAlgorithm(tt.alg)); !errors.Is(err, ErrUnsupportedAlgorithm) {
				t.Fatalf("NewSigner(WithAlgorithm(%s)) = %v; want ErrUnsupportedAlgorithm", tt.alg, err)
			}
		})
	}
}

// agentSSHKey is a key made by ssh-keygen.
type agentSSHKey struct {
	name       string
	typ        string
	bits       int
	passphrase string
	alg        Algorithm
}

// sshKeygen writes dir/name and dir/name.pub with ssh-keygen, commented
// with name, and returns the private key's path.
func sshKeygen(t testing.TB, dir string, k agentSSHKey) string {
	t.Helper()
	path := filepath.Join(dir, k.name)
	args := []string{"-q", "-t", k.typ, "-N", k.passphrase, "-C", k.name, "-f", path}
	if k.bits > 0 {
		args = append(args, "-b", fmt.Sprint(k.bits))
	}
	if out, err := exec.Command(testenv.LookPath(t, "ssh-keygen"), args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen %s: %v\n%s", k.name, err, out)
	}
	return path
}

// readSSHPublicKey reads an authorized_keys line, as ssh-keygen writes it.
func readSSHPublicKey(t testing.TB, path string) (ssh.PublicKey, crypto.PublicKey) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return pub, pub.(ssh.CryptoPublicKey).CryptoPublicKey()
}

// sshAgentProcess is a real ssh-agent started by a test.
type sshAgentProcess struct {
	socket string
	cmd    *exec.Cmd
	once   sync.Once
}

// startSSHAgent starts `ssh-agent -D -a socket`, with env added to its
// environment, and waits until it listens. It is killed when the test ends.
func startSSHAgent(t testing.TB, socket string, env ...string) *sshAgentProcess {
	t.Helper()
	cmd := exec.Command(testenv.LookPath(t, "ssh-agent"), "-D", "-a", socket)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &sshAgentProcess{socket: socket, cmd: cmd}
	t.Cleanup(p.kill)
	// ssh-agent prints "SSH_AUTH_SOCK=...;" once its socket listens.
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SSH_AUTH_SOCK=") {
		p.kill()
		t.Fatalf("ssh-agent did not start: %q, %v; stderr: %s", line, err, stderr.String())
	}
	return p
}

// kill stops the agent with SIGKILL, as a crash would: the socket file stays.
func (p *sshAgentProcess) kill() {
	p.once.Do(func() {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	})
}

// sshAdd adds the key at path to the agent with ssh-add and options,
// non-interactively: a passphrase comes from an SSH_ASKPASS script, stdin is
// /dev/null.
func sshAdd(t testing.TB, socket, path, passphrase string, options ...string) {
	t.Helper()
	cmd := exec.Command(testenv.LookPath(t, "ssh-add"), append(options, path)...)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+socket)
	if passphrase != "" {
		askpass := path + ".askpass"
		script := "#!/bin/sh\nprintf '%s\\n' '" + passphrase + "'\n"
		if err := os.WriteFile(askpass, []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
		cmd.Env = append(cmd.Env, "SSH_ASKPASS="+askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add %s: %v\n%s", filepath.Base(path), err, out)
	}
}

var opensshAgentKeys = []agentSSHKey{
	{name: "ed25519", typ: "ed25519", alg: EdDSA},
	{name: "ecdsa256", typ: "ecdsa", bits: 256, alg: ES256},
	{name: "ecdsa384", typ: "ecdsa", bits: 384, alg: ES384, passphrase: "correct horse battery"},
	{name: "ecdsa521", typ: "ecdsa", bits: 521, alg: ES512},
	{name: "rsa2048", typ: "rsa", bits: 2048, alg: RS512},
	{name: "rsa4096", typ: "rsa", bits: 4096, alg: RS512},
}

func TestAgentOpenSSH(t *testing.T) {
	dir := agentSocketDir(t)
	p := startSSHAgent(t, filepath.Join(dir, "agent.sock"))
	for _, k := range opensshAgentKeys {
		sshAdd(t, p.socket, sshKeygen(t, dir, k), k.passphrase)
	}
	t.Setenv("SSH_AUTH_SOCK", p.socket)
	a, err := DialAgent("") // SSH_AUTH_SOCK
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	infos, err := a.Keys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != len(opensshAgentKeys) {
		t.Fatalf("Keys() lists %d keys, want %d: %v", len(infos), len(opensshAgentKeys), infos)
	}
	for _, k := range opensshAgentKeys {
		sshPub, pub := readSSHPublicKey(t, filepath.Join(dir, k.name+".pub"))
		if !containsKeyInfo(infos, AgentKeyInfo{ssh.FingerprintSHA256(sshPub), k.name, sshPub.Type()}) {
			t.Errorf("Keys() does not list %s: %v", k.name, infos)
		}
		algs := []Algorithm{k.alg}
		if k.alg == RS512 {
			algs = append(algs, RS256)
		}
		for _, alg := range algs {
			t.Run(k.name+"/"+string(alg), func(t *testing.T) {
				key, err := a.KeyForPublicKey(t.Context(), sshPub)
				if err != nil {
					t.Fatal(err)
				}
				s, err := NewSigner("bob", key, WithAlgorithm(alg))
				if err != nil {
					t.Fatal(err)
				}
				for range 3 { // the connection is reused
					tok, err := s.Sign(t.Context(), nil)
					if err != nil {
						t.Fatal(err)
					}
					verifyWithGolangJWT(t, tok, pub, alg)
				}
			})
		}
	}
}

func containsKeyInfo(infos []AgentKeyInfo, want AgentKeyInfo) bool {
	for _, i := range infos {
		if i == want {
			return true
		}
	}
	return false
}

func TestAgentRestart(t *testing.T) {
	dir := agentSocketDir(t)
	socket := filepath.Join(dir, "agent.sock")
	k := agentSSHKey{name: "ed25519", typ: "ed25519", passphrase: "restart pass"}
	path := sshKeygen(t, dir, k)
	_, pub := readSSHPublicKey(t, path+".pub")

	first := startSSHAgent(t, socket)
	sshAdd(t, socket, path, k.passphrase)
	a, err := DialAgent(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	key, err := a.Key(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	sign := func() (string, error) {
		s, err := NewSigner("carol", key)
		if err != nil {
			t.Fatal(err)
		}
		return s.Sign(t.Context(), nil)
	}
	if tok, err := sign(); err != nil {
		t.Fatal(err)
	} else {
		verifyWithGolangJWT(t, tok, pub, EdDSA)
	}

	// Kill the agent while signatures are in flight: every one either
	// completes or fails with a typed error, never a token without a
	// signature.
	var wg sync.WaitGroup
	started := make(chan struct{}, 4)
	for range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				if i == 1 {
					started <- struct{}{}
				}
				tok, err := sign()
				if err != nil {
					var ae *AgentError
					if !errors.As(err, &ae) || !errors.Is(err, ErrAgentUnavailable) || tok != "" {
						t.Errorf("killed mid-run: %q, %v; want *AgentError wrapping ErrAgentUnavailable", tok, err)
					}
					return
				}
				if strings.Count(tok, ".") != 2 || strings.HasSuffix(tok, ".") {
					t.Errorf("unsigned token %q", tok)
					return
				}
			}
		})
	}
	for range 4 {
		<-started
	}
	first.kill()
	wg.Wait()

	for range 2 { // no listener on the socket
		tok, err := sign()
		var ae *AgentError
		if !errors.As(err, &ae) || !errors.Is(err, ErrAgentUnavailable) || tok != "" {
			t.Fatalf("after the agent was killed: %q, %v; want *AgentError wrapping ErrAgentUnavailable", tok, err)
		}
		if ae.Op != "sign" || ae.Socket != socket {
			t.Errorf("AgentError = %+v", ae)
		}
	}

	// A new agent on the same path (the dead one left its socket file).
	if err := os.Remove(socket); err != nil {
		t.Fatal(err)
	}
	startSSHAgent(t, socket)
	sshAdd(t, socket, path, k.passphrase)
	tok, err := sign()
	if err != nil {
		t.Fatalf("the new agent is not picked up: %v", err)
	}
	verifyWithGolangJWT(t, tok, pub, EdDSA)
}

// TestAgentRestartBetweenCalls restarts the agent while the Agent holds an
// open connection: the next signature redials without an error.
func TestAgentRestartBetweenCalls(t *testing.T) {
	dir := agentSocketDir(t)
	socket := filepath.Join(dir, "agent.sock")
	path := sshKeygen(t, dir, agentSSHKey{name: "p256", typ: "ecdsa", bits: 256})
	_, pub := readSSHPublicKey(t, path+".pub")
	first := startSSHAgent(t, socket)
	sshAdd(t, socket, path, "")
	a, err := DialAgent(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	key, err := a.Key(t.Context(), "p256")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := key.SignJWS(t.Context(), ES256, []byte("a.b")); err != nil {
		t.Fatal(err)
	}
	first.kill()
	os.Remove(socket)
	startSSHAgent(t, socket)
	sshAdd(t, socket, path, "")
	s, err := NewSigner("dave", key)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(t.Context(), nil)
	if err != nil {
		t.Fatalf("no redial after a restart: %v", err)
	}
	verifyWithGolangJWT(t, tok, pub, ES256)
}

// fakeAgent is an agent whose SignWithFlags the test replaces; the rest is a
// keyring's.
type fakeAgent struct {
	agent.ExtendedAgent
	sign func(key ssh.PublicKey, data []byte, flags agent.SignatureFlags) (*ssh.Signature, error)
}

func (f *fakeAgent) SignWithFlags(key ssh.PublicKey, data []byte, flags agent.SignatureFlags) (*ssh.Signature, error) {
	return f.sign(key, data, flags)
}

func (f *fakeAgent) Sign(key ssh.PublicKey, data []byte) (*ssh.Signature, error) {
	return f.sign(key, data, 0)
}

func TestAgentUnexpectedSignature(t *testing.T) {
	keys := agentTestKeys(t)
	byName := map[string]agentTestKey{}
	for _, k := range keys {
		byName[k.name] = k
	}
	sha1RSA := func(key ssh.PublicKey, data []byte, _ agent.SignatureFlags) (*ssh.Signature, error) {
		s, err := ssh.NewSignerFromSigner(byName["rsa2048"].priv)
		if err != nil {
			return nil, err
		}
		return s.(ssh.AlgorithmSigner).SignWithAlgorithm(rand.Reader, data, ssh.KeyAlgoRSA)
	}
	canned := func(format string, blob []byte) func(ssh.PublicKey, []byte, agent.SignatureFlags) (*ssh.Signature, error) {
		return func(ssh.PublicKey, []byte, agent.SignatureFlags) (*ssh.Signature, error) {
			return &ssh.Signature{Format: format, Blob: blob}, nil
		}
	}
	mpints := func(r, s *big.Int) []byte { return ssh.Marshal(struct{ R, S *big.Int }{r, s}) }
	tests := []struct {
		name string
		key  string
		alg  Algorithm
		sign func(ssh.PublicKey, []byte, agent.SignatureFlags) (*ssh.Signature, error)
	}{
		{"sha1 ssh-rsa for RS512", "rsa2048", RS512, sha1RSA},
		{"sha1 ssh-rsa for RS256", "rsa2048", RS256, sha1RSA},
		{"rsa-sha2-256 for RS512", "rsa2048", RS512, canned(ssh.KeyAlgoRSASHA256, make([]byte, 256))},
		{"rsa-sha2-512 for RS256", "rsa2048", RS256, canned(ssh.KeyAlgoRSASHA512, make([]byte, 256))},
		{"rsa too long", "rsa2048", RS512, canned(ssh.KeyAlgoRSASHA512, make([]byte, 257))},
		{"rsa empty", "rsa2048", RS512, canned(ssh.KeyAlgoRSASHA512, nil)},
		{"p256 signature for p384 key", "p384", ES384, canned(ssh.KeyAlgoECDSA256, mpints(big.NewInt(1), big.NewInt(1)))},
		{"ed25519 signature for p256 key", "p256", ES256, canned(ssh.KeyAlgoED25519, make([]byte, 64))},
		{"ecdsa r too long", "p256", ES256, canned(ssh.KeyAlgoECDSA256, mpints(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1)))},
		{"ecdsa garbage", "p256", ES256, canned(ssh.KeyAlgoECDSA256, []byte{0, 0, 0, 9, 1})},
		{"ed25519 short", "ed25519", EdDSA, canned(ssh.KeyAlgoED25519, make([]byte, 63))},
		{"ed25519 as sk", "ed25519", EdDSA, canned(ssh.KeyAlgoSKED25519, make([]byte, 64))},
	}
	for _, how := range agentTransports {
		for _, tt := range tests {
			t.Run(how+"/"+tt.name, func(t *testing.T) {
				fake := &fakeAgent{ExtendedAgent: agentKeyring(t, keys...), sign: tt.sign}
				a := agentVia(t, how, fake)
				key, err := a.Key(t.Context(), tt.key)
				if err != nil {
					t.Fatal(err)
				}
				s, err := NewSigner("eve", key, WithAlgorithm(tt.alg))
				if err != nil {
					t.Fatal(err)
				}
				tok, err := s.Sign(t.Context(), nil)
				var ae *AgentError
				if !errors.Is(err, ErrAgentSignature) || !errors.As(err, &ae) || tok != "" {
					t.Fatalf("Sign = %q, %v; want ErrAgentSignature and no token", tok, err)
				}
			})
		}
	}
}

// highBitAgent signs with a P-256 key, retrying until r has its top bit set
// (a leading zero byte in its mpint) and s is shorter than 32 bytes.
func highBitAgent(t testing.TB, priv *ecdsa.PrivateKey, kr agent.ExtendedAgent) *fakeAgent {
	return &fakeAgent{ExtendedAgent: kr, sign: func(_ ssh.PublicKey, data []byte, _ agent.SignatureFlags) (*ssh.Signature, error) {
		h := sha256.Sum256(data)
		for range 1 << 20 {
			r, s, err := ecdsa.Sign(rand.Reader, priv, h[:])
			if err != nil {
				return nil, err
			}
			if r.BitLen() == 256 && len(s.Bytes()) < 32 {
				blob := ssh.Marshal(struct{ R, S *big.Int }{r, s})
				if blob[3] != 33 || blob[4] != 0 {
					t.Errorf("r mpint has no leading zero: % x", blob[:6])
				}
				return &ssh.Signature{Format: ssh.KeyAlgoECDSA256, Blob: blob}, nil
			}
		}
		return nil, errors.New("no high-bit signature found")
	}}
}

func TestAgentECDSAHighBitShort(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kr := agentKeyring(t, agentTestKey{name: "p256", priv: priv})
	for _, how := range agentTransports {
		t.Run(how, func(t *testing.T) {
			a := agentVia(t, how, highBitAgent(t, priv, kr))
			key, err := a.Key(t.Context(), "")
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewSigner("frank", key)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := s.Sign(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			verifyWithGolangJWT(t, tok, &priv.PublicKey, ES256)
		})
	}
}

// hangingAgent lists keys but does not answer signature requests while hang
// is set, as an agent waiting on a confirmation prompt does.
// Closing release lets the calls that hang return.
func hangingAgent(kr agent.ExtendedAgent, release <-chan struct{}) (*fakeAgent, *atomic.Bool) {
	var hang atomic.Bool
	hang.Store(true)
	return &fakeAgent{ExtendedAgent: kr, sign: func(key ssh.PublicKey, data []byte, flags agent.SignatureFlags) (*ssh.Signature, error) {
		if hang.Load() {
			<-release
			return nil, errors.New("released")
		}
		return kr.SignWithFlags(key, data, flags)
	}}, &hang
}

func TestAgentContextDeadline(t *testing.T) {
	keys := agentTestKeys(t)
	for _, how := range agentTransports {
		t.Run(how, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release) // before the server's cleanup waits for its goroutines
			fake, hang := hangingAgent(agentKeyring(t, keys[0]), release)
			var srv *agentServer
			var a *Agent
			if how == "direct" {
				a = NewAgent(fake)
			} else {
				srv = serveAgent(t, fake)
				var err error
				if a, err = DialAgent(srv.socket); err != nil {
					t.Fatal(err)
				}
				defer a.Close()
			}
			key, err := a.Key(t.Context(), "")
			if err != nil {
				t.Fatal(err)
			}
			const deadline = 200 * time.Millisecond
			ctx, cancel := context.WithTimeout(t.Context(), deadline)
			defer cancel()
			start := time.Now()
			sig, err := key.SignJWS(ctx, keys[0].alg, []byte("a.b"))
			elapsed := time.Since(start)
			var ae *AgentError
			if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &ae) || sig != nil {
				t.Fatalf("SignJWS = %x, %v; want a deadline error", sig, err)
			}
			if elapsed > deadline+time.Second {
				t.Errorf("returned after %v, deadline %v", elapsed, deadline)
			}

			// A context already done never reaches the agent.
			done, cancelDone := context.WithCancel(t.Context())
			cancelDone()
			if _, err := key.SignJWS(done, keys[0].alg, []byte("a.b")); !errors.Is(err, context.Canceled) {
				t.Fatalf("with a canceled context: %v", err)
			}

			// Once the agent answers again, so does the Agent; over a
			// socket it dials a new connection, the old one's state being
			// unknown.
			hang.Store(false)
			if _, err := key.SignJWS(t.Context(), keys[0].alg, []byte("a.b")); err != nil {
				t.Fatal(err)
			}
			if srv != nil && srv.accepts.Load() != 2 {
				t.Errorf("%d connections, want 2 (one dropped after the timeout)", srv.accepts.Load())
			}
		})
	}
}

// TestAgentOpenSSHConfirmTimeout uses a key added with `ssh-add -c`: the
// agent asks its SSH_ASKPASS program to confirm each use, and this one takes
// its time before saying no. The request's context bounds the wait.
func TestAgentOpenSSHConfirmTimeout(t *testing.T) {
	dir := agentSocketDir(t)
	confirm := filepath.Join(dir, "confirm.sh")
	if err := os.WriteFile(confirm, []byte("#!/bin/sh\nsleep 1\nexit 1\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	p := startSSHAgent(t, filepath.Join(dir, "agent.sock"),
		"SSH_ASKPASS="+confirm, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0")
	sshAdd(t, p.socket, sshKeygen(t, dir, agentSSHKey{name: "confirm", typ: "ed25519"}), "", "-c")
	a, err := DialAgent(p.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	key, err := a.Key(t.Context(), "confirm")
	if err != nil {
		t.Fatal(err)
	}

	const deadline = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	start := time.Now()
	sig, err := key.SignJWS(ctx, EdDSA, []byte("a.b"))
	if elapsed := time.Since(start); elapsed > deadline+500*time.Millisecond {
		t.Errorf("returned after %v, deadline %v", elapsed, deadline)
	}
	var ae *AgentError
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &ae) || sig != nil {
		t.Fatalf("SignJWS = %x, %v; want a deadline error", sig, err)
	}

	// Given the time, the confirmation is refused: a typed error, and the
	// request is not sent again (which would prompt again).
	ctx, cancel = context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if sig, err := key.SignJWS(ctx, EdDSA, []byte("a.b")); !errors.Is(err, ErrAgentRefused) || sig != nil {
		t.Fatalf("SignJWS = %x, %v; want ErrAgentRefused", sig, err)
	}
}

func TestAgentRefusedIsNotRetried(t *testing.T) {
	keys := agentTestKeys(t)[:2]
	for _, how := range agentTransports {
		t.Run(how, func(t *testing.T) {
			kr := agentKeyring(t, keys...)
			var srv *agentServer
			var a *Agent
			if how == "direct" {
				a = NewAgent(kr)
			} else {
				srv = serveAgent(t, kr)
				var err error
				if a, err = DialAgent(srv.socket); err != nil {
					t.Fatal(err)
				}
				defer a.Close()
			}
			key, err := a.Key(t.Context(), keys[0].name)
			if err != nil {
				t.Fatal(err)
			}
			sshPub, _ := ssh.NewPublicKey(keys[0].priv.Public())
			if err := kr.Remove(sshPub); err != nil {
				t.Fatal(err)
			}
			_, err = key.SignJWS(t.Context(), keys[0].alg, []byte("a.b"))
			if !errors.Is(err, ErrAgentRefused) || errors.Is(err, ErrAgentUnavailable) {
				t.Fatalf("signing with a removed key: %v; want ErrAgentRefused", err)
			}
			if srv != nil && srv.accepts.Load() != 1 {
				t.Errorf("%d connections, want 1: a refusal is not a broken connection", srv.accepts.Load())
			}
			// The cached list is refreshed on a miss.
			if _, err := a.Key(t.Context(), keys[0].name); !errors.Is(err, ErrAgentKeyNotFound) {
				t.Errorf("Key(removed) = %v; want ErrAgentKeyNotFound", err)
			}
			kr.Add(agent.AddedKey{PrivateKey: keys[0].priv, Comment: "re-added"})
			if _, err := a.Key(t.Context(), "re-added"); err != nil {
				t.Errorf("a key added later is not found: %v", err)
			}
		})
	}
}

func TestAgentKeySelection(t *testing.T) {
	keys := agentTestKeys(t)
	// A second key with the first one's comment.
	kr := agentKeyring(t, append(keys, agentTestKey{name: keys[0].name, priv: mustECDSA(t)})...)
	sshPubs := make([]ssh.PublicKey, len(keys))
	for i, k := range keys {
		sshPubs[i], _ = ssh.NewPublicKey(k.priv.Public())
	}
	// A certificate and an unusable RSA key in the agent are never chosen.
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if err := kr.Add(agent.AddedKey{PrivateKey: weak, Comment: "weak"}); err != nil {
		t.Fatal(err)
	}
	caSigner, _ := ssh.NewSignerFromSigner(keys[2].priv)
	cert := &ssh.Certificate{Key: sshPubs[2], CertType: ssh.UserCert, KeyId: "id", ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, caSigner); err != nil {
		t.Fatal(err)
	}
	if err := kr.Add(agent.AddedKey{PrivateKey: keys[2].priv, Certificate: cert, Comment: keys[2].name}); err != nil {
		t.Fatal(err)
	}
	a := NewAgent(kr)

	fp := func(i int) string { return ssh.FingerprintSHA256(sshPubs[i]) }
	tests := []struct {
		name     string
		selector string
		pub      crypto.PublicKey // for KeyForPublicKey
		want     int              // index into keys, or -1 for an error
		err      error
	}{
		{name: "fingerprint", selector: fp(4), want: 4},
		{name: "fingerprint p256", selector: fp(1), want: 1},
		{name: "comment", selector: "p521", want: 3},
		{name: "comment with a certificate beside it", selector: "p384", want: 2},
		{name: "public key", pub: keys[3].priv.Public(), want: 3},
		{name: "ssh public key", pub: sshPubs[4], want: 4},
		{name: "none matches", selector: "nope", want: -1, err: ErrAgentKeyNotFound},
		{name: "fingerprint of a key not held", selector: mustFingerprint(t, mustECDSA(t).Public()), want: -1, err: ErrAgentKeyNotFound},
		{name: "public key not held", pub: mustECDSA(t).Public(), want: -1, err: ErrAgentKeyNotFound},
		{name: "weak key by comment", selector: "weak", want: -1, err: ErrAgentKeyNotFound},
		{name: "no selector, several keys", selector: "", want: -1, err: ErrAgentKeyAmbiguous},
		{name: "shared comment", selector: keys[0].name, want: -1, err: ErrAgentKeyAmbiguous},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				key Key
				err error
			)
			if tt.pub != nil {
				key, err = a.KeyForPublicKey(t.Context(), tt.pub)
			} else {
				key, err = a.Key(t.Context(), tt.selector)
			}
			if tt.want >= 0 {
				if err != nil {
					t.Fatal(err)
				}
				if got := mustFingerprint(t, key.Public()); got != fp(tt.want) {
					t.Fatalf("chose %s, want %s", got, fp(tt.want))
				}
				return
			}
			var ce *AgentKeyChoiceError
			if !errors.Is(err, tt.err) || !errors.As(err, &ce) || key != nil {
				t.Fatalf("got %v, %v; want %v", key, err, tt.err)
			}
			msg := err.Error()
			if len(ce.Choices) == 0 {
				t.Fatalf("no choices offered: %s", msg)
			}
			for _, c := range ce.Choices {
				if !strings.Contains(msg, c.Fingerprint) || !strings.Contains(msg, fmt.Sprintf("%q", c.Comment)) {
					t.Errorf("message does not list %s %q: %s", c.Fingerprint, c.Comment, msg)
				}
				if strings.Contains(c.Type, "cert") || c.Comment == "weak" {
					t.Errorf("unusable key offered: %+v", c)
				}
			}
			if tt.err == ErrAgentKeyNotFound && len(ce.Choices) != len(keys)+1 {
				t.Errorf("offers %d keys, want %d: %s", len(ce.Choices), len(keys)+1, msg)
			}
			assertNoKeyMaterial(t, msg, append(keys, agentTestKey{priv: weak}))
		})
	}

	t.Run("single key, no selector", func(t *testing.T) {
		one := NewAgent(agentKeyring(t, keys[4]))
		key, err := one.Key(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		if mustFingerprint(t, key.Public()) != fp(4) {
			t.Fatal("wrong key")
		}
	})
	t.Run("empty agent", func(t *testing.T) {
		_, err := NewAgent(agentKeyring(t)).Key(t.Context(), "")
		var ce *AgentKeyChoiceError
		if !errors.Is(err, ErrAgentKeyNotFound) || !errors.As(err, &ce) || !strings.Contains(err.Error(), "no usable key") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("Keys", func(t *testing.T) {
		infos, err := a.Keys(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) != len(keys)+3 { // + the twin, the weak key, the certificate
			t.Fatalf("%d keys listed: %v", len(infos), infos)
		}
		for i, k := range keys {
			if !containsKeyInfo(infos, AgentKeyInfo{fp(i), k.name, sshPubs[i].Type()}) {
				t.Errorf("%s not listed: %v", k.name, infos)
			}
		}
		assertNoKeyMaterial(t, fmt.Sprintf("%+v %#v", infos, infos), keys)
	})
}

func mustECDSA(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// assertNoKeyMaterial fails if s holds any key's public blob or private key,
// in base64 or hex.
func assertNoKeyMaterial(t testing.TB, s string, keys []agentTestKey) {
	t.Helper()
	for _, k := range keys {
		sshPub, err := ssh.NewPublicKey(k.priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k.priv)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range [][]byte{sshPub.Marshal(), der} {
			for _, enc := range []string{
				base64.StdEncoding.EncodeToString(secret)[8:40],
				base64.RawURLEncoding.EncodeToString(secret)[8:40],
				fmt.Sprintf("%x", secret)[16:64],
			} {
				if strings.Contains(s, enc) {
					t.Fatalf("key material in %q", s)
				}
			}
		}
	}
}

func TestDialAgent(t *testing.T) {
	kr := agentKeyring(t, agentTestKeys(t)[0])
	srv := serveAgent(t, kr)
	missing := filepath.Join(agentSocketDir(t), "missing.sock")
	tests := []struct {
		name   string
		env    string
		socket string
		err    error
	}{
		{name: "explicit socket", socket: srv.socket},
		{name: "SSH_AUTH_SOCK", env: srv.socket},
		{name: "explicit wins over SSH_AUTH_SOCK", env: missing, socket: srv.socket},
		{name: "SSH_AUTH_SOCK unset", err: ErrNoAgent},
		{name: "no such socket", socket: missing, err: ErrAgentUnavailable},
		{name: "SSH_AUTH_SOCK names no socket", env: missing, err: ErrAgentUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SSH_AUTH_SOCK", tt.env)
			a, err := DialAgent(tt.socket)
			if tt.err != nil {
				var ae *AgentError
				if !errors.Is(err, tt.err) || !errors.As(err, &ae) || a != nil {
					t.Fatalf("DialAgent = %v, %v; want %v", a, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// SSH_AUTH_SOCK was read once, in DialAgent.
			os.Setenv("SSH_AUTH_SOCK", missing)
			key, err := a.Key(t.Context(), "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := key.SignJWS(t.Context(), EdDSA, []byte("a.b")); err != nil {
				t.Fatal(err)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := key.SignJWS(t.Context(), EdDSA, []byte("a.b")); !errors.Is(err, ErrAgentUnavailable) || !errors.Is(err, net.ErrClosed) {
				t.Fatalf("after Close: %v", err)
			}
			if _, err := a.Keys(t.Context()); !errors.Is(err, ErrAgentUnavailable) {
				t.Fatalf("Keys after Close: %v", err)
			}
		})
	}
}

func TestAgentConcurrent(t *testing.T) {
	keys := agentTestKeys(t)
	kr := agentKeyring(t, keys...)
	for _, how := range agentTransports {
		t.Run(how, func(t *testing.T) {
			a := agentVia(t, how, kr)
			const workers, each = 16, 10
			toks := make([][]string, workers)
			var wg sync.WaitGroup
			for i := range workers {
				wg.Go(func() {
					key, err := a.Key(t.Context(), keys[i%len(keys)].name)
					if err != nil {
						t.Error(err)
						return
					}
					s, err := NewSigner("grace", key)
					if err != nil {
						t.Error(err)
						return
					}
					for range each {
						tok, err := s.Sign(t.Context(), nil)
						if err != nil {
							t.Error(err)
							return
						}
						toks[i] = append(toks[i], tok)
					}
				})
			}
			wg.Wait()
			for i, ts := range toks {
				k := keys[i%len(keys)]
				if len(ts) != each {
					t.Fatalf("worker %d made %d tokens", i, len(ts))
				}
				for _, tok := range ts {
					verifyWithGolangJWT(t, tok, k.priv.Public(), k.alg)
				}
			}
		})
	}
}

// benchSigningInput is the size of a typical token's header and claims.
var benchSigningInput = []byte(strings.Repeat("x", 240))

// benchAgent starts a real ssh-agent holding one Ed25519 key and returns its
// socket.
func benchAgent(b *testing.B) string {
	dir := agentSocketDir(b)
	p := startSSHAgent(b, filepath.Join(dir, "agent.sock"))
	sshAdd(b, p.socket, sshKeygen(b, dir, agentSSHKey{name: "bench", typ: "ed25519"}), "")
	return p.socket
}

// BenchmarkAgentSign signs through an Agent and its Key, as a Signer does.
// Compare with BenchmarkAgentSignBare.
func BenchmarkAgentSign(b *testing.B) {
	a, err := DialAgent(benchAgent(b))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	key, err := a.Key(b.Context(), "")
	if err != nil {
		b.Fatal(err)
	}
	for _, bm := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"background", func() (context.Context, context.CancelFunc) { return context.Background(), func() {} }},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Minute)
		}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			ctx, cancel := bm.ctx()
			defer cancel()
			loopCPU(b, func() {
				if _, err := key.SignJWS(ctx, EdDSA, benchSigningInput); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkAgentSignBare is x/crypto's agent client alone, on a socket of the
// same kind, signing the same amount of data: the floor for
// BenchmarkAgentSign.
func BenchmarkAgentSignBare(b *testing.B) {
	conn, err := net.Dial("unix", benchAgent(b))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	client := agent.NewClient(conn)
	keys, err := client.List()
	if err != nil || len(keys) != 1 {
		b.Fatal(keys, err)
	}
	loopCPU(b, func() {
		if _, err := client.Sign(keys[0], benchSigningInput); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkAgentWrapper measures what an Agent adds to an agent call with
// the agent's own work taken out: an in-process agent that answers at once
// with a canned Ed25519 signature, called directly ("bare") and through
// Key.SignJWS.
func BenchmarkAgentWrapper(b *testing.B) {
	k := agentTestKeys(b)[0]
	canned := &ssh.Signature{Format: ssh.KeyAlgoED25519, Blob: make([]byte, ed25519.SignatureSize)}
	fake := &fakeAgent{ExtendedAgent: agentKeyring(b, k), sign: func(ssh.PublicKey, []byte, agent.SignatureFlags) (*ssh.Signature, error) {
		return canned, nil
	}}
	key, err := NewAgent(fake).Key(b.Context(), "")
	if err != nil {
		b.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(k.priv.Public())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := fake.SignWithFlags(sshPub, benchSigningInput, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("background", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := key.SignJWS(context.Background(), EdDSA, benchSigningInput); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("deadline", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := key.SignJWS(ctx, EdDSA, benchSigningInput); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// ExampleDialAgent signs requests with a key that stays in the user's
// ssh-agent, chosen by its comment.
func ExampleDialAgent() {
	a, err := DialAgent("") // SSH_AUTH_SOCK
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	key, err := a.Key(context.Background(), "deploy@ci")
	var choice *AgentKeyChoiceError
	if errors.As(err, &choice) {
		log.Fatal(err) // lists the fingerprints and comments on offer
	}
	if err != nil {
		log.Fatal(err)
	}
	signer, err := NewSigner("deploy", key)
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: &Transport{Signer: signer}}
	_ = client
}

// ExampleNewAgent uses an in-process agent, as tests do.
func ExampleNewAgent() {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	keyring := agent.NewKeyring().(agent.ExtendedAgent)
	keyring.Add(agent.AddedKey{PrivateKey: priv, Comment: "example"})

	a := NewAgent(keyring)
	key, err := a.Key(context.Background(), "") // the only key
	if err != nil {
		log.Fatal(err)
	}
	signer, err := NewSigner("alice", key)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := signer.Sign(context.Background(), nil)
	fmt.Println(strings.Count(tok, "."), signer.Algorithm(), err)

	_, err = a.Key(context.Background(), "other")
	fmt.Println(errors.Is(err, ErrAgentKeyNotFound))
	// Output:
	// 2 EdDSA <nil>
	// true
}
