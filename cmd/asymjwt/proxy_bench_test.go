package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt"
)

// BenchmarkVerifyProxy compares a request through verify-proxy's handler
// (as the command builds it: DirKeyStore, in-memory nonces, Prometheus
// metrics, a JSON log line per request to a discarding writer) with the
// same request through a bare httputil.ReverseProxy, both in process over
// loopback, with EdDSA tokens signed before the clock starts. See
// BENCHMARKS.md ("verify-proxy").
//
//   - latency: one request through each proxy per iteration, in turn, each
//     timed; reports the p50 and p99 of both and their ratios, and the p50
//     of a bare ed25519.Verify timed in the same loop (ns/op covers all
//     three).
//   - throughput/{bare,verify}: 8 concurrent clients; reports req/s and
//     cpu-ns/op, the CPU time of the whole process (clients, proxy and
//     upstream) per request, which a loaded machine disturbs less.
//   - idle-conn/{bare,verify}: heap and stacks held per idle keep-alive
//     client connection after one request, 500 connections; reports
//     B/conn (its ns/op is meaningless).
func BenchmarkVerifyProxy(b *testing.B) {
	env := newBenchEnv(b, 0)
	b.Run("latency", func(b *testing.B) { latencyBench(b, env) })
	for _, name := range []string{"bare", "verify"} {
		b.Run("throughput/"+name, func(b *testing.B) {
			srv := env.bare
			if name == "verify" {
				srv = env.verify
			}
			client := benchClient()
			toks := env.tokens(b, b.N)
			var next atomic.Int64
			b.SetParallelism(4) // 8 clients on 2 cores
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu := time.Now(), processCPUTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					benchGet(b, client, srv.URL+"/x", toks[next.Add(1)-1])
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
			b.ReportMetric(float64(processCPUTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
	for _, name := range []string{"bare", "verify"} {
		b.Run("idle-conn/"+name, func(b *testing.B) {
			srv := env.bare
			if name == "verify" {
				srv = env.verify
			}
			// The figure is the memory, measured once; with b.Loop the
			// function runs once however long the loop ramps.
			perConn := idleConnMemory(b, env, srv, 500)
			for b.Loop() {
			}
			b.ReportMetric(perConn, "B/conn")
		})
	}
}

// BenchmarkVerifyProxyRecheck is BenchmarkVerifyProxy's latency with
// -keys-recheck 1s: the key file is not stat'ed on every request.
func BenchmarkVerifyProxyRecheck(b *testing.B) {
	env := newBenchEnv(b, time.Second)
	b.Run("latency", func(b *testing.B) { latencyBench(b, env) })
}

// latencyBench is BenchmarkVerifyProxy's latency: see there.
func latencyBench(b *testing.B, env *benchEnv) {
	client := benchClient()
	toks := env.tokens(b, b.N)
	bare := make([]time.Duration, 0, b.N)
	verified := make([]time.Duration, 0, b.N)
	// The Ed25519 check alone, timed in the same loop, to tell the
	// signature's share of the difference from the rest.
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := []byte(toks[0][len("JWT "):strings.LastIndexByte(toks[0], '.')])
	sig := ed25519.Sign(priv, msg)
	sigs := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		// Alternate which goes first, so neither always finds the
		// other's work just done.
		order := [2]bool{false, true}
		if i%2 == 1 {
			order = [2]bool{true, false}
		}
		for _, verify := range order {
			url := env.bare.URL + "/x"
			if verify {
				url = env.verify.URL + "/x"
			}
			start := time.Now()
			benchGet(b, client, url, toks[i])
			if verify {
				verified = append(verified, time.Since(start))
			} else {
				bare = append(bare, time.Since(start))
			}
		}
		start := time.Now()
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("ed25519.Verify failed")
		}
		sigs = append(sigs, time.Since(start))
	}
	b.StopTimer()
	pb, pv, ps := percentiles(bare), percentiles(verified), percentiles(sigs)
	b.ReportMetric(float64(ps[0].Nanoseconds()), "ed25519-p50-ns")
	b.ReportMetric(float64(pb[0].Nanoseconds()), "bare-p50-ns")
	b.ReportMetric(float64(pv[0].Nanoseconds()), "verify-p50-ns")
	b.ReportMetric(float64(pv[0])/float64(pb[0]), "p50-ratio")
	b.ReportMetric(float64(pb[1].Nanoseconds()), "bare-p99-ns")
	b.ReportMetric(float64(pv[1].Nanoseconds()), "verify-p99-ns")
	b.ReportMetric(float64(pv[1])/float64(pb[1]), "p99-ratio")
}

// benchEnv is an upstream, a bare proxy and verify-proxy's handler in
// front of it, and a user whose tokens verify.
type benchEnv struct {
	upstream, bare, verify *httptest.Server
	user                   *testUser
}

// newBenchEnv starts the servers of BenchmarkVerifyProxy, verify-proxy's
// key store rechecking files every recheck (0: on every request).
func newBenchEnv(b *testing.B, recheck time.Duration) *benchEnv {
	dir := b.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		b.Fatal(err)
	}
	env := &benchEnv{user: newTestUser(b, dir, keys, "alice")}
	env.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello\n")
	}))
	b.Cleanup(env.upstream.Close)
	upURL, _ := url.Parse(env.upstream.URL)

	bare := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upURL)
			pr.SetXForwarded()
		},
		Transport:     newUpstreamTransport(time.Minute),
		FlushInterval: -1,
	}
	env.bare = httptest.NewServer(bare)
	b.Cleanup(env.bare.Close)

	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	store, err := asymjwt.NewDirKeyStore(keys, asymjwt.WithLogger(logger), asymjwt.WithRecheckInterval(recheck))
	if err != nil {
		b.Fatal(err)
	}
	metrics := newProxyMetrics()
	v, err := asymjwt.NewVerifier(store, asymjwt.WithLogger(logger), asymjwt.WithMetrics(metrics))
	if err != nil {
		b.Fatal(err)
	}
	flight := &inFlight{}
	env.verify = httptest.NewServer(flight.wrap(newVerifyProxy(v, upURL, "", newUpstreamTransport(time.Minute), logger, metrics)))
	b.Cleanup(env.verify.Close)
	return env
}

