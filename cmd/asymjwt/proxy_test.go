package main

// Helpers for the end-to-end tests of verify-proxy and sign-proxy: the
// proxies run as real processes of the binary TestMain built; upstream is
// an httptest server in the test process.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt"
	"github.com/asymjwt/asymjwt/internal/testenv"
)

// proxyProcess is a running asymjwt verify-proxy or sign-proxy.
type proxyProcess struct {
	cmd        *exec.Cmd
	URL        string // http://HOST:PORT from its "listening on" line
	MetricsURL string // from its "metrics on" line, if any
	stderr     *lockedBuffer
	exited     chan struct{}
	exitCode   int
}

// startProxy starts the binary with args and env (added to an environment
// without SSH_AUTH_SOCK) and waits for its "listening on" line. The process
// is killed when the test ends, if it is still running.
func startProxy(t testing.TB, env []string, args ...string) *proxyProcess {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the proxy tests send signals and read /proc")
	}
	cmd := exec.Command(binary, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SSH_AUTH_SOCK=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proxyProcess{cmd: cmd, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.stderr.Write([]byte(line + "\n"))
			if u, ok := strings.CutPrefix(line, "metrics on "); ok {
				p.MetricsURL = u // written before listening is sent
			}
			if u, ok := strings.CutPrefix(line, "listening on "); ok {
				listening <- u
			}
		}
		io.Copy(io.Discard, pipe)
		cmd.Wait()
		p.exitCode = cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", args[0], p.stderr.String())
		}
	})
	select {
	case p.URL = <-listening:
	case <-p.exited:
		t.Fatalf("asymjwt %s exited with %d before listening:\n%s", strings.Join(args, " "), p.exitCode, p.stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("asymjwt %s did not print its listening line in 15s:\n%s", strings.Join(args, " "), p.stderr.String())
	}
	if !strings.HasPrefix(p.URL, "http://127.") && !strings.HasPrefix(p.URL, "http://[::1]:") {
		t.Fatalf("listening on %q, want a loopback address", p.URL)
	}
	return p
}

// signal sends sig to the process.
func (p *proxyProcess) signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// stop sends SIGTERM and returns the exit code, failing the test if the
// process has not exited within d.
func (p *proxyProcess) stop(t testing.TB, d time.Duration) int {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	return p.wait(t, d)
}

func (p *proxyProcess) wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.exitCode
	case <-time.After(d):
		t.Fatalf("the proxy did not exit within %v:\n%s", d, p.stderr.String())
		return -1
	}
}

// memory returns the process's resident set size and its peak (VmRSS,
// VmHWM in /proc/PID/status), in bytes.
func (p *proxyProcess) memory(t testing.TB) (rss, peak int64) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Skipf("cannot read the process's memory: %v", err)
	}
	for line := range strings.Lines(string(data)) {
		name, value, _ := strings.Cut(line, ":")
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			peak = kb << 10
		}
	}
	if rss == 0 || peak == 0 {
		t.Skip("no VmRSS or VmHWM in /proc/PID/status")
	}
	return rss, peak
}

// resetPeak resets VmHWM to the current RSS (Linux: "5" to clear_refs),
// so the next peak is that of what follows. It reports whether it could.
func (p *proxyProcess) resetPeak() bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0) == nil
}

