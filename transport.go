package asymjwt

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Transport is an http.RoundTripper that signs every request it sends with
// a new token from Signer, in the header "Authorization: JWT <token>".
//
// It never changes the caller's request: it signs a clone. If signing fails
// the request is not sent and RoundTrip returns the error. Because every call
// signs afresh, every retry attempt and every redirect hop carries its own
// token; put retry layers above the Transport, never below it.
//
// Unless the Signer was made [WithoutBodyBinding] (or [WithoutBinding]),
// the token also binds the body: the clone carries the body's
// "Content-Digest: sha-256=:<base64>:" header (RFC 9530), which the token's
// "hcd" claim repeats; a request without a body gets the claim of an empty
// body and no header. A body with GetBody (as http.NewRequest sets for
// bytes, strings and buffers) is hashed from a fresh copy, never held in
// memory; any other body is read into memory first, up to
// [WithMaxBufferedBody], and past that RoundTrip fails with a
// [*BodyTooLargeError] without sending anything. The clone is sent with the
// body's length when it was not known.
//
// A redirect hop to another scheme or host than the request the client
// started with is sent unsigned, unless AllowedHosts names that host; a hop
// from https to http is always sent unsigned. [NewClient] makes a client
// whose redirect policy follows the same rule.
//
// A Transport is safe for concurrent use by multiple goroutines. To rotate
// its key while it is in use, call [Signer.SetKey].
type Transport struct {
	// Signer makes the tokens. It must be set.
	Signer *Signer

	// Base is the transport that sends the signed requests. If nil,
	// http.DefaultTransport is used.
	Base http.RoundTripper

	// AllowedHosts, when not empty, is the complete list of hosts
	// ("api.example.com" or "api.example.com:8443", compared without case;
	// an entry without a port matches the host on any port) that requests
	// are signed for and redirects may lead to; requests to other hosts are
	// sent unsigned. When empty, every request is signed except redirect
	// hops that leave the scheme and host of the request the client started
	// with. Either way, a redirect hop from https to http is never signed.
	AllowedHosts []string

	// DisableSkewCorrection turns off learning the servers' clocks. By
	// default, when a server refuses a request as stale (401 with
	// "WWW-Authenticate: JWT error=stale") and its answer carries a Date
	// header, the Transport learns that host's clock offset from the Date,
	// uses it for every later request to that host (see
	// [Transport.ClockOffset]) and, if the request's body can be sent again
	// (no body, or GetBody set), sends it once more with a new token. An
	// answer that took longer than 5 seconds teaches nothing, since its Date
	// cannot be placed; nor does an offset of more than 5 minutes, which is a
	// broken clock to fix, not to follow. Offsets are kept per host, so one
	// server cannot shift the tokens sent to another. A request is never
	// sent more than twice.
	DisableSkewCorrection bool

	skew clockSkew
}

var _ http.RoundTripper = (*Transport)(nil)

var (
	// errNoSigner is returned by a Transport without a Signer.
	errNoSigner = errors.New("asymjwt: Transport.Signer is nil")
	// errNoURL is returned for a request without a URL, as net/http does.
	errNoURL = errors.New("asymjwt: request has no URL")
)

// RoundTrip signs a clone of req and sends it through Base.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	closeBody := req.Body != nil
	defer func() {
		if closeBody {
			req.Body.Close()
		}
	}()

	// A missing Signer is a mistake whatever the host: never send unsigned
	// because of it.
	if t.Signer == nil {
		return nil, errNoSigner
	}
	if req.URL == nil {
		return nil, errNoURL
	}
	if !t.mustSign(req) {
		closeBody = false
		return t.base().RoundTrip(req)
	}
	if t.Signer.bindBody && req.GetBody == nil && hasBody(req) {
		// The body must be read twice, to hash it and to send it.
		closeBody = false // bufferBody closes it
		buffered, err := t.Signer.bufferBody(req)
		if err != nil {
			return nil, err
		}
		req = buffered
	}
	offset := t.skew.requestOffset(req)
	start := time.Now()
	resp, err := t.send(req, offset)
	closeBody = false // the base transport closes it from here on
	if err != nil || t.DisableSkewCorrection || !isStale(resp) ||
		!t.skew.learn(skewKey(req), offset, t.Signer.now(), resp, time.Since(start)) {
		return resp, err
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, nil // the body is gone; later requests use the new offset
	}
	retry := req.Clone(req.Context())
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		retry.Body = body
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	return t.send(retry, t.skew.offset(skewKey(req)))
}

