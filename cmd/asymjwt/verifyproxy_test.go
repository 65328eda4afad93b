package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestVerifyProxyIdentityHeaders is SECURITY.md row G1: identity headers
// sent by a client, in every spelling a service could read as one, never
// reach upstream; with a valid token upstream sees exactly the proxy's
// values, and without one nothing reaches it. The requests are written by
// hand, so their header names go out as spelled here.
func TestVerifyProxyIdentityHeaders(t *testing.T) {
	t.Parallel()
	env := newProxyEnv(t)
	p := env.verifyProxy(t, "-log-format", "json")
	host := strings.TrimPrefix(p.URL, "http://")

	forms := []struct {
		name  string
		lines []string // header lines
		body  string   // a chunked body with trailers when not empty
	}{
		{"canonical", []string{"Asymjwt-User: mallory", "Asymjwt-Key: SHA256:forged"}, ""},
		{"lower case", []string{"asymjwt-user: mallory", "asymjwt-key: SHA256:forged"}, ""},
		{"upper case", []string{"ASYMJWT-USER: mallory", "ASYMJWT-KEY: SHA256:forged"}, ""},
		{"mixed case", []string{"aSyMjWt-UsEr: mallory"}, ""},
		{"repeated", []string{"Asymjwt-User: mallory", "Asymjwt-User: alice", "asymjwt-user: root", "Asymjwt-Key: a", "Asymjwt-Key: b"}, ""},
		{"comma list", []string{"Asymjwt-User: alice, mallory"}, ""},
		{"underscores", []string{"Asymjwt_User: mallory", "asymjwt_key: SHA256:forged"}, ""},
		{"underscore and dash", []string{"Asymjwt_User: mallory", "Asymjwt-User: root", "ASYMJWT_KEY: x"}, ""},
		{"listed in Connection", []string{"Connection: keep-alive, Asymjwt-User, Asymjwt-Key", "Asymjwt-User: mallory", "Asymjwt-Key: x"}, ""},
		{"listed in Connection only", []string{"Connection: Asymjwt-User", "Connection: asymjwt_key"}, ""},
		{"listed in Connection with underscores", []string{"Connection: Asymjwt_User", "Asymjwt_User: mallory"}, ""},
		{"in trailers", []string{"Transfer-Encoding: chunked", "Trailer: Asymjwt-User, Asymjwt_Key"},
			"5\r\nhello\r\n0\r\nAsymjwt-User: mallory\r\nAsymjwt_Key: x\r\n\r\n"},
		{"in undeclared trailers", []string{"Transfer-Encoding: chunked"},
			"5\r\nhello\r\n0\r\nasymjwt-user: mallory\r\nAsymjwt-Key: x\r\n\r\n"},
	}
	var tokens []string
	for _, f := range forms {
		for _, withToken := range []bool{true, false} {
			name := f.name + "/no token"
			if withToken {
				name = f.name + "/valid token"
			}
			t.Run(name, func(t *testing.T) {
				method := "GET"
				if f.body != "" {
					method = "POST"
				}
				raw := method + " /echo HTTP/1.1\r\nHost: " + host + "\r\n"
				if withToken {
					tok := env.alice.token(t, method, p.URL+"/echo")
					tokens = append(tokens, tok)
					raw += "Authorization: JWT " + tok + "\r\n"
				}
				raw += strings.Join(f.lines, "\r\n") + "\r\n"
				if f.body == "" {
					raw += "Content-Length: 0\r\n\r\n"
				} else {
					raw += "\r\n" + f.body
				}
				before := env.up.hits.Load()
				resp, body := rawRequest(t, p.URL, raw)
				if !withToken {
					if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `JWT error="no_token"` {
						t.Fatalf("without a token: %s %v %q", resp.Status, resp.Header, body)
					}
					if env.up.hits.Load() != before {
						t.Fatal("a request without a token reached upstream")
					}
					return
				}
				e := decodeEcho(t, resp, body)
				want := map[string][]string{asymjwt.UserHeader: {"alice"}, asymjwt.KeyHeader: {env.alice.fp}}
				if got := identityHeaders(e.Header); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("upstream saw identity headers %v, want %v", got, want)
				}
				if got := identityHeaders(e.Trailer); len(got) != 0 {
					t.Fatalf("upstream saw identity trailers %v", got)
				}
				for _, v := range e.Header["Connection"] {
					if strings.Contains(strings.ToLower(v), "asymjwt") {
						t.Fatalf("upstream saw Connection: %s", v)
					}
				}
				if len(e.Header["Authorization"]) != 0 {
					t.Fatal("upstream saw the Authorization header")
				}
			})
		}
	}

	t.Run("a key added while running is used", func(t *testing.T) {
		carol := newTestUser(t, env.dir, env.keys, "carol")
		resp, body := get(t, nil, p.URL+"/echo", "Authorization", "JWT "+carol.token(t, "GET", p.URL+"/echo"))
		if e := decodeEcho(t, resp, body); e.Header[asymjwt.UserHeader][0] != "carol" {
			t.Fatalf("upstream saw %v", identityHeaders(e.Header))
		}
	})

	t.Run("a username that cannot be passed as it is", func(t *testing.T) {
		// " alice" would reach a service as "alice": refused, never forwarded.
		u := newTestUser(t, env.dir, env.keys, " alice")
		before := env.up.hits.Load()
		resp, body := get(t, nil, p.URL+"/echo", "Authorization", "JWT "+u.token(t, "GET", p.URL+"/echo"))
		if resp.StatusCode != http.StatusForbidden || env.up.hits.Load() != before {
			t.Fatalf("%s %q; upstream hits %d -> %d", resp.Status, body, before, env.up.hits.Load())
		}
	})

	// Logs: JSON lines, one per request, never a token.
	if code := p.stop(t, 10*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	lines := p.logLines()
	requests := 0
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == "request" {
			requests++
		}
	}
	if requests != len(forms)+1 {
		t.Fatalf("%d request log lines, want %d:\n%s", requests, len(forms)+1, strings.Join(lines, "\n"))
	}
	out := p.stderr.String()
	for _, tok := range tokens {
		if strings.Contains(out, tok) || strings.Contains(out, tok[strings.LastIndexByte(tok, '.')+1:]) {
			t.Fatal("the log holds a token or its signature")
		}
	}
}

