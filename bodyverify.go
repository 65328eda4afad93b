package asymjwt

import (
	"bytes"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
)

// bodyChecker is the request body a handler reads when the token binds the
// body: it hashes the bytes as they pass and, at the end, compares them
// with the Content-Digest header that the token's "hcd" claim matched. On a
// mismatch the Read that reaches the end returns an error wrapping
// ErrBinding instead of the last bytes, and every Read after it the same
// error; so no read of a changed body ever completes.
//
// When the length is known (Content-Length), the end is the Read that
// brings the count to it, and nothing is held back. When it is not
// (chunked), one read is held back until the next shows it was not the
// last: two buffers of holdSize, allocated on the first Read.
type bodyChecker struct {
	src    io.ReadCloser
	v      *Verifier
	r      *http.Request
	hashes [len(digestAlgs)]hash.Hash
	want   digestSet

	remaining int64 // bytes still to come when the length is known; -1 when not

	// Unknown length only.
	bufs   [2][]byte
	held   int    // index in bufs of the bytes read last, not yet known not to be the end
	heldN  int    // length of the held bytes
	ready  []byte // bytes known not to be the end (or checked), to hand over
	tail   []byte // after a match at the end: the held bytes, handed over last
	empty  int    // successive reads that returned nothing
	failed bool

	err error // sticky: io.EOF after a match, the binding error, or a read error
}

// holdSize is the size of each of the two buffers of a body of unknown
// length.
const holdSize = 16 << 10

// newBodyChecker wraps r's body to check it against want.
func (v *Verifier) newBodyChecker(r *http.Request, want digestSet) *bodyChecker {
	b := &bodyChecker{src: r.Body, v: v, r: r, want: want, remaining: r.ContentLength}
	if b.remaining < 0 {
		b.remaining = -1
	}
	for i, d := range want {
		if d != nil {
			b.hashes[i] = digestAlgs[i].hash.New()
		}
	}
	return b
}

func (b *bodyChecker) hash(p []byte) {
	for _, h := range b.hashes {
		if h != nil {
			h.Write(p)
		}
	}
}

// matches reports whether the body read matches every digest wanted.
func (b *bodyChecker) matches() bool {
	var sum [64]byte
	for i, h := range b.hashes {
		if h != nil && !bytes.Equal(h.Sum(sum[:0]), b.want[i]) {
			return false
		}
	}
	return true
}

// fail records a mismatch, reports it as a refusal, and returns it.
func (b *bodyChecker) fail(why string) error {
	var names []string
	for i, d := range b.want {
		if d != nil {
			names = append(names, digestAlgs[i].name)
		}
	}
	b.failed = true
	b.err = withPrefix(fmt.Errorf("%w: the request body %s its Content-Digest (%s), which the token binds", ErrBinding, why, strings.Join(names, ", ")))
	b.ready, b.tail = nil, nil
	b.v.reportRefusal(b.r, b.err)
	return b.err
}

// Read reads the body, checking it at its end.
func (b *bodyChecker) Read(p []byte) (int, error) {
	if b.remaining >= 0 {
		return b.readKnown(p)
	}
	return b.readUnknown(p)
}

func (b *bodyChecker) readKnown(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := b.src.Read(p)
	b.hash(p[:n])
	b.remaining -= int64(n)
	switch {
	case b.remaining < 0:
		return 0, b.fail("is longer than its Content-Length, so does not match")
	case b.remaining == 0:
		if !b.matches() {
			return 0, b.fail("does not match")
		}
		b.err = io.EOF
		return n, io.EOF
	case err == io.EOF:
		// Shorter than its Content-Length: net/http reports that itself.
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

func (b *bodyChecker) readUnknown(p []byte) (int, error) {
	for {
		if len(b.ready) > 0 {
			n := copy(p, b.ready)
			b.ready = b.ready[n:]
			return n, nil
		}
		if len(b.tail) > 0 {
			b.ready, b.tail = b.tail, nil
			continue
		}
		if b.err != nil {
			return 0, b.err
		}
		if len(p) == 0 {
			return 0, nil
		}
		if b.bufs[0] == nil {
			buf := make([]byte, 2*holdSize)
			b.bufs = [2][]byte{buf[:holdSize:holdSize], buf[holdSize:]}
		}
		// The buffer not held is free: ready was handed over.
		next := b.bufs[1-b.held]
		n, err := b.src.Read(next)
		b.hash(next[:n])
		if n > 0 {
			// What was held is not the end: hand it over, hold this.
			b.ready = b.bufs[b.held][:b.heldN]
			b.held, b.heldN = 1-b.held, n
			b.empty = 0
		} else if err == nil {
			if b.empty++; b.empty >= 100 {
				err = io.ErrNoProgress
			}
		}
		switch {
		case err == io.EOF:
			if !b.matches() {
				return 0, b.fail("does not match")
			}
			b.tail = b.bufs[b.held][:b.heldN]
			b.heldN = 0
			b.err = io.EOF
		case err != nil:
			// The held bytes were never checked: they are not handed over.
			b.heldN = 0
			b.err = err
		}
	}
}

// Close closes the body.
func (b *bodyChecker) Close() error { return b.src.Close() }
