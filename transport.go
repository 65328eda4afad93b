package asymjwt

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
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
// A redirect hop to another scheme or host than the request the client
// started with is sent unsigned, unless AllowedHosts names that host; a hop
// from https to http is always sent unsigned.
//
// A Transport is safe for concurrent use by multiple goroutines.
type Transport struct {
	// Signer makes the tokens. It must be set.
	Signer *Signer

	// Base is the transport that sends the signed requests. If nil,
	// http.DefaultTransport is used.
	Base http.RoundTripper

	// AllowedHosts, when not empty, is the complete list of hosts
	// ("api.example.com" or "api.example.com:8443", compared without case)
	// that requests are signed for; requests to other hosts are sent
	// unsigned. When empty, every request is signed except redirect hops
	// that leave the scheme and host of the request the client started with.
	// Either way, a redirect hop from https to http is never signed.
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

	skew sync.Map // canonical host -> time.Duration learned from its Date
}

var _ http.RoundTripper = (*Transport)(nil)

// errNoSigner is returned by a Transport without a Signer.
var errNoSigner = errors.New("asymjwt: Transport.Signer is nil")

// errNoURL is returned for a request without a URL, as net/http does.
var errNoURL = errors.New("asymjwt: request has no URL")

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
	start := time.Now()
	resp, err := t.send(req)
	closeBody = false // the base transport closes it from here on
	if err != nil || t.DisableSkewCorrection || !isStale(resp) || !t.learnSkew(req, resp, time.Since(start)) {
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
	return t.send(retry)
}

// send signs req and sends a clone of it carrying the token. It closes
// req's body when signing fails; after that the base transport owns it.
func (t *Transport) send(req *http.Request) (*http.Response, error) {
	token, err := t.Signer.sign(req.Context(), req, t.hostSkew(skewKey(req)))
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	req2 := req.Clone(req.Context())
	req2.Header.Set("Authorization", "JWT "+token)
	return t.base().RoundTrip(req2)
}

// Limits on what a Date header can teach.
const (
	maxSkewRoundTrip = 5 * time.Second // longest exchange whose Date is placed
	maxLearnedSkew   = 5 * time.Minute // largest offset followed
)

// ClockOffset returns the clock offset the Transport has learned for host
// ("api.example.com" or with a port), zero if none: positive when the
// host's clock is ahead. It is added to the Signer's own clock and offset.
func (t *Transport) ClockOffset(host string) time.Duration {
	for _, scheme := range [...]string{"https", "http"} {
		if d := t.hostSkew(canonicalHost(scheme, host)); d != 0 {
			return d
		}
	}
	return 0
}

func (t *Transport) hostSkew(key string) time.Duration {
	if d, ok := t.skew.Load(key); ok {
		return d.(time.Duration)
	}
	return 0
}

func skewKey(req *http.Request) string { return canonicalHost(req.URL.Scheme, requestHost(req)) }

// isStale reports whether resp refuses a token as stale.
func isStale(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized {
		return false
	}
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		scheme, params, _ := strings.Cut(v, " ")
		if strings.EqualFold(scheme, "JWT") && strings.Contains(params, `error="stale"`) {
			return true
		}
	}
	return false
}

// learnSkew learns req's host's clock offset from resp's Date header, and
// reports whether that changed it enough to be worth another try.
func (t *Transport) learnSkew(req *http.Request, resp *http.Response, elapsed time.Duration) bool {
	if elapsed > maxSkewRoundTrip {
		return false
	}
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return false
	}
	// The server wrote Date about halfway through the exchange, truncated
	// to the second.
	s := t.Signer
	ours := s.now().Add(s.ClockOffset()).Add(-elapsed / 2)
	offset := date.Add(500 * time.Millisecond).Sub(ours).Round(time.Second)
	if offset > maxLearnedSkew || offset < -maxLearnedSkew {
		return false
	}
	key := skewKey(req)
	if d := offset - t.hostSkew(key); d > -time.Second && d < time.Second {
		return false // not a clock problem this can fix
	}
	t.skew.Store(key, offset)
	return true
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// mustSign decides whether req gets a token.
func (t *Transport) mustSign(req *http.Request) bool {
	host := requestHost(req)
	var first *http.Request // the request the client started with, on a redirect hop
	if req.Response != nil {
		// A redirect hop: find the request the client started with. If the
		// chain is broken (a Base that does not set Response.Request), the
		// origin is unknown, and nothing is signed.
		for first = req.Response.Request; first != nil && first.Response != nil; first = first.Response.Request {
		}
		if first == nil || first.URL == nil {
			return false
		}
		// A token sent in clear text can be taken and used; never sign a
		// hop that leaves https, allowed host or not.
		if strings.EqualFold(first.URL.Scheme, "https") && !strings.EqualFold(req.URL.Scheme, "https") {
			return false
		}
	}
	if len(t.AllowedHosts) > 0 {
		for _, h := range t.AllowedHosts {
			if hostMatches(h, host, req.URL.Scheme) {
				return true
			}
		}
		return false
	}
	if first == nil {
		return true // not a redirect hop
	}
	return strings.EqualFold(first.URL.Scheme, req.URL.Scheme) &&
		// canonicalHost drops default ports, so :443 and no port agree.
		canonicalHost(first.URL.Scheme, requestHost(first)) == canonicalHost(req.URL.Scheme, host)
}

func requestHost(r *http.Request) string {
	if r.Host != "" {
		return r.Host
	}
	return r.URL.Host
}

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
