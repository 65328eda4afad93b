package asymjwt

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha512"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt/internal/edverify"
)

// The benchmarks in this file compare two operations in one run, in
// alternating rounds, so that load on a shared machine, CPU frequency and GC
// state weigh on both alike:
//
//	go test -run '^$' -bench 'EndToEnd/interleaved' -benchtime 3000x -count 12 -cpu 1,2 .
//	go test -run '^$' -bench 'VerifyVsRaw' -benchtime 3000x -count 12 -cpu 1 .
//
// With -cpu 1 the CPU time is the work; with more Ps the scheduler's
// spinning between client and server adds to both sides alike.
//
// Each reports, per run of each operation, the CPU time of the whole process
// (client, server goroutines, kernel time of the loopback sockets, GC) as
// <op>-cpu-ns/op, its allocations as <op>-allocs/op and <op>-B/op, and the
// ratio of the first operation's CPU time to the second's. b.N counts rounds
// of both operations, so the built-in ns/op is the time of one of each.

// benchOp is one of the operations interleaved compares.
type benchOp struct {
	name string
	run  func()
}

// interleaved runs each op b.N times, in turn, round runs at a time, and
// reports per run of each its CPU time and allocations, and the ratio of the
// first op's CPU time to the second's. GC that one op's garbage causes may
// fall into the other's round; over many rounds it falls on each in
// proportion to the time it runs and the garbage it makes.
func interleaved(b *testing.B, round int, ops ...benchOp) {
	cpu := make([]time.Duration, len(ops))
	mallocs := make([]uint64, len(ops))
	bytes := make([]uint64, len(ops))
	var ms runtime.MemStats
	b.ResetTimer()
	for done := 0; done < b.N; done += round {
		n := min(round, b.N-done)
		for i, op := range ops {
			runtime.ReadMemStats(&ms)
			m0, b0 := ms.Mallocs, ms.TotalAlloc
			start := processCPUTime()
			for range n {
				op.run()
			}
			cpu[i] += processCPUTime() - start
			runtime.ReadMemStats(&ms)
			mallocs[i] += ms.Mallocs - m0
			bytes[i] += ms.TotalAlloc - b0
		}
	}
	b.StopTimer()
	for i, op := range ops {
		b.ReportMetric(float64(cpu[i])/float64(b.N), op.name+"-cpu-ns/op")
		b.ReportMetric(float64(mallocs[i])/float64(b.N), op.name+"-allocs/op")
		b.ReportMetric(float64(bytes[i])/float64(b.N), op.name+"-B/op")
	}
	if len(ops) > 1 && cpu[1] > 0 {
		b.ReportMetric(float64(cpu[0])/float64(cpu[1]), "ratio")
	}
}

// BenchmarkEndToEnd compares, with an Ed25519 key:
//
//   - signed: a GET through a Transport to a loopback server wrapped in
//     Verifier.Middleware (token signed, sent, verified, nonce recorded),
//   - plain: the same GET without Transport or Middleware, plus one
//     ed25519.Sign and one ed25519.Verify of a message as long as the
//     token's signing input: the least a signed request can cost.
//
// The sub-benchmarks signed and plain run one side alone, for profiles.
func BenchmarkEndToEnd(b *testing.B) {
	signed, plain := endToEndOps(b)
	b.Run("interleaved", func(b *testing.B) { interleaved(b, 50, signed, plain) })
	b.Run("signed", func(b *testing.B) { interleaved(b, 50, signed) })
	b.Run("plain", func(b *testing.B) { interleaved(b, 50, plain) })
}

// endToEndOps starts the two servers of BenchmarkEndToEnd, which b.Cleanup
// stops, and returns its two operations, warmed up.
func endToEndOps(b *testing.B) (signed, plain benchOp) {
	b.Helper()
	key, priv, pub, keys, handler := e2eFixture(b)
	v, err := NewVerifier(keys)
	if err != nil {
		b.Fatal(err)
	}
	signedSrv := httptest.NewServer(v.Middleware(handler))
	b.Cleanup(signedSrv.Close)
	plainSrv := httptest.NewServer(handler)
	b.Cleanup(plainSrv.Close)

	s, err := NewSigner("svc", key)
	if err != nil {
		b.Fatal(err)
	}
	signedClient := &http.Client{Transport: &Transport{Signer: s, Base: &http.Transport{}}}
	plainClient := &http.Client{Transport: &http.Transport{}}
	b.Cleanup(signedClient.CloseIdleConnections)
	b.Cleanup(plainClient.CloseIdleConnections)

	signedURL, plainURL := signedSrv.URL+"/v1/items", plainSrv.URL+"/v1/items"
	// The same bytes a token for the signed GET covers.
	_, msg := e2eToken(b, s, signedURL)

	get := func(c *http.Client, url string) { e2eGet(b, c, url) }
	signed = benchOp{"signed", func() { get(signedClient, signedURL) }}
	plain = benchOp{"plain", func() {
		get(plainClient, plainURL)
		sig := ed25519.Sign(priv, msg)
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("raw verify failed")
		}
	}}
	// Open both connections and warm the verifier's nonce store.
	for range 10 {
		signed.run()
		plain.run()
	}
	return signed, plain
}

