package asymjwt

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/go-retryablehttp"
)

// ClientOption configures [NewClient] and [NewRetryClient].
type ClientOption func(*clientConfig)

type clientConfig struct {
	base   http.RoundTripper
	hosts  []string
	noSkew bool
}

// WithBaseTransport sets the transport that sends the signed requests
// (TLS settings, proxies, timeouts). The default is http.DefaultTransport.
func WithBaseTransport(rt http.RoundTripper) ClientOption {
	return func(c *clientConfig) { c.base = rt }
}

// WithAllowedHosts names every host the client may sign for and follow
// redirects to ("api.example.com", or with a port). Without it, requests
// are signed for any host, and redirects are followed only within the
// scheme and host of the first request. With it, list the hosts you call
// too: requests to hosts not listed are sent unsigned.
func WithAllowedHosts(hosts ...string) ClientOption {
	return func(c *clientConfig) { c.hosts = append(c.hosts, hosts...) }
}

// WithoutSkewCorrection stops the client learning the server's clock from
// stale refusals (see [Transport.DisableSkewCorrection]).
func WithoutSkewCorrection() ClientOption {
	return func(c *clientConfig) { c.noSkew = true }
}

// NewClient returns an http.Client whose requests are signed by s (see
// [Transport]). It follows at most 10 redirects, never to another scheme or
// host unless [WithAllowedHosts] names it; every hop is signed afresh.
func NewClient(s *Signer, opts ...ClientOption) *http.Client {
	var cfg clientConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	return &http.Client{
		Transport: &Transport{
			Signer:                s,
			Base:                  cfg.base,
			AllowedHosts:          cfg.hosts,
			DisableSkewCorrection: cfg.noSkew,
		},
		CheckRedirect: redirectPolicy(cfg.hosts),
	}
}

// NewRetryClient returns a go-retryablehttp client that retries failed
// requests (connection errors, 429 and 5xx, with backoff) through a client
// from [NewClient]. The retry layer sits above the signing Transport, so
// every attempt carries a new token with its own nonce; in the other order
// one token would be sent on every attempt and refused as a replay from the
// second on. Request bodies are replayed intact by retryablehttp.
//
// The client logs nothing (its Logger is nil); set Logger, RetryMax and the
// wait times on the result as needed.
func NewRetryClient(s *Signer, opts ...ClientOption) *retryablehttp.Client {
	rc := retryablehttp.NewClient()
	rc.HTTPClient = NewClient(s, opts...)
	rc.Logger = nil
	return rc
}

// redirectPolicy follows redirects within the first request's scheme and
// host, or to an allowed host, and never from https to http.
func redirectPolicy(hosts []string) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("asymjwt: stopped after 10 redirects")
		}
		first := via[0]
		if strings.EqualFold(first.URL.Scheme, "https") && !strings.EqualFold(req.URL.Scheme, "https") {
			return fmt.Errorf("%w: from https to %s://%s", ErrRedirectRefused, req.URL.Scheme, req.URL.Host)
		}
		if strings.EqualFold(first.URL.Scheme, req.URL.Scheme) &&
			canonicalHost(first.URL.Scheme, requestHost(first)) == canonicalHost(req.URL.Scheme, requestHost(req)) {
			return nil
		}
		for _, h := range hosts {
			if hostMatches(h, requestHost(req), req.URL.Scheme) {
				return nil
			}
		}
		return fmt.Errorf("%w: to %s://%s", ErrRedirectRefused, req.URL.Scheme, req.URL.Host)
	}
}
