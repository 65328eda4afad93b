package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/asymjwt/asymjwt"
	"github.com/asymjwt/asymjwt/internal/testenv"
)

// keygen runs ssh-keygen with args.
func keygen(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(testenv.LookPath(t, "ssh-keygen"), args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
	}
}

// certSetup makes, with ssh-keygen, a CA and a user key in a new directory,
// and returns their paths.
func certSetup(t *testing.T) (dir, ca, key string) {
	t.Helper()
	dir = t.TempDir()
	ca, key = filepath.Join(dir, "ca"), filepath.Join(dir, "id_ed25519")
	keygen(t, "-q", "-t", "ed25519", "-N", "", "-C", "test-ca", "-f", ca)
	keygen(t, "-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f", key)
	return dir, ca, key
}

// TestHeaderVerifyCertificate is README's three commands end to end: a CA
// made by ssh-keygen certifies a key, header sends the certificate from
// FILE-cert.pub, and verify trusts the CA with -ca or a cert-authority line.
func TestHeaderVerifyCertificate(t *testing.T) {
	t.Parallel()
	dir, ca, key := certSetup(t)
	keygen(t, "-q", "-s", ca, "-I", "alice@example.com", "-z", "4242", "-n", "alice", "-V", "-5m:+1h", key+".pub")

	tok := runCLI(t, "header", "-user", "alice", "-key", key, "-url", "https://api.example.com/v1").want(t, 0).token(t)
	if _, ok := tokenHeader(t, tok)["sshcert"].(string); !ok {
		t.Fatal("the token carries no certificate")
	}
	caFP := runCLIOut(t, "ssh-keygen", "-l", "-f", ca+".pub")

	// -ca: trusted for every user.
	c := runCLI(t, "verify", "-ca", ca+".pub", tok).want(t, 0).claims(t)
	if c["username"] != "alice" || c["cert_key_id"] != "alice@example.com" || c["cert_serial"] != float64(4242) || !strings.Contains(caFP, c["cert_ca"].(string)) {
		t.Fatalf("claims %v", c)
	}
	for _, k := range []string{"time", "nonce", "htm", "htu"} {
		if _, ok := c[k]; !ok {
			t.Errorf("claims lack %q: %v", k, c)
		}
	}
	// A cert-authority line in the user's file, with and without -ca.
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	caLine, err := os.ReadFile(ca + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(keys, "alice.pub"), append([]byte(`cert-authority,principals="alice" `), caLine...), 0o644); err != nil {
		t.Fatal(err)
	}
	runCLI(t, "verify", "-keys", keys, "-method", "GET", "-url", "https://api.example.com/v1", tok).want(t, 0)
	if err := os.WriteFile(filepath.Join(keys, "bob.pub"), caLine, 0o644); err != nil { // the CA's key as bob's own
		t.Fatal(err)
	}
	bobTok := runCLI(t, "header", "-user", "bob", "-key", key).want(t, 0).token(t)
	runCLI(t, "verify", "-keys", keys, bobTok).want(t, 1, "cert_untrusted")
	// Another user, and a CA not trusted.
	runCLI(t, "verify", "-ca", ca+".pub", bobTok).want(t, 1, "cert_principal")
	other := filepath.Join(dir, "other-ca")
	keygen(t, "-q", "-t", "ed25519", "-N", "", "-f", other)
	runCLI(t, "verify", "-ca", other+".pub", tok).want(t, 1, "cert_untrusted")
}

func runCLIOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(testenv.LookPath(t, name), args...).Output()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return string(out)
}