// e2eFixture is what the end-to-end benchmarks share: the Ed25519 test
// key (and its halves), a key store holding it for user svc, and the
// handler behind every server.
func e2eFixture(b *testing.B) (key Key, priv ed25519.PrivateKey, pub ed25519.PublicKey, keys *MemoryKeyStore, handler http.Handler) {
	b.Helper()
	key = loadTestKeys(b).ed
	priv = key.(*signerKey).signer.(ed25519.PrivateKey)
	pub = priv.Public().(ed25519.PublicKey)
	keys = NewMemoryKeyStore()
	if err := keys.Add("svc", pub); err != nil {
		b.Fatal(err)
	}
	handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	return key, priv, pub, keys, handler
}

// e2eToken signs a GET of url with s and returns the token and its signing
// input.
func e2eToken(b *testing.B, s *Signer, url string) (tok string, signingInput []byte) {
	b.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		b.Fatal(err)
	}
	tok, err = s.Sign(context.Background(), req)
	if err != nil {
		b.Fatal(err)
	}
	return tok, []byte(tok[:strings.LastIndexByte(tok, '.')])
}

// e2eGet sends a GET to url with c, reads the answer and fails unless it is
// 200.
func e2eGet(b *testing.B, c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %s", url, resp.Status)
	}
}

// BenchmarkVerifyVsRaw compares Verifier.Verify of a token (header, parse,
// key lookup, signature, time, binding, nonce store) with the bare check of
// the same token: rsa.VerifyPKCS1v15 or rsa.VerifyPSS of its SHA-512 digest
// with a 2048-bit key, or ed25519.Verify.
func BenchmarkVerifyVsRaw(b *testing.B) {
	for _, name := range []string{"RS512", "PS512", "EdDSA"} {
		b.Run(name, func(b *testing.B) {
			key := loadTestKeys(b).rsa
			if name == "EdDSA" {
				key = loadTestKeys(b).ed
			}
			pub := key.Public()
			keys := NewMemoryKeyStore()
			if err := keys.Add("svc", pub); err != nil {
				b.Fatal(err)
			}
			s, err := NewSigner("svc", key, WithAlgorithm(Algorithm(name)), WithClock(func() time.Time { return testNow }))
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest("GET", "http://api.example.com/v1/items", nil)
			pool := newTokenPool(b, s, req)
			v, err := NewVerifier(keys, WithNonceStore(pool), WithClock(func() time.Time { return testNow }))
			if err != nil {
				b.Fatal(err)
			}
			tok := pool.tokens[0][len("JWT "):]
			dot := strings.LastIndexByte(tok, '.')
			input := []byte(tok[:dot])
			sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
			if err != nil {
				b.Fatal(err)
			}
			var raw func() error
			switch name {
			case "RS512":
				raw = func() error {
					d := sha512.Sum512(input)
					return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA512, d[:], sig)
				}
			case "PS512":
				raw = func() error {
					d := sha512.Sum512(input)
					return rsa.VerifyPSS(pub.(*rsa.PublicKey), crypto.SHA512, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
				}
			case "EdDSA":
				raw = func() error {
					if !ed25519.Verify(pub.(ed25519.PublicKey), input, sig) {
						return ErrBadSignature
					}
					return nil
				}
			}
			verify := benchOp{"verify", func() {
				pool.load()
				if _, err := v.Verify(req); err != nil {
					b.Fatal(err)
				}
			}}
			rawOp := benchOp{"raw", func() {
				if err := raw(); err != nil {
					b.Fatal(err)
				}
			}}
			interleaved(b, 50, verify, rawOp)
		})
	}
}

