package asymjwt

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

// checkerFor returns a body checker over body, wanting the digests of
// signed, with the length known or not, and the refusals it reported (to
// the error hook, the logger and the metrics).
func checkerFor(t *testing.T, signed, body []byte, known bool, wrap func(io.Reader) io.Reader, sha512Too bool) (*bodyChecker, *[]error, *bytes.Buffer, *fakeMetrics) {
	t.Helper()
	var refused []error
	var logs bytes.Buffer
	var metrics fakeMetrics
	v, err := NewVerifier(NewMemoryKeyStore(),
		WithErrorHook(func(_ *http.Request, err error) { refused = append(refused, err) }),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		WithMetrics(&metrics))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "http://x/items", nil)
	var src io.Reader = bytes.NewReader(body)
	if wrap != nil {
		src = wrap(src)
	}
	r.Body = io.NopCloser(src)
	r.ContentLength = -1
	if known {
		r.ContentLength = int64(len(body))
	}
	var want digestSet
	s256 := sha256.Sum256(signed)
	want[0] = s256[:]
	if sha512Too {
		s512 := sha512.Sum512(signed)
		want[1] = s512[:]
	}
	return v.newBodyChecker(r, want), &refused, &logs, &metrics
}

func TestBodyChecker(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80,000 bytes: several held reads
	changed := func(b []byte) []byte {
		c := bytes.Clone(b)
		c[len(c)/2] ^= 1
		return c
	}
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"plain", nil},
		{"one byte at a time", iotest.OneByteReader},
		{"half reads", iotest.HalfReader},
		{"EOF with the last data", iotest.DataErrReader},
	}
	bodies := []struct {
		name         string
		signed, sent []byte
		sha512Too    bool
		ok           bool
	}{
		{"empty", nil, nil, false, true},
		{"small", []byte(rfc9530Body), []byte(rfc9530Body), false, true},
		{"large", big, big, false, true},
		{"sha-512 too", big, big, true, true},
		{"small changed, same length", []byte(rfc9530Body), []byte(`{"hello": "WORLD"}`), false, false},
		{"large changed, same length", big, changed(big), false, false},
		{"large changed, sha-512 too", big, changed(big), true, false},
		{"one byte more", []byte(rfc9530Body), []byte(rfc9530Body + " "), false, false},
		{"one byte less", []byte(rfc9530Body), []byte(rfc9530Body[1:]), false, false},
		{"emptied", []byte(rfc9530Body), nil, false, false},
	}
	for _, known := range []bool{true, false} {
		mode := "unknown length"
		if known {
			mode = "known length"
		}
		for _, rd := range readers {
			for _, b := range bodies {
				t.Run(mode+"/"+rd.name+"/"+b.name, func(t *testing.T) {
					c, refused, logs, metrics := checkerFor(t, b.signed, b.sent, known, rd.wrap, b.sha512Too)
					var got []byte
					buf := make([]byte, 4096)
					var err error
					for {
						var n int
						n, err = c.Read(buf)
						got = append(got, buf[:n]...)
						if err != nil {
							break
						}
					}
					if b.ok {
						if err != io.EOF || !bytes.Equal(got, b.sent) {
							t.Fatalf("read %d of %d bytes, then %v", len(got), len(b.sent), err)
						}
						if events, _ := metrics.take(); len(*refused) != 0 || len(events) != 0 {
							t.Fatalf("refusals reported: %v, metrics %v", *refused, events)
						}
						return
					}
					if !errors.Is(err, ErrBinding) || !strings.HasPrefix(err.Error(), "asymjwt: ") {
						t.Fatalf("err = %v, want ErrBinding", err)
					}
					// The read never completes: not all the bytes were handed
					// over (an empty body has nothing to hand over).
					if len(b.sent) > 0 && len(got) >= len(b.sent) {
						t.Fatalf("all %d bytes of the changed body were handed over", len(got))
					}
					if n, again := c.Read(buf); n != 0 || again != err {
						t.Fatalf("Read after the failure: %d, %v", n, again)
					}
					if len(*refused) != 1 || !errors.Is((*refused)[0], ErrBinding) {
						t.Fatalf("refusals reported: %v", *refused)
					}
					if !strings.Contains(logs.String(), "kind=binding") {
						t.Fatalf("log: %q", logs.String())
					}
					if events, _ := metrics.take(); fmt.Sprint(events) != "[body refused binding]" {
						t.Fatalf("metrics: %v", events)
					}
				})
			}
		}
	}
}

func TestBodyCheckerIsAReader(t *testing.T) {
	body := bytes.Repeat([]byte("abc"), 20000)
	for _, known := range []bool{true, false} {
		c, _, _, _ := checkerFor(t, body, body, known, nil, false)
		if err := iotest.TestReader(c, body); err != nil {
			t.Fatalf("known length %v: %v", known, err)
		}
	}
}

func TestBodyCheckerReadError(t *testing.T) {
	boom := errors.New("connection reset")
	body := []byte(strings.Repeat("x", 100))
	for _, known := range []bool{true, false} {
		c, refused, _, _ := checkerFor(t, body, body, known, func(r io.Reader) io.Reader {
			return io.MultiReader(io.LimitReader(r, 50), iotest.ErrReader(boom))
		}, false)
		got, err := io.ReadAll(c)
		if !errors.Is(err, boom) || len(got) >= len(body) || len(*refused) != 0 {
			t.Fatalf("known %v: %d bytes, %v, refusals %v", known, len(got), err, *refused)
		}
	}
}