// logLines returns the lines the process wrote after its listening line.
func (p *proxyProcess) logLines() []string {
	out := p.stderr.String()
	_, after, _ := strings.Cut(out, "\nlistening on ")
	lines := strings.Split(strings.TrimSpace(after), "\n")
	return lines[1:] // the rest of the listening line
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testUser is a user with an Ed25519 key: its key file, public key line in
// a keys directory, and a Signer.
type testUser struct {
	name    string
	keyFile string
	signer  *asymjwt.Signer
	fp      string
}

// newTestUser makes a key for name in dir and adds its public half to
// keysDir/<name>.pub (when keysDir is not empty).
func newTestUser(t testing.TB, dir, keysDir, name string) *testUser {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privPEM, pubLine, err := marshalKeyPair(priv, name+"@test", nil)
	if err != nil {
		t.Fatal(err)
	}
	u := &testUser{name: name, keyFile: filepath.Join(dir, name+"_ed25519")}
	if err := os.WriteFile(u.keyFile, privPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if keysDir != "" {
		if err := os.WriteFile(filepath.Join(keysDir, name+".pub"), pubLine, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	key, err := asymjwt.KeyFromSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	if u.signer, err = asymjwt.NewSigner(name, key); err != nil {
		t.Fatal(err)
	}
	u.fp = u.signer.KeyID()
	return u
}

// token signs a token for method and url.
func (u *testUser) token(t testing.TB, method, url string) string {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := u.signer.Sign(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// proxyEnv is a verify-proxy's surroundings: a keys directory with user
// alice, and an upstream.
type proxyEnv struct {
	dir, keys string
	alice     *testUser
	up        *upstream
}

func newProxyEnv(t testing.TB) *proxyEnv {
	t.Helper()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	return &proxyEnv{dir: dir, keys: keys, alice: newTestUser(t, dir, keys, "alice"), up: newUpstream(t)}
}

// verifyProxy starts a verify-proxy in front of the env's upstream.
func (e *proxyEnv) verifyProxy(t testing.TB, extra ...string) *proxyProcess {
	t.Helper()
	args := append([]string{"verify-proxy", "-listen", "127.0.0.1:0", "-upstream", e.up.URL, "-keys", e.keys}, extra...)
	return startProxy(t, nil, args...)
}

// upstream is the service behind the proxies. It records what reached it.
type upstream struct {
	*httptest.Server
	hits    atomic.Int64
	arrived chan string   // /block: a request arrived; /lines: a line of the body
	release chan struct{} // /block and /stream: closed to let them finish
	flaky   sync.Map      // /flaky: keys that have failed once
}

// echoed is what /echo answers: the request as upstream saw it.
type echoed struct {
	Method  string              `json:"method"`
	URI     string              `json:"uri"`
	Host    string              `json:"host"`
	Header  map[string][]string `json:"header"`
	Trailer map[string][]string `json:"trailer"`
	BodyLen int64               `json:"body_len"`
	BodySHA string              `json:"body_sha256"`
}

func newUpstream(t testing.TB) *upstream {
	t.Helper()
	u := &upstream{arrived: make(chan string, 16), release: make(chan struct{})}
	mux := http.NewServeMux()
	echo := func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(echoed{
			Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header, Trailer: r.Trailer,
			BodyLen: n, BodySHA: hex.EncodeToString(h.Sum(nil)),
		})
	}
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("/flaky/", func(w http.ResponseWriter, r *http.Request) {
		if _, failed := u.flaky.LoadOrStore(r.URL.Path, true); !failed {
			io.Copy(io.Discard, r.Body)
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		echo(w, r)
	})
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		io.Copy(w, patternReader(n))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("/block", func(w http.ResponseWriter, r *http.Request) {
		u.arrived <- r.Header.Get(asymjwt.UserHeader)
		<-u.release
		io.WriteString(w, "done")
	})
	mux.HandleFunc("/lines", func(w http.ResponseWriter, r *http.Request) {
		br := bufio.NewReader(r.Body)
		n := 0
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				n++
				u.arrived <- line
			}
			if err != nil {
				break
			}
		}
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		http.NewResponseController(w).Flush()
		select {
		case <-u.release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "second\n")
	})
	mux.HandleFunc("/ws", websocketEcho)
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		u.unblock()
		u.Server.CloseClientConnections()
		u.Server.Close()
	})
	return u
}

// unblock lets /block and /stream requests finish; it may be called more
// than once.
func (u *upstream) unblock() {
	select {
	case <-u.release:
	default:
		close(u.release)
	}
}

// websocketGUID is RFC 6455's magic string for Sec-WebSocket-Accept.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func websocketAccept(key string) string {
	h := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// websocketEcho answers a WebSocket handshake (RFC 6455 §4.2) and echoes
// the bytes that follow. It says who it saw in X-Saw-User.
func websocketEcho(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || r.Header.Get("Sec-WebSocket-Key") == "" {
		http.Error(w, "not a WebSocket handshake", http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nX-Saw-User: %s\r\n\r\n",
		websocketAccept(r.Header.Get("Sec-WebSocket-Key")), r.Header.Get(asymjwt.UserHeader))
	brw.Flush()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, err := brw.Read(buf)
		if n > 0 {
			if _, err := conn.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// websocketRoundTrip opens a WebSocket through proxyURL+"/ws" with the
// extra request header lines, sends one masked text frame and returns the
// handshake response and the bytes echoed.
func websocketRoundTrip(t testing.TB, proxyURL string, headerLines ...string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(proxyURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	req := "GET /ws HTTP/1.1\r\nHost: " + strings.TrimPrefix(proxyURL, "http://") + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\n"
	for _, l := range headerLines {
		req += l + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return resp, nil
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != websocketAccept(key) {
		t.Fatalf("Sec-WebSocket-Accept %q, want %q", got, websocketAccept(key))
	}
	// A masked text frame "hello" (RFC 6455 §5.2); the echo returns it as is.
	payload, mask := []byte("hello"), []byte{1, 2, 3, 4}
	frame := append([]byte{0x81, 0x80 | byte(len(payload))}, mask...)
	for i, c := range payload {
		frame = append(frame, c^mask[i%4])
	}
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(frame))
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatalf("reading the echoed frame: %v", err)
	}
	if !bytes.Equal(got, frame) {
		t.Fatalf("echoed %x, want %x", got, frame)
	}
	return resp, got
}

// patternReader returns n bytes of a fixed pattern, without holding them.
func patternReader(n int64) io.Reader {
	return io.LimitReader(&repeatReader{}, n)
}

// patternPeriod is the length of the pattern, a prime, so that no power of
// two chunking lines up with it.
const patternPeriod = 65521

// repeatReader reads a pattern whose bytes depend on their offset only.
type repeatReader struct {
	off   int
	table []byte
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.table == nil {
		r.table = make([]byte, patternPeriod)
		for i := range r.table {
			r.table[i] = byte(i*7 + i>>8)
		}
	}
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.table[r.off:])
		n += c
		r.off = (r.off + c) % patternPeriod
	}
	return n, nil
}

// patternSHA256 is the SHA-256 of patternReader(n).
func patternSHA256(n int64) string {
	h := sha256.New()
	io.Copy(h, patternReader(n))
	return hex.EncodeToString(h.Sum(nil))
}

// rawRequest sends raw (a request without its final blank line, lines
// separated by "\r\n") on a new connection to proxyURL and reads the
// response and its body.
func rawRequest(t testing.TB, proxyURL, raw string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(proxyURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp, body
}

// get sends a GET with the given headers and returns the response and body.
func get(t testing.TB, client *http.Client, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, client, req)
}

func do(t testing.TB, client *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// decodeEcho decodes an /echo answer.
func decodeEcho(t testing.TB, resp *http.Response, body []byte) echoed {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s, body %q", resp.Status, body)
	}
	var e echoed
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("upstream's answer %q: %v", body, err)
	}
	return e
}

// identityHeaders returns every header of h that a CGI server would read
// as an identity header, by its name as it came.
func identityHeaders(h map[string][]string) map[string][]string {
	out := map[string][]string{}
	for name, v := range h {
		n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		if n == "asymjwt-user" || n == "asymjwt-key" {
			out[name] = v
		}
	}
	return out
}

// redisServer is a redis-server of the test's own on a free loopback port.
// It skips the test without redis-server (fails it under CI=true).
func startRedis(t testing.TB) string {
	t.Helper()
	bin := testenv.LookPath(t, "redis-server")
	var lastErr error
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		_, port, _ := net.SplitHostPort(addr)
		cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--dir", t.TempDir(),
			"--save", "", "--appendonly", "no", "--loglevel", "warning")
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		stop := func() { cmd.Process.Kill(); <-exited }
		if lastErr = waitRedis(addr, exited); lastErr == nil {
			t.Cleanup(stop)
			return addr
		}
		stop()
		lastErr = fmt.Errorf("%w: %s", lastErr, out.String())
	}
	t.Fatalf("starting redis-server: %v", lastErr)
	return ""
}

// waitRedis waits until the Redis at addr answers PING.
func waitRedis(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("redis-server exited")
		default:
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.SetDeadline(time.Now().Add(time.Second))
			io.WriteString(conn, "PING\r\n")
			line, _ := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if line == "+PONG\r\n" {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return errors.New("redis-server did not answer PING within 10s")
}
