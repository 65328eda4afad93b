package asymjwt

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math"
	"net/http"
)

// How a Transport binds the body of a request it signs: the body is hashed
// before it is sent (the digest goes in the token and in Content-Digest),
// so it must be read twice. A body with GetBody is hashed from a fresh copy
// and then sent as it is; any other body is read into memory first, up to
// the Signer's limit.

// hasBody reports whether an outgoing request has a body to send.
func hasBody(r *http.Request) bool { return r.Body != nil && r.Body != http.NoBody }

// bufferBody reads req's body, which has no GetBody, into memory, up to the
// Signer's limit, and returns a shallow copy of req that carries it, with a
// GetBody and its length. It closes req.Body whatever happens.
func (s *Signer) bufferBody(req *http.Request) (*http.Request, error) {
	defer req.Body.Close()
	limit := s.maxBody
	if req.ContentLength > limit {
		return nil, &BodyTooLargeError{Limit: limit}
	}
	var buf bytes.Buffer
	if req.ContentLength > 0 {
		buf.Grow(int(req.ContentLength) + bytes.MinRead)
	}
	var body io.Reader = req.Body
	if limit < math.MaxInt64 {
		body = io.LimitReader(req.Body, limit+1) // one more, to see it is too large
	}
	if _, err := buf.ReadFrom(body); err != nil {
		return nil, errorf("reading the request body to bind it: %w", err)
	}
	if int64(buf.Len()) > limit {
		return nil, &BodyTooLargeError{Limit: limit}
	}
	data := buf.Bytes()
	r2 := new(http.Request)
	*r2 = *req
	r2.ContentLength = int64(len(data))
	r2.GetBody = func() (io.ReadCloser, error) {
		if len(data) == 0 {
			return http.NoBody, nil
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	r2.Body, _ = r2.GetBody()
	return r2, nil
}

// bindBody hashes the body req is to be sent with into d and returns a
// fresh copy of it to send (nil for a request without a body). It sends
// another copy rather than req.Body because some GetBody functions
// (go-retryablehttp's, for an io.ReadSeeker) rewind and return the body
// itself, which hashing has just read to its end. req.Body is closed once
// the copy is had; on an error the caller closes it.
func bindBody(req *http.Request, d *bodyDigest) (io.ReadCloser, error) {
	if err := d.hashBody(req); err != nil || d.length < 0 {
		return nil, err
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, errorf("binding the request body: GetBody: %w", err)
	}
	req.Body.Close()
	return body, nil
}

// bodyDigest is the digest of the body a request is sent with, as the
// "hcd" claim and the Content-Digest header carry it.
type bodyDigest struct {
	buf    [sha256Member]byte
	n      int   // of buf in use
	length int64 // bytes hashed; -1 for a request without a body
}

// member returns "sha-256=:<base64>:".
func (d *bodyDigest) member() []byte { return d.buf[:d.n] }

// hashBody hashes the body req is to be sent with: a fresh copy from
// GetBody, read to its end and closed. The Transport has given a GetBody to
// every body that had none. A request without a body has the empty hcd,
// which binds the empty body (so none can be added in flight) in 54 bytes
// less than the digest of no bytes.
func (d *bodyDigest) hashBody(req *http.Request) error {
	if !hasBody(req) {
		d.n, d.length = 0, -1
		return nil
	}
	if req.GetBody == nil {
		return errorf("binding the request body: the body cannot be read twice (no GetBody)")
	}
	rc, err := req.GetBody()
	if err != nil {
		return errorf("binding the request body: GetBody: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, rc)
	rc.Close()
	if err != nil {
		return errorf("binding the request body: reading it: %w", err)
	}
	var sum [sha256.Size]byte
	d.n = len(appendDigestMember(d.buf[:0], 0, h.Sum(sum[:0])))
	d.length = n
	return nil
}
