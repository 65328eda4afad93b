package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
)

// spoolMemory is the largest request body sign-proxy keeps in memory to
// send again; larger ones go to a temporary file.
const spoolMemory = 64 << 10

// spoolBody makes r's body readable more than once, for retries (and for
// hashing, once bodies are bound): it reads it whole, into memory up to
// spoolMemory bytes, else into a temporary file in dir (os.TempDir() when
// empty), created with mode 0600 and unlinked at once where the system
// allows it, so nothing is left behind even if the process is killed. It
// sets r.Body, r.GetBody and r.ContentLength. The caller must call the
// returned cleanup once the request is done; it closes (and if need be
// removes) the file.
func spoolBody(r *http.Request, dir string) (cleanup func(), err error) {
	nothing := func() {}
	if r.Body == nil || r.Body == http.NoBody {
		return nothing, nil
	}
	var mem bytes.Buffer
	if r.ContentLength > 0 && r.ContentLength <= spoolMemory {
		mem.Grow(int(r.ContentLength))
	}
	n, err := io.CopyN(&mem, r.Body, spoolMemory+1)
	if err != nil && err != io.EOF {
		return nothing, &bodyReadError{err}
	}
	if n <= spoolMemory {
		data := mem.Bytes()
		r.ContentLength = int64(len(data))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
		r.Body, _ = r.GetBody()
		if len(data) == 0 {
			r.Body, r.GetBody = http.NoBody, nil
		}
		return nothing, nil
	}

	f, err := os.CreateTemp(dir, "asymjwt-sign-proxy-*")
	if err != nil {
		return nothing, fmt.Errorf("spooling the request body: %w", err)
	}
	unlinked := os.Remove(f.Name()) == nil // not possible on Windows while open
	cleanup = func() {
		f.Close()
		if !unlinked {
			os.Remove(f.Name())
		}
	}
	size, err := io.Copy(f, readErrorMarker{io.MultiReader(&mem, r.Body)})
	if err != nil {
		cleanup()
		var re *bodyReadError
		if errors.As(err, &re) {
			return nothing, err
		}
		return nothing, fmt.Errorf("spooling the request body: %w", err)
	}
	r.ContentLength = size
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(f, 0, size)), nil }
	r.Body, _ = r.GetBody()
	return cleanup, nil
}

// bodyReadError is a failure to read the client's body (it went away, or
// sent a broken one), as opposed to a failure to spool it.
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return "reading the request body: " + e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }

// readErrorMarker marks the errors of its reader as *bodyReadError.
type readErrorMarker struct{ r io.Reader }

func (m readErrorMarker) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if err != nil && err != io.EOF {
		err = &bodyReadError{err}
	}
	return n, err
}
