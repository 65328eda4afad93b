package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt"
	"github.com/asymjwt/asymjwt/internal/testenv"
)

// signProxy starts a sign-proxy for alice in front of upstreamURL.
func (e *proxyEnv) signProxy(t testing.TB, env []string, upstreamURL string, extra ...string) *proxyProcess {
	t.Helper()
	args := append([]string{"sign-proxy", "-listen", "127.0.0.1:0", "-upstream", upstreamURL, "-user", "alice"}, extra...)
	return startProxy(t, env, args...)
}

// TestSignProxyChain: a client in any language (here a plain http.Client,
// with no key) calls sign-proxy, which signs for verify-proxy, which passes
// the caller's identity to the service. Every request gets its own token,
// a caller's Authorization is replaced (G2), retries carry new tokens, and
// every body is bound to its token (verify-proxy requires it).
func TestSignProxyChain(t *testing.T) {
	t.Parallel()
	env := newProxyEnv(t)
	vp := env.verifyProxy(t, "-require-binding", "-require-body-binding")
	tmp := t.TempDir()
	sp := env.signProxy(t, []string{"TMPDIR=" + tmp}, vp.URL+"/", "-key", env.alice.keyFile)

	t.Run("requests", func(t *testing.T) {
		for i := range 5 {
			resp, body := get(t, nil, fmt.Sprintf("%s/echo?i=%d&x=a%%20b", sp.URL, i))
			e := decodeEcho(t, resp, body)
			if got := identityHeaders(e.Header); fmt.Sprint(got) != fmt.Sprint(map[string][]string{asymjwt.KeyHeader: {env.alice.fp}, asymjwt.UserHeader: {"alice"}}) {
				t.Fatalf("request %d: upstream saw %v", i, got)
			}
			if want := fmt.Sprintf("/echo?i=%d&x=a%%20b", i); e.URI != want {
				t.Fatalf("upstream saw %q, want %q", e.URI, want)
			}
		}
	})
	t.Run("a caller's own Authorization is replaced", func(t *testing.T) {
		for _, auth := range []string{"JWT " + env.alice.token(t, "GET", "http://elsewhere/"), "Basic YWxpY2U6cGFzcw==", "JWT garbage"} {
			resp, body := get(t, nil, sp.URL+"/echo", "Authorization", auth)
			e := decodeEcho(t, resp, body)
			if e.Header[asymjwt.UserHeader][0] != "alice" {
				t.Fatalf("%.10s: upstream saw %v", auth, e.Header)
			}
		}
	})
	t.Run("body", func(t *testing.T) {
		for _, size := range []int64{0, 1, spoolMemory, spoolMemory + 1, 3 << 20} {
			req, _ := http.NewRequest("PUT", sp.URL+"/echo", patternReader(size))
			if size%2 == 1 {
				req.ContentLength = -1 // chunked
			} else {
				req.ContentLength = size
			}
			resp, body := do(t, nil, req)
			if e := decodeEcho(t, resp, body); e.BodyLen != size || e.BodySHA != patternSHA256(size) || e.Method != "PUT" {
				t.Fatalf("%d bytes: upstream got %s of %d bytes", size, e.Method, e.BodyLen)
			}
		}
	})
	t.Run("retries carry new tokens", func(t *testing.T) {
		// /flaky/ answers 503 once per path; verify-proxy would refuse a
		// second use of one token as a replay.
		before := env.up.hits.Load()
		resp, body := get(t, nil, sp.URL+"/flaky/get")
		decodeEcho(t, resp, body)
		if n := env.up.hits.Load() - before; n != 2 {
			t.Fatalf("upstream was called %d times, want 2", n)
		}
		req, _ := http.NewRequest("PUT", sp.URL+"/flaky/put", strings.NewReader(strings.Repeat("x", spoolMemory+10)))
		resp, body = do(t, nil, req)
		if e := decodeEcho(t, resp, body); e.BodyLen != spoolMemory+10 {
			t.Fatalf("retried PUT: upstream got %d bytes", e.BodyLen)
		}
		// POST is not idempotent: upstream's 503 comes back as it is.
		req, _ = http.NewRequest("POST", sp.URL+"/flaky/post", strings.NewReader("once"))
		before = env.up.hits.Load()
		if resp, _ := do(t, nil, req); resp.StatusCode != http.StatusServiceUnavailable || env.up.hits.Load()-before != 1 {
			t.Fatalf("POST: %s after %d attempts, want 503 after 1", resp.Status, env.up.hits.Load()-before)
		}
	})
	t.Run("a flush passes both proxies", func(t *testing.T) {
		resp, err := http.Get(sp.URL + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		if line, err := readLineWithin(br, 5*time.Second); err != nil || line != "first\n" {
			t.Fatalf("first line %q, %v: the flush did not pass", line, err)
		}
		env.up.unblock()
		if rest, _ := io.ReadAll(br); string(rest) != "second\n" {
			t.Fatalf("rest %q", rest)
		}
	})
	t.Run("WebSocket", func(t *testing.T) {
		resp, _ := websocketRoundTrip(t, sp.URL)
		if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("X-Saw-User") != "alice" {
			t.Fatalf("%s, upstream saw user %q", resp.Status, resp.Header.Get("X-Saw-User"))
		}
	})
	t.Run("nothing spooled is left behind", func(t *testing.T) {
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Fatalf("TMPDIR holds %v", left)
		}
	})

	if code := sp.stop(t, 10*time.Second); code != 0 {
		t.Fatalf("sign-proxy exit code %d", code)
	}
	for _, p := range []*proxyProcess{sp, vp} {
		if strings.Contains(p.stderr.String(), "JWT ey") {
			t.Fatal("a log holds a token")
		}
	}
}

