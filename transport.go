package asymjwt

import (
	"errors"
	"net"
	"net/http"
	"strings"
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
	token, err := t.Signer.Sign(req.Context(), req)
	if err != nil {
		return nil, err
	}
	req2 := req.Clone(req.Context())
	req2.Header.Set("Authorization", "JWT "+token)
	closeBody = false // the base transport closes it from here on
	return t.base().RoundTrip(req2)
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
	if req.Response != nil && req.Response.Request != nil {
		first = req.Response.Request
		for first.Response != nil && first.Response.Request != nil {
			first = first.Response.Request
		}
		if first.URL == nil {
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

// NewClient returns an http.Client whose requests are signed by s, over
// http.DefaultTransport.
func NewClient(s *Signer) *http.Client {
	return &http.Client{Transport: &Transport{Signer: s}}
}
