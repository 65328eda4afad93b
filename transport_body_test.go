package asymjwt

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// countingGetBody gives req a GetBody over data that counts its calls.
func countingGetBody(req *http.Request, data []byte) *atomic.Int32 {
	var n atomic.Int32
	req.GetBody = func() (io.ReadCloser, error) {
		n.Add(1)
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	return &n
}

func TestTransportBindsBody(t *testing.T) {
	key := loadTestKey(t, "openssh_ed25519")
	signer := func(opts ...SignerOption) *Signer {
		s, err := NewSigner("alice", key, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	payload := []byte(`{"amount":1}`)
	payloadDigest, _ := ContentDigest(bytes.NewReader(payload))
	tests := []struct {
		name string
		s    *Signer
		// req makes the request; getBodies, when not nil, counts GetBody.
		req        func(url string) (*http.Request, *atomic.Int32, *closeRecorder)
		wantHeader string // Content-Digest sent
		wantHCD    any    // nil: no claim
		wantBody   string
		wantLength int64 // Content-Length the server saw
		minGetBody int32
	}{
		{"GET: claim of no body, no header", signer(),
			func(u string) (*http.Request, *atomic.Int32, *closeRecorder) {
				r, _ := http.NewRequest("GET", u, nil)
				return r, nil, nil
			}, "", "", "", 0, 0},
		{"GET with the caller's Content-Digest: removed", signer(),
			func(u string) (*http.Request, *atomic.Int32, *closeRecorder) {
				r, _ := http.NewRequest("GET", u, nil)
				r.Header.Set("Content-Digest", rfc9530SHA256)
				return r, nil, nil
			}, "", "", "", 0, 0},
		{"POST from bytes: hashed from GetBody, sent from a fresh copy", signer(),
			func(u string) (*http.Request, *atomic.Int32, *closeRecorder) {
				r, _ := http.NewRequest("POST", u, bytes.NewReader(payload))
				return r, countingGetBody(r, payload), nil
			}, payloadDigest, payloadDigest, string(payload), int64(len(payload)), 2},
		{"POST with GetBody and no length: sent with its length", signer(),
			func(u string) (*http.Request, *atomic.Int32, *closeRecorder) {
				r, _ := http.NewRequest("POST", u, io.NopCloser(bytes.NewReader(payload)))
				r.ContentLength = -1
				return r, countingGetBody(r, payload), nil
			}, payloadDigest, payloadDigest, string(payload), int64(len(payload)), 2},
		{"POST without GetBody: buffered", signer(),
			func(u string) (*http.Request, *atomic.Int32, *closeRecorder) {
				b := &closeRecorder{Reader: bytes.NewReader(payload)}
				r, _ := http.NewRequest("POST", u, b)
				return r, nil, b
			}, payloadDigest, payloadDigest, string(payload), int64(len(payload)), 0},
		{"POST with the caller's wrong Content-Digest: replaced", signer(),
			func(u string) (*http.Request, *atomic.Int32, *closeRecorder) {
				r, _ := http.NewRequest("POST", u, bytes.NewReader(payload))
				r.Header.Set("Content-Digest", rfc9530SHA256)
				return r, nil, nil
			}, payloadDigest, payloadDigest, string(payload), int64(len(payload)), 0},
		{"POST with an empty body", signer(),
			func(u string) (*http.Request, *atomic.Int32, *closeRecorder) {
				r, _ := http.NewRequest("POST", u, strings.NewReader(""))
				return r, nil, nil
			}, "", "", "", 0, 0},
		{"WithoutBodyBinding: no claim, no header, not buffered", signer(WithoutBodyBinding()),
			func(u string) (*http.Request, *atomic.Int32, *closeRecorder) {
				b := &closeRecorder{Reader: bytes.NewReader(payload)}
				r, _ := http.NewRequest("POST", u, b)
				r.ContentLength = int64(len(payload))
				return r, nil, b
			}, "", nil, string(payload), int64(len(payload)), 0},
		{"WithoutBinding: no claim, no header", signer(WithoutBinding()),
			func(u string) (*http.Request, *atomic.Int32, *closeRecorder) {
				r, _ := http.NewRequest("POST", u, bytes.NewReader(payload))
				return r, countingGetBody(r, payload), nil
			}, "", nil, string(payload), int64(len(payload)), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRecordingServer(t, nil)
			req, getBodies, body := tt.req(srv.URL + "/pay?to=bob")
			origHeader := req.Header.Clone()
			resp, err := (&Transport{Signer: tt.s, Base: srv.Client().Transport}).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			seen := srv.requests()[0]
			if seen.digest != tt.wantHeader {
				t.Errorf("Content-Digest %q, want %q", seen.digest, tt.wantHeader)
			}
			if string(seen.body) != tt.wantBody || seen.contentLength != tt.wantLength {
				t.Errorf("server got %d bytes %q (Content-Length %d), want %q (%d)", len(seen.body), seen.body, seen.contentLength, tt.wantBody, tt.wantLength)
			}
			claims := verifyWithGolangJWT(t, tokenOf(t, seen.auth), key.Public(), EdDSA)
			if hcd, ok := claims["hcd"]; (tt.wantHCD == nil) == ok || (ok && hcd != tt.wantHCD) {
				t.Errorf("hcd %v, want %v", claims["hcd"], tt.wantHCD)
			}
			if _, ok := claims["htq"]; ok == (tt.s.bind == false) {
				t.Errorf("htq %v with binding %v", claims["htq"], tt.s.bind)
			}
			if getBodies != nil && getBodies.Load() < tt.minGetBody {
				t.Errorf("GetBody called %d times, want at least %d", getBodies.Load(), tt.minGetBody)
			}
			if body != nil && body.closed.Load() != 1 {
				t.Errorf("caller's body closed %d times", body.closed.Load())
			}
			if req.Header.Get("Content-Digest") != origHeader.Get("Content-Digest") || len(req.Header) != len(origHeader) {
				t.Errorf("caller's header changed: %v, was %v", req.Header, origHeader)
			}
		})
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func TestTransportBodyTooLarge(t *testing.T) {
	key := loadTestKey(t, "openssh_ed25519")
	tests := []struct {
		name   string
		opts   []SignerOption
		size   int
		length int64 // declared ContentLength; 0: unknown
		sent   bool
		read   int64 // at most this much read from the body before failing; -1: any
	}{
		{"fits the limit", []SignerOption{WithMaxBufferedBody(10)}, 10, 0, true, -1},
		{"one byte over", []SignerOption{WithMaxBufferedBody(10)}, 11, 0, false, 11},
		{"declared over: nothing read", []SignerOption{WithMaxBufferedBody(10)}, 11, 11, false, 0},
		{"limit 0", []SignerOption{WithMaxBufferedBody(0)}, 1, 0, false, 1},
		{"default limit", nil, DefaultMaxBufferedBody + 1, 0, false, DefaultMaxBufferedBody + 1},
		{"WithoutBodyBinding: not buffered", []SignerOption{WithMaxBufferedBody(0), WithoutBodyBinding()}, 100, 0, true, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSigner("alice", key, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			src := &countingReader{r: bytes.NewReader(bytes.Repeat([]byte("x"), tt.size))}
			body := &closeRecorder{Reader: src}
			req, _ := http.NewRequest("PUT", "http://api.example.com/blob", body)
			req.ContentLength = tt.length
			base := &recordingTransport{}
			resp, err := (&Transport{Signer: s, Base: base}).RoundTrip(req)
			if tt.sent {
				if err != nil || len(base.sent()) != 1 {
					t.Fatalf("err %v, %d sent", err, len(base.sent()))
				}
				resp.Body.Close()
				return
			}
			var tooLarge *BodyTooLargeError
			if !errors.Is(err, ErrBodyTooLarge) || !errors.As(err, &tooLarge) || tooLarge.Limit != s.maxBody {
				t.Fatalf("err = %v, want a *BodyTooLargeError with limit %d", err, s.maxBody)
			}
			if !strings.HasPrefix(err.Error(), "asymjwt: request body too large to bind") {
				t.Errorf("message %q", err)
			}
			if resp != nil || len(base.sent()) != 0 {
				t.Fatal("something was sent")
			}
			if body.closed.Load() != 1 {
				t.Errorf("body closed %d times, want once", body.closed.Load())
			}
			if tt.read >= 0 && src.n.Load() > tt.read {
				t.Errorf("read %d bytes of the body, want at most %d", src.n.Load(), tt.read)
			}
		})
	}

	t.Run("through an http.Client", func(t *testing.T) {
		s, err := NewSigner("alice", key, WithMaxBufferedBody(4))
		if err != nil {
			t.Fatal(err)
		}
		client := NewClient(&Transport{Signer: s, Base: &recordingTransport{}})
		_, err = client.Post("http://api.example.com/x", "text/plain", io.MultiReader(strings.NewReader("12345")))
		var ue *url.Error
		if !errors.Is(err, ErrBodyTooLarge) || !errors.As(err, &ue) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestTransportGetBodyFails(t *testing.T) {
	s, _ := transportTestSigner(t)
	boom := errors.New("spool file gone")
	tests := []struct {
		name    string
		getBody func(calls int) (io.ReadCloser, error)
	}{
		{"at once", func(int) (io.ReadCloser, error) { return nil, boom }},
		{"on the copy to send", func(calls int) (io.ReadCloser, error) {
			if calls > 1 {
				return nil, boom
			}
			return io.NopCloser(strings.NewReader("x")), nil
		}},
		{"reading the copy", func(int) (io.ReadCloser, error) {
			return io.NopCloser(io.MultiReader(strings.NewReader("x"), errReader{boom})), nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := &closeRecorder{Reader: strings.NewReader("x")}
			req, _ := http.NewRequest("POST", "http://api.example.com/x", body)
			calls := 0
			req.GetBody = func() (io.ReadCloser, error) { calls++; return tt.getBody(calls) }
			base := &recordingTransport{}
			_, err := (&Transport{Signer: s, Base: base}).RoundTrip(req)
			if !errors.Is(err, boom) || len(base.sent()) != 0 || body.closed.Load() != 1 {
				t.Fatalf("err %v, %d sent, body closed %d times", err, len(base.sent()), body.closed.Load())
			}
		})
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestWithMaxBufferedBodyRefusesNegative(t *testing.T) {
	_, err := NewSigner("alice", loadTestKey(t, "openssh_ed25519"), WithMaxBufferedBody(-1))
	if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "WithMaxBufferedBody") {
		t.Fatalf("err = %v", err)
	}
}

func TestSignBindsContentDigestHeader(t *testing.T) {
	key := loadTestKey(t, "openssh_ed25519")
	tests := []struct {
		name    string
		opts    []SignerOption
		header  []string // Content-Digest lines; nil: none
		wantHCD any
		wantErr bool
	}{
		{"no header: no body claim", nil, nil, nil, false},
		{"sha-256", nil, []string{rfc9530SHA256}, rfc9530SHA256, false},
		{"sha-512 alone", nil, []string{rfc9530SHA512}, rfc9530SHA512, false},
		{"both: sha-256 bound", nil, []string{rfc9530SHA512, rfc9530SHA256}, rfc9530SHA256, false},
		{"only unknown algorithms", nil, []string{"md5=:XrY7u+Ae7tCTyyK7j1rNww==:"}, nil, true},
		{"malformed", nil, []string{"sha-256=X48E9"}, nil, true},
		{"WithoutBodyBinding: header ignored", []SignerOption{WithoutBodyBinding()}, []string{"garbage"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSigner("alice", key, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("POST", "https://api.example.com/x?a=1", nil)
			req.Header["Content-Digest"] = tt.header
			tok, err := s.Sign(context.Background(), req)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "Content-Digest") {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			claims := verifyWithGolangJWT(t, tok, key.Public(), EdDSA)
			if hcd, ok := claims["hcd"]; (tt.wantHCD == nil) == ok || (ok && hcd != tt.wantHCD) {
				t.Fatalf("hcd %v, want %v", claims["hcd"], tt.wantHCD)
			}
		})
	}
}
