package asymjwt

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/hashicorp/go-retryablehttp"
)

// maxRedirects is how many redirects the clients of NewClient follow, as
// net/http's default policy.
const maxRedirects = 10

// NewClient returns an http.Client whose requests t signs. It follows at
// most 10 redirects, by the rule t applies to signing (see
// [Transport.AllowedHosts]): within the scheme and host of the first
// request, or to a host AllowedHosts names, never from https to http;
// other redirects fail with an error wrapping [ErrRedirectRefused]. Every
// hop is signed afresh.
//
//	client := asymjwt.NewClient(&asymjwt.Transport{Signer: signer})
func NewClient(t *Transport) *http.Client {
	if t == nil {
		t = &Transport{} // RoundTrip refuses to send: no Signer
	}
	return &http.Client{Transport: t, CheckRedirect: t.checkRedirect}
}

// checkRedirect is the clients' redirect policy: [Transport.policy].
func (t *Transport) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return errorf("stopped after %d redirects", maxRedirects)
	}
	_, err := t.policy(via[0], req)
	return err
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
func NewRetryClient(t *Transport) *retryablehttp.Client {
	rc := retryablehttp.NewClient()
	rc.HTTPClient = NewClient(t)
	rc.Logger = nil
	return rc
}

// CheckResponse returns a [*RefusedError] when resp is a verifier's
// refusal: status 401 or 503 with "WWW-Authenticate: JWT error=<kind>". It
// returns nil for any other answer, successful or not. The body is left to
// the caller.
//
//	resp, err := client.Do(req)
//	...
//	if err := asymjwt.CheckResponse(resp); errors.Is(err, asymjwt.ErrStale) { ... }
func CheckResponse(resp *http.Response) error {
	if resp == nil || (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusServiceUnavailable) {
		return nil
	}
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		scheme, params, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !strings.EqualFold(scheme, "JWT") {
			continue
		}
		kind := "invalid_token"
		if k, ok := authParam(params, "error"); ok {
			if _, known := kindSentinel(k); known {
				kind = k
			}
		}
		return &RefusedError{StatusCode: resp.StatusCode, Kind: kind, Response: resp}
	}
	return nil
}

// authParam finds name=value or name="value" in a WWW-Authenticate
// challenge's parameters (RFC 9110 §11.2).
func authParam(params, name string) (string, bool) {
	for _, p := range strings.Split(params, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), name) {
			continue
		}
		v = strings.TrimSpace(v)
		if strings.HasPrefix(v, `"`) {
			u, err := strconv.Unquote(v)
			if err != nil {
				return "", false
			}
			v = u
		}
		return v, true
	}
	return "", false
}