func TestHeaderCertificateFlag(t *testing.T) {
	t.Parallel()
	dir, ca, key := certSetup(t)
	keygen(t, "-q", "-s", ca, "-I", "named", "-n", "alice", key+".pub")
	named := filepath.Join(dir, "named-cert.pub")
	if err := os.Rename(key+"-cert.pub", named); err != nil {
		t.Fatal(err)
	}
	tok := runCLI(t, "header", "-user", "alice", "-key", key, "-cert", named).want(t, 0).token(t)
	runCLI(t, "verify", "-ca", ca+".pub", tok).want(t, 0)
	// Without -cert and without FILE-cert.pub: a plain token.
	plain := runCLI(t, "header", "-user", "alice", "-key", key).want(t, 0).token(t)
	if _, ok := tokenHeader(t, plain)["sshcert"]; ok {
		t.Fatal("a certificate from nowhere")
	}

	other := filepath.Join(dir, "other")
	keygen(t, "-q", "-t", "ed25519", "-N", "", "-f", other)
	keygen(t, "-q", "-s", ca, "-I", "other", "-n", "alice", other+".pub")
	for _, tt := range []struct {
		name string
		args []string
		has  []string
	}{
		{"missing", []string{"-cert", filepath.Join(dir, "nope-cert.pub")}, []string{"nope-cert.pub", "no such file"}},
		{"a directory", []string{"-cert", dir}, []string{dir, "not a regular file"}},
		{"another key's", []string{"-cert", other + "-cert.pub"}, []string{"other-cert.pub", "certificate is for another key"}},
		{"a public key", []string{"-cert", key + ".pub"}, []string{"not a certificate"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			runCLI(t, append([]string{"header", "-user", "alice", "-key", key}, tt.args...)...).wantInputError(t, tt.has...)
		})
	}
	t.Run("broken FILE-cert.pub", func(t *testing.T) {
		broken := filepath.Join(t.TempDir(), "k")
		copyFile(t, key, broken)
		if err := os.WriteFile(broken+"-cert.pub", []byte("ssh-ed25519-cert-v01@openssh.com AAAA"), 0o644); err != nil {
			t.Fatal(err)
		}
		runCLI(t, "header", "-user", "alice", "-key", broken).wantInputError(t, "k-cert.pub")
	})
	t.Run("expired: a warning, and verify refuses", func(t *testing.T) {
		exp := filepath.Join(t.TempDir(), "k")
		copyFile(t, key, exp)
		copyFile(t, key+".pub", exp+".pub")
		keygen(t, "-q", "-s", ca, "-I", "old", "-n", "alice", "-V", "20200101:20200102", exp+".pub")
		r := runCLI(t, "header", "-user", "alice", "-key", exp).want(t, 0, "warning", "expired")
		runCLI(t, "verify", "-ca", ca+".pub", r.token(t)).want(t, 1, "cert_expired")
	})
}

func TestVerifyCAFile(t *testing.T) {
	t.Parallel()
	dir, ca, key := certSetup(t)
	keygen(t, "-q", "-s", ca, "-I", "x", "-n", "alice", key+".pub")
	tok := runCLI(t, "header", "-user", "alice", "-key", key).want(t, 0).token(t)

	runCLI(t, "verify", "-ca", filepath.Join(dir, "missing"), tok).wantInputError(t, "missing")
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runCLI(t, "verify", "-ca", garbage, tok).wantInputError(t, "no usable CA key", "line 1")
	// Comments, a bad line reported, a good one used.
	mixed := filepath.Join(dir, "mixed")
	caLine, _ := os.ReadFile(ca + ".pub")
	if err := os.WriteFile(mixed, append([]byte("# CAs\nnot a key\n"), caLine...), 0o644); err != nil {
		t.Fatal(err)
	}
	runCLI(t, "verify", "-ca", mixed, tok).want(t, 0, "line 2")

	// A token whose own claims use a name verify prints for certificates.
	k, err := asymjwt.KeyFromFile(key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := asymjwt.NewSigner("alice", k, asymjwt.WithClaims(map[string]any{"cert_key_id": "forged"}))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := s.Sign(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "verify", "-ca", ca+".pub", forged).want(t, 1, "cert_key_id")
	if r.stdout != "" {
		t.Fatalf("stdout %q", r.stdout)
	}
}

// TestHeaderAgentCertificate: header -agent sends the certificate that a
// real ssh-agent holds for the key (ssh-add adds FILE-cert.pub with FILE).
func TestHeaderAgentCertificate(t *testing.T) {
	t.Parallel()
	_, ca, key := certSetup(t)
	keygen(t, "-q", "-s", ca, "-I", "from-agent", "-z", "5", "-n", "alice", key+".pub")
	sockDir, err := os.MkdirTemp("", "ajwt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	socket := filepath.Join(sockDir, "agent.sock")
	cmd := exec.Command(testenv.LookPath(t, "ssh-agent"), "-D", "-a", socket)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGKILL); cmd.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.HasPrefix(line, "SSH_AUTH_SOCK=") {
		t.Fatalf("ssh-agent did not start: %q %v", line, err)
	}
	add := exec.Command(testenv.LookPath(t, "ssh-add"), key)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+socket)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	withAgent := cli{env: []string{"SSH_AUTH_SOCK=" + socket}}
	// The agent lists the key and its certificate; they are one key.
	tok := withAgent.run(t, "header", "-user", "alice", "-agent").want(t, 0).token(t)
	c := runCLI(t, "verify", "-ca", ca+".pub", tok).want(t, 0).claims(t)
	if c["cert_key_id"] != "from-agent" || c["cert_serial"] != float64(5) {
		t.Fatalf("claims %v", c)
	}
	// -cert with -agent replaces the agent's certificate.
	keygen(t, "-q", "-s", ca, "-I", "from-file", "-n", "alice", "-V", "-1m:+1h", key+".pub")
	tok = withAgent.run(t, "header", "-user", "alice", "-agent", "-cert", key+"-cert.pub").want(t, 0).token(t)
	if c := runCLI(t, "verify", "-ca", ca+".pub", tok).want(t, 0).claims(t); c["cert_key_id"] != "from-file" {
		t.Fatalf("claims %v", c)
	}
}

