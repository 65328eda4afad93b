package asymjwt

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// What binding a body costs, beside the SHA-256 it cannot avoid. The
// benchmarks share sub-benchmark names, so ratios come from one run:
//
//	go test -run '^$' -bench 'BodyDigest|SHA256Reference|BodyCheck|BodyReadReference' -benchmem -count 6 .
//
//   - BenchmarkSHA256Reference: sha256.Sum256 over the body, the floor.
//   - BenchmarkBodyDigest: all the Transport adds to send a body bound,
//     for a body with GetBody (http.NewRequest over a *bytes.Reader): a
//     fresh copy from GetBody, hashed; another to send; the
//     Content-Digest value as a string for the header.
//   - BenchmarkBodyDigestBuffered: the same for a body without GetBody,
//     read into memory first (up to WithMaxBufferedBody).
//   - BenchmarkBodyCheck: the verifier's side, the body read through the
//     checker to its end (known length), as a handler reads it.
//   - BenchmarkBodyReadReference: the same body read to its end without
//     the checker, what a handler pays anyway; BodyCheck minus this is the
//     check's cost.
//
// And a whole request over loopback:
//
//	go test -run '^$' -bench 'LoopbackPOST' -benchmem -count 6 .
//
//   - BenchmarkLoopbackPOST/plain: an http.Client POST of 1 KiB to a
//     handler that reads it, no authentication.
//   - BenchmarkLoopbackPOST/signed: the same through NewClient (Ed25519)
//     to Verifier.Middleware: sign, bind query and body, verify, check
//     the body as it is read.
//   - BenchmarkLoopbackPOST/signed-without-body-binding: the same with
//     WithoutBodyBinding, to show the body's share.

var bodyBenchSizes = []struct {
	name string
	size int
}{
	{"1KiB", 1 << 10},
	{"1MiB", 1 << 20},
	{"64MiB", 64 << 20},
}

func bodyBenchData(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i*131 + i>>9)
	}
	return b
}

func BenchmarkSHA256Reference(b *testing.B) {
	for _, sz := range bodyBenchSizes {
		b.Run(sz.name, func(b *testing.B) {
			data := bodyBenchData(sz.size)
			b.SetBytes(int64(sz.size))
			var sum [32]byte
			loopCPU(b, func() { sum = sha256.Sum256(data) })
			_ = sum
		})
	}
}

func BenchmarkBodyDigest(b *testing.B) {
	for _, sz := range bodyBenchSizes {
		b.Run(sz.name, func(b *testing.B) {
			data := bodyBenchData(sz.size)
			req, err := http.NewRequest("POST", "https://api.example.com/v1/items", bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(sz.size))
			var d bodyDigest
			var header string
			loopCPU(b, func() {
				body, err := bindBody(req, &d)
				if err != nil {
					b.Fatal(err)
				}
				req.Body = body
				header = string(d.member())
			})
			_ = header
		})
	}
}

func BenchmarkBodyDigestBuffered(b *testing.B) {
	for _, sz := range bodyBenchSizes {
		b.Run(sz.name, func(b *testing.B) {
			data := bodyBenchData(sz.size)
			s := &Signer{maxBody: int64(sz.size)}
			b.SetBytes(int64(sz.size))
			var d bodyDigest
			loopCPU(b, func() {
				req := &http.Request{Method: "POST", Body: io.NopCloser(bytes.NewReader(data)), ContentLength: int64(sz.size)}
				buffered, err := s.bufferBody(req)
				if err != nil {
					b.Fatal(err)
				}
				if err := d.hashBody(buffered); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

func BenchmarkBodyCheck(b *testing.B) {
	for _, sz := range bodyBenchSizes {
		b.Run(sz.name, func(b *testing.B) {
			data := bodyBenchData(sz.size)
			v, err := NewVerifier(NewMemoryKeyStore())
			if err != nil {
				b.Fatal(err)
			}
			sum := sha256.Sum256(data)
			var want digestSet
			want[0] = sum[:]
			r := httptest.NewRequest("POST", "http://x/", nil)
			r.ContentLength = int64(sz.size)
			src := bytes.NewReader(data)
			b.SetBytes(int64(sz.size))
			loopCPU(b, func() {
				src.Reset(data)
				r.Body = io.NopCloser(src)
				if _, err := io.Copy(io.Discard, v.newBodyChecker(r, want)); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

func BenchmarkBodyReadReference(b *testing.B) {
	for _, sz := range bodyBenchSizes {
		b.Run(sz.name, func(b *testing.B) {
			data := bodyBenchData(sz.size)
			src := bytes.NewReader(data)
			b.SetBytes(int64(sz.size))
			loopCPU(b, func() {
				src.Reset(data)
				// Hide WriterTo, as a request body does.
				if _, err := io.Copy(io.Discard, struct{ io.Reader }{src}); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

func BenchmarkLoopbackPOST(b *testing.B) {
	key := loadTestKey(b, "openssh_ed25519")
	body := bodyBenchData(1 << 10)
	keys := NewMemoryKeyStore()
	if err := keys.Add("bench", key.Public()); err != nil {
		b.Fatal(err)
	}
	read := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	for _, tt := range []struct {
		name   string
		signed bool
		opts   []SignerOption
	}{
		{"plain", false, nil},
		{"signed", true, nil},
		{"signed-without-body-binding", true, []SignerOption{WithoutBodyBinding()}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			var handler http.Handler = read
			srv := httptest.NewUnstartedServer(nil)
			if tt.signed {
				v, err := NewVerifier(keys, WithHosts(srv.Listener.Addr().String()))
				if err != nil {
					b.Fatal(err)
				}
				handler = v.Middleware(read)
			}
			srv.Config.Handler = handler
			srv.Start()
			defer srv.Close()
			base := &http.Transport{MaxIdleConnsPerHost: 4}
			defer base.CloseIdleConnections()
			client := &http.Client{Transport: base}
			if tt.signed {
				s, err := NewSigner("bench", key, tt.opts...)
				if err != nil {
					b.Fatal(err)
				}
				client = NewClient(&Transport{Signer: s, Base: base})
			}
			url := srv.URL + "/v1/items?page=2"
			b.SetBytes(int64(len(body)))
			loopCPU(b, func() {
				resp, err := client.Post(url, "application/octet-stream", bytes.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatal(fmt.Sprintf("status %d", resp.StatusCode))
				}
			})
		})
	}
}

// nopRoundTripper answers every request at once, sending nothing.
type nopRoundTripper struct{}

func (nopRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
}

// BenchmarkTransportGET is the Transport's work for a GET without a body
// (Ed25519), nothing sent: the path query and body binding must not slow.
//
//	go test -run '^$' -bench 'TransportGET' -benchmem -count 6 .
func BenchmarkTransportGET(b *testing.B) {
	s, err := NewSigner("bench", loadTestKey(b, "openssh_ed25519"))
	if err != nil {
		b.Fatal(err)
	}
	tr := &Transport{Signer: s, Base: nopRoundTripper{}}
	for _, u := range []struct{ name, url string }{
		{"no-query", "https://api.example.com/v1/items"},
		{"query", "https://api.example.com/v1/items?page=2&sort=name"},
	} {
		b.Run(u.name, func(b *testing.B) {
			req, err := http.NewRequest("GET", u.url, nil)
			if err != nil {
				b.Fatal(err)
			}
			loopCPU(b, func() {
				if _, err := tr.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}