// TestVerifyProxyReplayAcrossRedis: two proxies sharing a real Redis
// refuse a token the other accepted, and of one token raced at both,
// exactly one request passes (SECURITY.md row R1, through the command).
// -public-url binds tokens to the fleet's name rather than a proxy's.
func TestVerifyProxyReplayAcrossRedis(t *testing.T) {
	t.Parallel()
	redisAddr := startRedis(t)
	env := newProxyEnv(t)
	const public = "https://api.example.test"
	a := env.verifyProxy(t, "-redis", redisAddr, "-public-url", public, "-require-binding")
	b := env.verifyProxy(t, "-redis", "redis://"+redisAddr+"/0", "-public-url", public, "-require-binding")

	tok := env.alice.token(t, "GET", public+"/echo")
	resp, body := get(t, nil, a.URL+"/echo", "Authorization", "JWT "+tok)
	e := decodeEcho(t, resp, body)
	if e.Header["X-Forwarded-Proto"][0] != "https" || e.Header["X-Forwarded-Host"][0] != "api.example.test" {
		t.Fatalf("X-Forwarded-Proto/Host %v %v, want the public URL's", e.Header["X-Forwarded-Proto"], e.Header["X-Forwarded-Host"])
	}
	for _, p := range []*proxyProcess{b, a} {
		resp, _ := get(t, nil, p.URL+"/echo", "Authorization", "JWT "+tok)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `JWT error="replay"` {
			t.Fatalf("replayed token: %s %q", resp.Status, resp.Header.Get("WWW-Authenticate"))
		}
	}
	// Bound to another host: refused.
	other := env.alice.token(t, "GET", "https://other.example.test/echo")
	if resp, _ := get(t, nil, b.URL+"/echo", "Authorization", "JWT "+other); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token bound to another host: %s", resp.Status)
	}

	// One token raced at both proxies: exactly one success.
	tok = env.alice.token(t, "GET", public+"/echo")
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := range 16 {
		p := a
		if i%2 == 1 {
			p = b
		}
		wg.Go(func() {
			req, _ := http.NewRequest("GET", p.URL+"/echo", nil)
			req.Header.Set("Authorization", "JWT "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[200] != 1 || statuses[401] != 15 {
		t.Fatalf("statuses %v, want one 200 and fifteen 401", statuses)
	}
}

// TestVerifyProxyStreaming is SECURITY.md row G3 for bodies: 50 MB up and
// 50 MB down pass with the proxy's memory flat, and a flush upstream
// reaches the client before upstream's answer is complete.
func TestVerifyProxyStreaming(t *testing.T) {
	t.Parallel()
	env := newProxyEnv(t)
	p := env.verifyProxy(t)

	// Warm up: the first request loads keys and grows pools.
	get(t, nil, p.URL+"/echo", "Authorization", "JWT "+env.alice.token(t, "GET", p.URL+"/echo"))
	rss, _ := p.memory(t)
	if !p.resetPeak() {
		t.Log("cannot reset VmHWM: the peak since start is compared")
	}

	const size = 50 << 20
	req, _ := http.NewRequest("POST", p.URL+"/echo", patternReader(size))
	req.ContentLength = size
	req.Header.Set("Authorization", "JWT "+env.alice.token(t, "POST", p.URL+"/echo"))
	resp, body := do(t, nil, req)
	e := decodeEcho(t, resp, body)
	if e.BodyLen != size || e.BodySHA != patternSHA256(size) {
		t.Fatalf("upstream got %d bytes (sha256 %s), want %d", e.BodyLen, e.BodySHA, size)
	}

	resp, err := func() (*http.Response, error) {
		url := fmt.Sprintf("%s/download?n=%d", p.URL, size)
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "JWT "+env.alice.token(t, "GET", url)) // the query is bound too
		return http.DefaultClient.Do(req)
	}()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	n, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != size {
		t.Fatalf("downloaded %d bytes, %v", n, err)
	}

	_, peak := p.memory(t)
	// Holding either body would add 50 MB; streaming adds buffers.
	const bound = 16 << 20
	t.Logf("verify-proxy RSS %d MiB before, peak %d MiB while moving 2 x 50 MB", rss>>20, peak>>20)
	if peak-rss > bound {
		t.Fatalf("verify-proxy's peak RSS grew by %d MiB moving 50 MB bodies (RSS %d MiB before): not streamed", (peak-rss)>>20, rss>>20)
	}

	// A slow body streams: upstream reads its first line while the client
	// still holds the second.
	pr, pw := io.Pipe()
	req, _ = http.NewRequest("POST", p.URL+"/lines", pr)
	req.Header.Set("Authorization", "JWT "+env.alice.token(t, "POST", p.URL+"/lines"))
	answered := make(chan string, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered <- string(b)
	}()
	io.WriteString(pw, "one\n")
	select {
	case line := <-env.up.arrived:
		if line != "one\n" {
			t.Fatalf("upstream read %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("upstream did not get the body's first line before the rest was sent: the body was held")
	}
	io.WriteString(pw, "two\n")
	pw.Close()
	<-env.up.arrived
	if got := <-answered; got != "2" {
		t.Fatalf("answer %q", got)
	}

	// A flush passes at once: "first" arrives while upstream still holds
	// "second".
	req, _ = http.NewRequest("GET", p.URL+"/stream", nil)
	req.Header.Set("Authorization", "JWT "+env.alice.token(t, "GET", p.URL+"/stream"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := readLineWithin(br, 5*time.Second)
	if err != nil || line != "first\n" {
		t.Fatalf("first line %q, %v: the flush did not pass", line, err)
	}
	env.up.unblock()
	if rest, _ := io.ReadAll(br); string(rest) != "second\n" {
		t.Fatalf("rest %q", rest)
	}
}

// readLineWithin reads a line, failing after d.
func readLineWithin(br *bufio.Reader, d time.Duration) (string, error) {
	type result struct {
		line string
		err  error
	}
	c := make(chan result, 1)
	go func() {
		line, err := br.ReadString('\n')
		c <- result{line, err}
	}()
	select {
	case r := <-c:
		return r.line, r.err
	case <-time.After(d):
		return "", fmt.Errorf("no line within %v", d)
	}
}

// TestVerifyProxyUpstreamFaults is SECURITY.md row G3 for upstream: slow
// is 504 after -upstream-timeout, down is 502, both only after
// verification (a bad token still gets 401), and both are counted.
func TestVerifyProxyUpstreamFaults(t *testing.T) {
	t.Parallel()
	env := newProxyEnv(t)
	p := env.verifyProxy(t, "-upstream-timeout", "300ms", "-metrics", "127.0.0.1:0")

	start := time.Now()
	resp, body := get(t, nil, p.URL+"/slow", "Authorization", "JWT "+env.alice.token(t, "GET", p.URL+"/slow"))
	if resp.StatusCode != http.StatusGatewayTimeout || time.Since(start) > 5*time.Second {
		t.Fatalf("slow upstream: %s %q after %v", resp.Status, body, time.Since(start))
	}
	if resp, _ := get(t, nil, p.URL+"/slow"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("slow upstream, no token: %s", resp.Status)
	}

	env.up.Close()
	resp, body = get(t, nil, p.URL+"/echo", "Authorization", "JWT "+env.alice.token(t, "GET", p.URL+"/echo"))
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("upstream down: %s %q", resp.Status, body)
	}
	if resp, _ := get(t, nil, p.URL+"/echo", "Authorization", "JWT not.a.token"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("upstream down, bad token: %s", resp.Status)
	}

	m := scrape(t, p.MetricsURL)
	for reason, want := range map[string]float64{"timeout": 1, "error": 1} {
		if got := counterValue(m, "asymjwt_upstream_errors_total", "reason", reason); got != want {
			t.Errorf("asymjwt_upstream_errors_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if got := counterValue(m, "asymjwt_requests_total", "result", "ok"); got != 2 {
		t.Errorf(`asymjwt_requests_total{result="ok"} = %v, want 2 (both verified before upstream failed)`, got)
	}
}

// TestVerifyProxyShutdown is SECURITY.md row G3 for SIGTERM: the proxy
// stops accepting at once, the request in flight completes, and it exits 0.
func TestVerifyProxyShutdown(t *testing.T) {
	t.Parallel()
	env := newProxyEnv(t)
	p := env.verifyProxy(t, "-grace", "20s", "-metrics", "127.0.0.1:0")

	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", p.URL+"/block", nil)
		req.Header.Set("Authorization", "JWT "+env.alice.token(t, "GET", p.URL+"/block"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, string(body), err}
	}()
	select {
	case user := <-env.up.arrived:
		if user != "alice" {
			t.Fatalf("upstream saw user %q", user)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach upstream")
	}

	p.signal(t, syscall.SIGTERM)
	// New connections are refused soon after the signal...
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(p.URL, "http://"), time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("the proxy still accepts connections 5s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// ...and /healthz says so, while the request in flight holds the
	// process.
	if resp, err := http.Get(p.MetricsURL + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("/healthz while shutting down: %s", resp.Status)
		}
	}
	select {
	case <-p.exited:
		t.Fatalf("the proxy exited with a request in flight:\n%s", p.stderr.String())
	case <-time.After(200 * time.Millisecond):
	}

	env.up.unblock()
	r := <-done
	if r.err != nil || r.status != http.StatusOK || r.body != "done" {
		t.Fatalf("the request in flight: %d %q %v", r.status, r.body, r.err)
	}
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0:\n%s", code, p.stderr.String())
	}
}

// TestVerifyProxyWebSocket: an Upgrade passes, with the identity headers,
// and bytes flow both ways; without a token it is refused.
func TestVerifyProxyWebSocket(t *testing.T) {
	t.Parallel()
	env := newProxyEnv(t)
	p := env.verifyProxy(t)
	resp, _ := websocketRoundTrip(t, p.URL, "Authorization: JWT "+env.alice.token(t, "GET", p.URL+"/ws"), "Asymjwt_User: mallory")
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("X-Saw-User") != "alice" {
		t.Fatalf("%s, upstream saw user %q", resp.Status, resp.Header.Get("X-Saw-User"))
	}
	before := env.up.hits.Load()
	if resp, _ := websocketRoundTrip(t, p.URL); resp.StatusCode != http.StatusUnauthorized || env.up.hits.Load() != before {
		t.Fatalf("without a token: %s", resp.Status)
	}
}

// TestVerifyProxyMetrics: each result is counted, and /metrics parses with
// Prometheus's own text parser.
func TestVerifyProxyMetrics(t *testing.T) {
	t.Parallel()
	env := newProxyEnv(t)
	p := env.verifyProxy(t, "-metrics", "127.0.0.1:0")
	if !strings.HasPrefix(p.MetricsURL, "http://127.0.0.1:") {
		t.Fatalf("metrics on %q", p.MetricsURL)
	}
	url := p.URL + "/echo"
	replayed := env.alice.token(t, "GET", url)
	mallory := newTestUser(t, t.TempDir(), "", "alice") // alice's name, another key
	stale, err := asymjwt.NewSigner("alice", mustKey(t, env.alice.keyFile), asymjwt.WithClock(func() time.Time { return time.Now().Add(-time.Minute) }))
	if err != nil {
		t.Fatal(err)
	}
	staleReq, _ := http.NewRequest("GET", url, nil)
	staleTok, _ := stale.Sign(t.Context(), staleReq)
	for _, c := range []struct {
		auth   string
		status int
	}{
		{"JWT " + replayed, 200},
		{"JWT " + env.alice.token(t, "GET", url), 200},
		{"JWT " + replayed, 401},
		{"", 401},
		{"JWT " + mallory.token(t, "GET", url), 401},
		{"JWT " + staleTok, 401},
	} {
		var h []string
		if c.auth != "" {
			h = []string{"Authorization", c.auth}
		}
		if resp, _ := get(t, nil, url, h...); resp.StatusCode != c.status {
			t.Fatalf("%.20s: %s, want %d", c.auth, resp.Status, c.status)
		}
	}

	resp, body := get(t, nil, p.MetricsURL+"/healthz")
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Fatalf("/healthz: %s %q", resp.Status, body)
	}
	m := scrape(t, p.MetricsURL)
	for result, want := range map[string]float64{"ok": 2, "replay": 1, "no_token": 1, "invalid_signature": 1, "stale": 1} {
		if got := counterValue(m, "asymjwt_requests_total", "result", result); got != want {
			t.Errorf("asymjwt_requests_total{result=%q} = %v, want %v", result, got, want)
		}
	}
	for _, c := range []struct {
		name, label, value string
		want               uint64
	}{
		{"asymjwt_verify_seconds", "", "", 6},
		{"asymjwt_key_store_seconds", "result", "ok", 5}, // all but the one without a token
		{"asymjwt_nonce_store_seconds", "result", "ok", 2},
		{"asymjwt_nonce_store_seconds", "result", "replay", 1},
		{"asymjwt_upstream_seconds", "", "", 2},
	} {
		if got := histogramCount(m, c.name, c.label, c.value); got != c.want {
			t.Errorf("%s{%s=%q} count = %d, want %d", c.name, c.label, c.value, got, c.want)
		}
	}
	if _, ok := m["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
}

func mustKey(t testing.TB, path string) asymjwt.Key {
	t.Helper()
	k, err := asymjwt.KeyFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// scrape reads metricsURL/metrics with Prometheus's text parser.
func scrape(t testing.TB, metricsURL string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(metricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	m, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return m
}

// findMetric returns the metric of family name whose label has value (any
// metric when label is empty).
func findMetric(m map[string]*dto.MetricFamily, name, label, value string) *dto.Metric {
	f := m[name]
	if f == nil {
		return nil
	}
	for _, metric := range f.GetMetric() {
		if label == "" {
			return metric
		}
		for _, l := range metric.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				return metric
			}
		}
	}
	return nil
}

func counterValue(m map[string]*dto.MetricFamily, name, label, value string) float64 {
	return findMetric(m, name, label, value).GetCounter().GetValue()
}

func histogramCount(m map[string]*dto.MetricFamily, name, label, value string) uint64 {
	return findMetric(m, name, label, value).GetHistogram().GetSampleCount()
}

func TestVerifyProxyUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	base := []string{"verify-proxy", "-listen", "127.0.0.1:0", "-upstream", "http://127.0.0.1:1", "-keys", keys}
	with := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no listen", []string{"verify-proxy", "-upstream", "http://x", "-keys", keys}, "-listen ADDR is required"},
		{"no upstream", []string{"verify-proxy", "-listen", ":0", "-keys", keys}, "-upstream URL is required"},
		{"no keys", []string{"verify-proxy", "-listen", ":0", "-upstream", "http://x"}, "-keys DIR is required"},
		{"listen without port", with("-listen", "127.0.0.1"), "want host:port"},
		{"relative upstream", with("-upstream", "/api"), "want an absolute http or https URL"},
		{"upstream with a query", with("-upstream", "http://x/?a=b"), "without user, query or fragment"},
		{"ftp upstream", with("-upstream", "ftp://x"), "want an absolute http or https URL"},
		{"log format", with("-log-format", "xml"), `-log-format "xml": want text or json`},
		{"public url", with("-public-url", "api.example.com"), "WithPublicURL"},
		{"redis", with("-redis", "nohost"), `-redis "nohost"`},
		{"metrics", with("-metrics", "9090"), `-metrics "9090"`},
		{"keys recheck", with("-keys-recheck", "-1s"), `-keys-recheck -1s: want 0 or a positive duration`},
		{"timeout", with("-upstream-timeout", "0s"), "must be positive"},
		{"argument", with("extra"), `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			runCLI(t, tt.args...).wantUsageError(t, "verify-proxy", tt.want)
		})
	}
	t.Run("unreadable keys", func(t *testing.T) {
		t.Parallel()
		runCLI(t, "verify-proxy", "-listen", "127.0.0.1:0", "-upstream", "http://x", "-keys", filepath.Join(dir, "none")).
			wantInputError(t, "not a readable key directory")
	})
	t.Run("address in use", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		runCLI(t, with("-listen", l.Addr().String())...).wantInputError(t, "cannot listen on "+l.Addr().String())
	})
	t.Run("help", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{{"verify-proxy", "-h"}, {"help", "verify-proxy"}, {"sign-proxy", "-h"}, {"help", "sign-proxy"}} {
			name := args[0]
			if name == "help" {
				name = args[1]
			}
			r := runCLI(t, args...).want(t, 0)
			if !strings.HasPrefix(r.stdout, "Usage: asymjwt "+name) || r.stderr != "" {
				t.Fatalf("%v: stdout %q stderr %q", args, r.stdout, r.stderr)
			}
		}
		if r := runCLI(t, "-h"); !strings.Contains(r.stdout, "verify-proxy") || !strings.Contains(r.stdout, "sign-proxy") {
			t.Fatalf("the command list lacks the proxies:\n%s", r.stdout)
		}
	})
}

// TestVerifyProxyBodyChangedInFlight: a body that does not match the
// Content-Digest its token binds is refused as a binding error (upstream
// gets it cut short, never whole, and the metrics count it), beside the
// same request untouched.
func TestVerifyProxyBodyChangedInFlight(t *testing.T) {
	t.Parallel()
	env := newProxyEnv(t)
	p := env.verifyProxy(t, "-metrics", "127.0.0.1:0")
	body := strings.Repeat(`{"to":"bob","amount":1}`, 400)
	digest, err := asymjwt.ContentDigest(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, sent string
		status     int
	}{
		{"untouched", body, http.StatusOK},
		{"changed, same length", strings.Replace(body, "bob", "eve", 1), http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// A token for the body and its Content-Digest, as the library's
			// Transport sends them; the body sent may differ.
			signed, _ := http.NewRequest("POST", p.URL+"/echo", nil)
			signed.Header.Set("Content-Digest", digest)
			tok, err := env.alice.signer.Sign(context.Background(), signed)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("POST", p.URL+"/echo", strings.NewReader(tt.sent))
			req.Header.Set("Authorization", "JWT "+tok)
			req.Header.Set("Content-Digest", digest)
			resp, got := do(t, nil, req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, got, tt.status)
			}
			if tt.status == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != `JWT error="binding"` {
				t.Fatalf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
			}
			if tt.status == http.StatusOK {
				if e := decodeEcho(t, resp, got); e.BodyLen != int64(len(body)) {
					t.Fatalf("upstream got %d bytes", e.BodyLen)
				}
			}
		})
	}
	// Both passed the headers' check; one body was refused after it.
	m := scrape(t, p.MetricsURL)
	if got := counterValue(m, "asymjwt_requests_total", "result", "ok"); got != 2 {
		t.Errorf(`asymjwt_requests_total{result="ok"} = %v, want 2`, got)
	}
	if got := counterValue(m, "asymjwt_bodies_refused_total", "result", "binding"); got != 1 {
		t.Errorf(`asymjwt_bodies_refused_total{result="binding"} = %v, want 1`, got)
	}
}

// TestVerifyProxyRequireBodyBinding: with -require-body-binding a body
// must be bound by its token; a request without a body needs no hcd.
func TestVerifyProxyRequireBodyBinding(t *testing.T) {
	t.Parallel()
	env := newProxyEnv(t)
	p := env.verifyProxy(t, "-require-body-binding")
	body := `{"to":"bob","amount":1}`
	digest, err := asymjwt.ContentDigest(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		method string
		body   string
		bound  bool // the token binds the body (hcd) and Content-Digest is sent
		status int
	}{
		{"body bound", "POST", body, true, http.StatusOK},
		{"body not bound", "POST", body, false, http.StatusUnauthorized},
		{"no body, no hcd", "GET", "", false, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			signed, _ := http.NewRequest(tt.method, p.URL+"/echo", nil)
			if tt.bound {
				signed.Header.Set("Content-Digest", digest)
			}
			tok, err := env.alice.signer.Sign(context.Background(), signed)
			if err != nil {
				t.Fatal(err)
			}
			var rd io.Reader
			if tt.body != "" {
				rd = strings.NewReader(tt.body)
			}
			req, _ := http.NewRequest(tt.method, p.URL+"/echo", rd)
			req.Header.Set("Authorization", "JWT "+tok)
			if tt.bound {
				req.Header.Set("Content-Digest", digest)
			}
			resp, got := do(t, nil, req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, got, tt.status)
			}
			if tt.status == http.StatusUnauthorized {
				if resp.Header.Get("WWW-Authenticate") != `JWT error="binding"` {
					t.Fatalf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
				}
				return
			}
			if e := decodeEcho(t, resp, got); e.BodyLen != int64(len(tt.body)) {
				t.Fatalf("upstream got %d bytes", e.BodyLen)
			}
		})
	}
}

// TestVerifyProxyKeysRecheck: by default a key removed from its file is
// refused at the next request; with -keys-recheck it is trusted until the
// interval has passed.
func TestVerifyProxyKeysRecheck(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name        string
		args        []string
		afterRemove int
	}{
		{"default", nil, http.StatusUnauthorized},
		{"an hour", []string{"-keys-recheck", "1h"}, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := newProxyEnv(t)
			p := env.verifyProxy(t, tt.args...)
			url := p.URL + "/echo"
			if resp, _ := get(t, nil, url, "Authorization", "JWT "+env.alice.token(t, "GET", url)); resp.StatusCode != http.StatusOK {
				t.Fatalf("before: %s", resp.Status)
			}
			if err := os.Remove(filepath.Join(env.keys, "alice.pub")); err != nil {
				t.Fatal(err)
			}
			if resp, _ := get(t, nil, url, "Authorization", "JWT "+env.alice.token(t, "GET", url)); resp.StatusCode != tt.afterRemove {
				t.Fatalf("after removing the key: %s, want %d", resp.Status, tt.afterRemove)
			}
		})
	}
}
