package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

func TestSpoolBody(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		size   int64
		length int64 // the request's ContentLength: size, or -1 for chunked
		inFile bool
	}{
		{"empty", 0, 0, false},
		{"small", 100, 100, false},
		{"small, chunked", 100, -1, false},
		{"at the memory limit", spoolMemory, spoolMemory, false},
		{"one byte over", spoolMemory + 1, spoolMemory + 1, true},
		{"large, chunked", 1 << 20, -1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			r, _ := http.NewRequest("POST", "http://x/", io.NopCloser(patternReader(tt.size)))
			r.ContentLength = tt.length
			cleanup, err := spoolBody(r, dir)
			if err != nil {
				t.Fatal(err)
			}
			// Unlinked at once: nothing to see even while in use.
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("the spool directory holds %v", left)
			}
			if r.ContentLength != tt.size {
				t.Fatalf("ContentLength %d, want %d", r.ContentLength, tt.size)
			}
			if tt.size == 0 {
				if r.Body != http.NoBody || r.GetBody != nil {
					t.Fatalf("empty body: %T, GetBody %v", r.Body, r.GetBody != nil)
				}
				cleanup()
				return
			}
			want := patternSHA256(tt.size)
			for i := range 3 { // the body, then GetBody twice
				body := r.Body
				if i > 0 {
					if body, err = r.GetBody(); err != nil {
						t.Fatal(err)
					}
				}
				data, err := io.ReadAll(body)
				if err != nil || int64(len(data)) != tt.size || sha(data) != want {
					t.Fatalf("read %d: %d bytes, %v", i, len(data), err)
				}
			}
			cleanup()
			if tt.inFile {
				body, _ := r.GetBody()
				if _, err := body.Read(make([]byte, 1)); err == nil {
					t.Fatal("the spool file is still open after cleanup")
				}
			}
		})
	}

	t.Run("a client that breaks off", func(t *testing.T) {
		t.Parallel()
		for _, size := range []int64{10, 2 * spoolMemory} {
			broken := io.MultiReader(patternReader(size), errReader{errors.New("connection reset")})
			r, _ := http.NewRequest("POST", "http://x/", io.NopCloser(broken))
			dir := t.TempDir()
			cleanup, err := spoolBody(r, dir)
			cleanup()
			var re *bodyReadError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), "connection reset") {
				t.Fatalf("%d bytes then an error: %v", size, err)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("left %v", left)
			}
		}
	})
	t.Run("a spool directory that cannot be written", func(t *testing.T) {
		t.Parallel()
		r, _ := http.NewRequest("POST", "http://x/", io.NopCloser(bytes.NewReader(make([]byte, 2*spoolMemory))))
		cleanup, err := spoolBody(r, "/nonexistent/dir")
		cleanup()
		var re *bodyReadError
		if err == nil || errors.As(err, &re) {
			t.Fatalf("err = %v, want a spooling error, not the client's", err)
		}
	})
}

func sha(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