// tokens signs n tokens for GET /x at verify-proxy, before the clock
// starts; the bare proxy gets the same header.
func (e *benchEnv) tokens(b *testing.B, n int) []string {
	b.Helper()
	toks := make([]string, n)
	req, _ := http.NewRequest("GET", e.verify.URL+"/x", nil)
	for i := range toks {
		tok, err := e.user.signer.Sign(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = "JWT " + tok
	}
	return toks
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
}

func benchGet(b *testing.B, client *http.Client, url, auth string) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", auth)
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: %s", url, resp.Status)
	}
}

// percentiles returns the p50 and p99 of d.
func percentiles(d []time.Duration) [2]time.Duration {
	if len(d) == 0 {
		return [2]time.Duration{1, 1}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return [2]time.Duration{s[len(s)/2], s[len(s)*99/100]}
}

// idleConnMemory opens n client connections to srv, sends one request on
// each and leaves them open and idle, and returns the heap and stack bytes
// that appeared per connection (the servers' sides, and the small
// net.Conn of the client).
func idleConnMemory(b *testing.B, env *benchEnv, srv *httptest.Server, n int) float64 {
	b.Helper()
	toks := env.tokens(b, n)
	before := heapAndStacks()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	host := strings.TrimPrefix(srv.URL, "http://")
	for i := range n {
		c, err := net.Dial("tcp", host)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		io.WriteString(c, "GET /x HTTP/1.1\r\nHost: "+host+"\r\nAuthorization: "+toks[i]+"\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReaderSize(c, 512), nil)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s", resp.Status)
		}
	}
	time.Sleep(50 * time.Millisecond) // let the servers' goroutines park
	after := heapAndStacks()
	return float64(after-before) / float64(n)
}

func heapAndStacks() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}