// send signs req with the clock moved by offset and sends a clone of it
// carrying the token and, when the body is bound, its Content-Digest. It
// closes req's body when hashing or signing fails; after that the base
// transport owns it.
func (t *Transport) send(req *http.Request, offset time.Duration) (*http.Response, error) {
	var d bodyDigest
	var hcd []byte
	var body io.ReadCloser // the copy of a bound body to send
	if t.Signer.bindBody {
		var err error
		if body, err = bindBody(req, &d); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
		hcd = d.member()
	}
	auth, err := t.Signer.authorization(req.Context(), req, offset, hcd)
	if err != nil {
		if body != nil {
			body.Close()
		} else if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	req2 := withOwnHeader(req, 2)
	req2.Header.Set("Authorization", auth)
	switch {
	case hcd == nil:
	case body != nil:
		req2.Body = body
		req2.Header.Set(contentDigestHeader, string(hcd))
		if req2.ContentLength <= 0 {
			req2.ContentLength = d.length
		}
	default:
		// No body: the claim says so, and a header of the caller's
		// would contradict it.
		if _, ok := req2.Header[contentDigestHeader]; ok {
			delete(req2.Header, contentDigestHeader)
		}
	}
	return t.base().RoundTrip(req2)
}

// withOwnHeader returns a shallow copy of req whose Header is its own, with
// room for extra more names: all that send changes. Request.Clone would also
// copy the URL, the trailer and the forms, which nothing here changes, and
// grow the map when a header is added.
func withOwnHeader(req *http.Request, extra int) *http.Request {
	r2 := new(http.Request)
	*r2 = *req
	n := 0
	for _, vv := range req.Header {
		n += len(vv)
	}
	values := make([]string, n) // one array for all values, as Header.Clone
	h := make(http.Header, len(req.Header)+extra)
	for k, vv := range req.Header {
		if vv == nil {
			h[k] = nil // kept: a nil value suppresses a header net/http adds
			continue
		}
		n := copy(values, vv)
		h[k] = values[:n:n]
		values = values[n:]
	}
	r2.Header = h
	return r2
}

// ClockOffset returns the clock offset the Transport has learned for host
// ("api.example.com" or with a port), zero if none: positive when the
// host's clock is ahead. It is added to the Signer's clock for requests to
// that host.
func (t *Transport) ClockOffset(host string) time.Duration {
	for _, scheme := range [...]string{"https", "http"} {
		if d := t.skew.offset(canonicalHost(scheme, host)); d != 0 {
			return d
		}
	}
	return 0
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// mustSign decides whether req gets a token, by [Transport.policy]. On a
// redirect hop the request the client started with is found through
// req.Response; if that chain is broken (a Base that does not set
// Response.Request), the origin is unknown and nothing is signed.
func (t *Transport) mustSign(req *http.Request) bool {
	var first *http.Request
	if req.Response != nil {
		for first = req.Response.Request; first != nil && first.Response != nil; first = first.Response.Request {
		}
		if first == nil || first.URL == nil {
			return false
		}
	}
	sign, _ := t.policy(first, req)
	return sign
}

// policy is the one rule for hosts, used both to decide what to sign and
// what redirects to follow. first is the request a redirect chain started
// with, nil when req is that request. A redirect is followed when it stays
// on first's scheme and host or goes to a host AllowedHosts names, and
// never from https to http (a token sent in clear text can be taken and
// used). A request is signed when AllowedHosts names its host, or, when
// AllowedHosts is empty, when it is not a redirect that left first's
// scheme and host.
func (t *Transport) policy(first, req *http.Request) (sign bool, follow error) {
	if first != nil && isHTTPS(first) && !isHTTPS(req) {
		return false, errorf("%w: from https to %s://%s", ErrRedirectRefused, req.URL.Scheme, req.URL.Host)
	}
	listed := false
	for _, h := range t.AllowedHosts {
		if hostMatches(h, requestHost(req), req.URL.Scheme) {
			listed = true
			break
		}
	}
	same := first == nil || (strings.EqualFold(first.URL.Scheme, req.URL.Scheme) &&
		// canonicalHost drops default ports, so :443 and no port agree.
		canonicalHost(first.URL.Scheme, requestHost(first)) == canonicalHost(req.URL.Scheme, requestHost(req)))
	if !same && !listed {
		return false, errorf("%w: to %s://%s", ErrRedirectRefused, req.URL.Scheme, req.URL.Host)
	}
	return listed || (same && len(t.AllowedHosts) == 0), nil
}

func isHTTPS(r *http.Request) bool { return strings.EqualFold(r.URL.Scheme, "https") }

// hostMatches reports whether an AllowedHosts entry names host: an entry
// without a port matches the host on any port.
func hostMatches(entry, host, scheme string) bool {
	host = canonicalHost(scheme, host)
	entry = canonicalHost(scheme, entry)
	if entry == host {
		return true
	}
	if _, _, err := net.SplitHostPort(entry); err == nil {
		return false // the entry names a port, and it differs
	}
	h, _, err := net.SplitHostPort(host)
	return err == nil && strings.Trim(entry, "[]") == h
}