// BenchmarkEndToEndParts splits BenchmarkEndToEnd's difference by ablation,
// each pair interleaved as there (Ed25519, one kept-alive connection each):
//
//   - header-vs-plain: a plain GET carrying a valid token in its
//     Authorization header (not checked) against one without, both with a
//     raw sign and verify: what net/http pays to carry the header.
//   - client-vs-header: a GET through the Transport to an unchecking server,
//     plus a raw verify, against the header op: the client's work outside
//     the signature.
//   - server-vs-header: the header op's GET to a verifying server whose
//     nonce store accepts everything (so one token serves every request),
//     plus a raw sign, against the header op: the verifier's and
//     Middleware's work outside the signature check.
//   - signed-vs-nononce: the signed GET against the same with the
//     accept-everything nonce store: the in-memory nonce store's share.
//   - signed-vs-sigonly: the signed GET against the same GET to a server
//     that only checks the token's signature (reads the header, decodes
//     the signature, verifies it with the same kind of key cache; no parse,
//     claims, nonce or context): all the verifier and Middleware do beyond
//     the signature.
func BenchmarkEndToEndParts(b *testing.B) {
	key, priv, pub, keys, handler := e2eFixture(b)
	server := func(h http.Handler) string {
		srv := httptest.NewServer(h)
		b.Cleanup(srv.Close)
		return srv.URL + "/v1/items"
	}
	verifier := func(opts ...VerifierOption) http.Handler {
		v, err := NewVerifier(keys, opts...)
		if err != nil {
			b.Fatal(err)
		}
		return v.Middleware(handler)
	}
	signedURL := server(verifier())
	noNonceURL := server(verifier(WithNonceStore(acceptAllNonces{})))
	plainURL := server(handler)
	var ed edverify.Cache
	sigOnlyURL := server(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "JWT ")
		dot := strings.LastIndexByte(tok, '.')
		sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
		if dot < 0 || err != nil || !ed.Verify(pub, []byte(tok[:dot]), sig) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		handler.ServeHTTP(w, r)
	}))

	s, err := NewSigner("svc", key)
	if err != nil {
		b.Fatal(err)
	}
	// One token for noNonceURL, valid for the window: the header op sends
	// it everywhere, the server op has it checked.
	tok, msg := e2eToken(b, s, noNonceURL)
	sig := ed25519.Sign(priv, msg)

	client := func(rt http.RoundTripper) *http.Client {
		c := &http.Client{Transport: rt}
		b.Cleanup(c.CloseIdleConnections)
		return c
	}
	signedClient := client(&Transport{Signer: s, Base: &http.Transport{}})
	headerClient := client(fixedAuthorization{&http.Transport{}, "JWT " + tok})
	plainClient := client(&http.Transport{})
	get := func(c *http.Client, url string) { e2eGet(b, c, url) }
	rawSign := func() { ed25519.Sign(priv, msg) }
	rawVerify := func() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("raw verify failed")
		}
	}
	ops := map[string]benchOp{
		"signed":  {"signed", func() { get(signedClient, signedURL) }},
		"nononce": {"nononce", func() { get(signedClient, noNonceURL) }},
		"header":  {"header", func() { get(headerClient, plainURL); rawSign(); rawVerify() }},
		"plain":   {"plain", func() { get(plainClient, plainURL); rawSign(); rawVerify() }},
		"client":  {"client", func() { get(signedClient, plainURL); rawVerify() }},
		"server":  {"server", func() { get(headerClient, noNonceURL); rawSign() }},
		"sigonly": {"sigonly", func() { get(signedClient, sigOnlyURL) }},
	}
	for range 10 {
		for _, op := range ops {
			op.run()
		}
	}
	for _, pair := range [][2]string{{"header", "plain"}, {"client", "header"}, {"server", "header"}, {"signed", "nononce"}, {"signed", "sigonly"}} {
		b.Run(pair[0]+"-vs-"+pair[1], func(b *testing.B) { interleaved(b, 50, ops[pair[0]], ops[pair[1]]) })
	}
}

// acceptAllNonces is a NonceStore that takes every nonce, for
// BenchmarkEndToEndParts.
type acceptAllNonces struct{}

func (acceptAllNonces) Use(context.Context, string, string, time.Duration) error { return nil }

// fixedAuthorization sends every request with the same Authorization
// value, for BenchmarkEndToEndParts.
type fixedAuthorization struct {
	base http.RoundTripper
	auth string
}

func (f fixedAuthorization) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := withOwnHeader(r, 1)
	r2.Header.Set("Authorization", f.auth)
	return f.base.RoundTrip(r2)
}