// TestSignProxyLargeBody is SECURITY.md row G3 for sign-proxy: a 50 MB body
// is spooled to a private temporary file, not memory, and streamed on
// through verify-proxy; both proxies' memory stays flat and the file is
// gone afterwards.
func TestSignProxyLargeBody(t *testing.T) {
	t.Parallel()
	env := newProxyEnv(t)
	vp := env.verifyProxy(t)
	tmp := t.TempDir()
	sp := env.signProxy(t, []string{"TMPDIR=" + tmp}, vp.URL, "-key", env.alice.keyFile)

	get(t, nil, sp.URL+"/echo") // warm up
	var before [2]int64
	for i, p := range []*proxyProcess{sp, vp} {
		before[i], _ = p.memory(t)
		p.resetPeak()
	}
	const size = 50 << 20
	req, _ := http.NewRequest("POST", sp.URL+"/echo", patternReader(size))
	req.ContentLength = -1 // chunked, of unknown length: the spool finds it
	resp, body := do(t, nil, req)
	if e := decodeEcho(t, resp, body); e.BodyLen != size || e.BodySHA != patternSHA256(size) {
		t.Fatalf("upstream got %d bytes, want %d", e.BodyLen, size)
	}
	const bound = 16 << 20
	for i, p := range []*proxyProcess{sp, vp} {
		_, peak := p.memory(t)
		t.Logf("%s RSS %d MiB before, peak %d MiB while moving 50 MB", p.cmd.Args[1], before[i]>>20, peak>>20)
		if peak-before[i] > bound {
			t.Errorf("%s: peak RSS grew by %d MiB for a 50 MB body", p.cmd.Args[1], (peak-before[i])>>20)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("TMPDIR holds %v after the request", left)
	}
}

// TestSignProxyAgent: sign-proxy signs with a key held by a real ssh-agent.
func TestSignProxyAgent(t *testing.T) {
	t.Parallel()
	env := newProxyEnv(t)
	socket := filepath.Join(t.TempDir(), "agent.sock")
	startRealAgent(t, socket)
	addToAgent(t, socket, env.alice.keyFile)
	bob := newTestUser(t, env.dir, env.keys, "bob")
	addToAgent(t, socket, bob.keyFile)

	vp := env.verifyProxy(t)
	agentEnv := []string{"SSH_AUTH_SOCK=" + socket}
	// Two keys in the agent: one must be chosen.
	runCLIEnv(t, agentEnv, "sign-proxy", "-listen", "127.0.0.1:0", "-upstream", vp.URL, "-user", "alice", "-agent").
		wantInputError(t, env.alice.fp, bob.fp)

	sp := env.signProxy(t, agentEnv, vp.URL, "-agent", "-agent-key", env.alice.fp)
	for range 3 {
		resp, body := get(t, nil, sp.URL+"/echo")
		if e := decodeEcho(t, resp, body); e.Header[asymjwt.UserHeader][0] != "alice" || e.Header[asymjwt.KeyHeader][0] != env.alice.fp {
			t.Fatalf("upstream saw %v", identityHeaders(e.Header))
		}
	}
	req, _ := http.NewRequest("POST", sp.URL+"/echo", bytes.NewReader(make([]byte, 100<<10)))
	resp, body := do(t, nil, req)
	if e := decodeEcho(t, resp, body); e.BodyLen != 100<<10 {
		t.Fatalf("upstream got %d bytes", e.BodyLen)
	}
}

// startRealAgent starts `ssh-agent -D -a socket` and waits until it
// listens; it is killed when the test ends.
func startRealAgent(t testing.TB, socket string) {
	t.Helper()
	cmd := exec.Command(testenv.LookPath(t, "ssh-agent"), "-D", "-a", socket)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// It prints "SSH_AUTH_SOCK=...;" once its socket listens.
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SSH_AUTH_SOCK=") {
		t.Fatalf("ssh-agent did not start: %q, %v", line, err)
	}
	go io.Copy(io.Discard, stdout)
}