// TestSignProxyCertificate: sign-proxy sends the certificate -cert names
// (or FILE-cert.pub beside the key) in every token, so a verify-proxy that
// trusts only the CA for alice lets its requests through.
func TestSignProxyCertificate(t *testing.T) {
	t.Parallel()
	dir, ca, key := certSetup(t)
	keygen(t, "-q", "-s", ca, "-I", "alice@example.com", "-n", "alice", "-V", "-5m:+1h", key+".pub")
	certFile := filepath.Join(dir, "alice-cert")
	if err := os.Rename(key+"-cert.pub", certFile); err != nil {
		t.Fatal(err)
	}
	env := newProxyEnv(t)
	caLine, err := os.ReadFile(ca + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	// alice's file trusts the CA, and holds no key of hers.
	if err := os.WriteFile(filepath.Join(env.keys, "alice.pub"), append([]byte(`cert-authority,principals="alice" `), caLine...), 0o644); err != nil {
		t.Fatal(err)
	}
	vp := env.verifyProxy(t, "-require-binding")

	withCert := env.signProxy(t, nil, vp.URL+"/", "-key", key, "-cert", certFile)
	resp, body := get(t, nil, withCert.URL+"/echo")
	if e := decodeEcho(t, resp, body); e.Header[asymjwt.UserHeader][0] != "alice" {
		t.Fatalf("upstream saw %v", e.Header)
	}
	if !strings.Contains(withCert.stderr.String(), "alice@example.com") {
		t.Errorf("the start log does not name the certificate:\n%s", withCert.stderr.String())
	}

	// Without -cert, and none beside the key: the key alone is not trusted.
	bare := env.signProxy(t, nil, vp.URL+"/", "-key", key)
	if resp, _ := get(t, nil, bare.URL+"/echo"); resp.StatusCode != 401 {
		t.Fatalf("without the certificate: %s, want 401", resp.Status)
	}

	// A -cert that cannot be read, or is not a certificate of the key.
	runCLI(t, "sign-proxy", "-listen", "127.0.0.1:0", "-upstream", vp.URL, "-user", "alice", "-key", key,
		"-cert", filepath.Join(dir, "missing")).want(t, 2, "asymjwt sign-proxy:", "missing")
	runCLI(t, "sign-proxy", "-listen", "127.0.0.1:0", "-upstream", vp.URL, "-user", "alice", "-key", key,
		"-cert", ca+".pub").want(t, 2, "asymjwt sign-proxy:")
}