func addToAgent(t testing.TB, socket, keyFile string) {
	t.Helper()
	cmd := exec.Command(testenv.LookPath(t, "ssh-add"), keyFile)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+socket)
	cmd.Stdin = nil
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
}

// runCLIEnv runs the binary with env added.
func runCLIEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return cli{env: env}.run(t, args...)
}

// TestSignProxyListen is SECURITY.md row G2: only loopback, unless
// -allow-remote.
func TestSignProxyListen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	u := newTestUser(t, dir, "", "alice")
	base := []string{"sign-proxy", "-upstream", "http://127.0.0.1:1", "-user", "alice", "-key", u.keyFile}
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "example.com:8080", "127.0.0.1.nip.io:0"} {
		t.Run(addr, func(t *testing.T) {
			t.Parallel()
			runCLI(t, append(base, "-listen", addr)...).wantUsageError(t, "sign-proxy", "not a loopback address", "-allow-remote")
		})
	}
	for _, addr := range []string{"127.0.0.1:0", "127.0.0.2:0", "localhost:0"} {
		t.Run(addr, func(t *testing.T) {
			t.Parallel()
			p := startProxy(t, nil, append(base, "-listen", addr)...)
			if code := p.stop(t, 10*time.Second); code != 0 {
				t.Fatalf("exit code %d", code)
			}
		})
	}
	t.Run("-allow-remote", func(t *testing.T) {
		t.Parallel()
		// Binds every interface, sends nothing to any of them.
		cmd := exec.Command(binary, append(base, "-listen", "0.0.0.0:0", "-allow-remote")...)
		var stderr lockedBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(stderr.String(), "listening on http://") {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("no listening line:\n%s", stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("exit: %v\n%s", err, stderr.String())
		}
	})
}

func TestSignProxyUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	u := newTestUser(t, dir, "", "alice")
	base := []string{"sign-proxy", "-listen", "127.0.0.1:0", "-upstream", "http://127.0.0.1:1"}
	with := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no user", with("-key", u.keyFile), "-user NAME is required"},
		{"no key", with("-user", "alice"), "give -key FILE or -agent"},
		{"key and agent", with("-user", "alice", "-key", u.keyFile, "-agent"), "-key and -agent exclude each other"},
		{"agent-key without agent", with("-user", "alice", "-key", u.keyFile, "-agent-key", "x"), "-agent-key needs -agent"},
		{"passphrase with agent", with("-user", "alice", "-agent", "-passphrase-file", "p"), "-passphrase-file goes with -key"},
		{"retries", with("-user", "alice", "-key", u.keyFile, "-retries", "-1"), "-retries -1"},
		{"bad user", with("-user", "a\x01", "-key", u.keyFile), "-user: not a valid username"},
		{"no upstream", []string{"sign-proxy", "-listen", "127.0.0.1:0", "-user", "a", "-key", u.keyFile}, "-upstream URL is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			runCLI(t, tt.args...).wantUsageError(t, "sign-proxy", tt.want)
		})
	}
	t.Run("unreadable key", func(t *testing.T) {
		t.Parallel()
		runCLI(t, with("-user", "alice", "-key", filepath.Join(dir, "none"))...).wantInputError(t, "none")
	})
	t.Run("no agent", func(t *testing.T) {
		t.Parallel()
		runCLI(t, with("-user", "alice", "-agent")...).wantInputError(t, "no ssh-agent")
	})
	t.Run("encrypted key without a passphrase", func(t *testing.T) {
		t.Parallel()
		key := filepath.Join(dir, "enc")
		pass := filepath.Join(dir, "pass")
		os.WriteFile(pass, []byte("correct horse\n"), 0o600)
		runCLI(t, "keygen", "-passphrase-file", pass, "-o", key).want(t, 0)
		runCLI(t, with("-user", "alice", "-key", key)...).wantInputError(t, "-passphrase-file")
		p := startProxy(t, nil, with("-user", "alice", "-key", key, "-passphrase-file", pass)...)
		p.stop(t, 10*time.Second)
		if strings.Contains(p.stderr.String(), "correct horse") {
			t.Fatal("the passphrase is in the log")
		}
	})
}

// TestSignProxySkew: behind a verifier whose clock is a minute ahead of
// the signer's, the first request is refused as stale, the Transport learns
// the offset from the Date header and sends it again, body and all (the
// spool's GetBody), with a new token; later requests go through at once.
func TestSignProxySkew(t *testing.T) {
	t.Parallel()
	u := newTestUser(t, t.TempDir(), "", "alice")
	keys := asymjwt.NewMemoryKeyStore()
	if err := keys.Add("alice", mustKey(t, u.keyFile).Public()); err != nil {
		t.Fatal(err)
	}
	v, err := asymjwt.NewVerifier(keys)
	if err != nil {
		t.Fatal(err)
	}
	var attempts atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprint(w, n)
		})).ServeHTTP(w, r)
	}))
	defer up.Close()
	behind, err := asymjwt.NewSigner("alice", mustKey(t, u.keyFile), asymjwt.WithClock(func() time.Time { return time.Now().Add(-time.Minute) }))
	if err != nil {
		t.Fatal(err)
	}
	upURL, _ := url.Parse(up.URL)
	transport := newUpstreamTransport(10 * time.Second)
	defer transport.CloseIdleConnections()
	front := httptest.NewServer(newSignProxy(behind, upURL, transport, 2, t.TempDir(), slog.New(slog.DiscardHandler)))
	defer front.Close()

	for i, want := range []int64{2, 1} {
		before := attempts.Load()
		resp, body := do(t, nil, mustRequest(t, "POST", front.URL+"/x", strings.NewReader(strings.Repeat("x", spoolMemory+1))))
		if resp.StatusCode != 200 || string(body) != fmt.Sprint(spoolMemory+1) {
			t.Fatalf("request %d: %s %q", i, resp.Status, body)
		}
		if got := attempts.Load() - before; got != want {
			t.Fatalf("request %d: %d attempts, want %d", i, got, want)
		}
	}
}

func mustRequest(t testing.TB, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestRetryable is sign-proxy's rule for sending a request again.
func TestRetryable(t *testing.T) {
	t.Parallel()
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	answer := func(status int, header ...string) *http.Response {
		h := http.Header{}
		for i := 0; i+1 < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		return &http.Response{StatusCode: status, Header: h}
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		method string
		header string // a header the request carries
		ctx    context.Context
		resp   *http.Response
		err    error
		want   bool
	}{
		{"POST, no connection", "POST", "", nil, nil, dial, true},
		{"POST, connection reset", "POST", "", nil, nil, reset, false},
		{"GET, connection reset", "GET", "", nil, nil, reset, true},
		{"POST with Idempotency-Key, connection reset", "POST", "Idempotency-Key", nil, nil, reset, true},
		{"GET, timeout", "GET", "", nil, nil, timeout, false},
		{"POST, verifier could not verify", "POST", "", nil, answer(503, "WWW-Authenticate", `JWT error="unavailable"`), nil, true},
		{"POST, service 503", "POST", "", nil, answer(503), nil, false},
		{"PUT, service 503", "PUT", "", nil, answer(503), nil, true},
		{"DELETE, 502", "DELETE", "", nil, answer(502), nil, true},
		{"GET, 504", "GET", "", nil, answer(504), nil, true},
		{"GET, 500", "GET", "", nil, answer(500), nil, false},
		{"GET, 401 replay", "GET", "", nil, answer(401, "WWW-Authenticate", `JWT error="replay"`), nil, false},
		{"GET, 429", "GET", "", nil, answer(429), nil, false},
		{"GET, 200", "GET", "", nil, answer(200), nil, false},
		{"GET, caller gone", "GET", "", canceled, nil, dial, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			req, _ := http.NewRequestWithContext(ctx, tt.method, "http://x/", nil)
			if tt.header != "" {
				req.Header.Set(tt.header, "1")
			}
			if got := retryable(req, tt.resp, tt.err); got != tt.want {
				t.Fatalf("retryable = %v, want %v", got, tt.want)
			}
		})
	}
	if d := backoff(0, answer(503, "Retry-After", "1")); d != time.Second {
		t.Errorf("Retry-After 1: wait %v", d)
	}
	for attempt := range 8 {
		if d := backoff(attempt, answer(503, "Retry-After", "3600")); d <= 0 || d > retryWaitMax {
			t.Errorf("attempt %d, Retry-After 3600: wait %v", attempt, d)
		}
	}
}
