package asymjwt

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Request binding, in the meaning RFC 9449 (DPoP) §4.2 gives "htm" and
// "htu": the HTTP method, and the target URI without query and fragment.
// Both sides normalise htu the same way (RFC 3986 §6.2.2-6.2.3): lower-case
// scheme and host, no default port, "/" for an empty path.

// requestHTU returns the htu claim for an outgoing request. The Host header,
// when the caller set one, is what the server sees, so it wins over URL.Host.
func requestHTU(r *http.Request) string {
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	return buildHTU(r.URL.Scheme, host, r.URL.EscapedPath())
}

// appendRequestHTU appends the htu claim of an outgoing request to dst as a
// JSON string: the same bytes as appendJSONString(dst, requestHTU(r)), without
// building the string on the heap first (Sign runs once per request).
func appendRequestHTU(dst []byte, r *http.Request) []byte {
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	scheme := strings.ToLower(r.URL.Scheme)
	dst = append(dst, '"')
	dst = appendJSONChars(dst, scheme)
	dst = append(dst, "://"...)
	dst = appendJSONChars(dst, canonicalHost(scheme, host))
	dst = appendJSONChars(dst, path)
	return append(dst, '"')
}

// buildHTU assembles a normalised htu.
func buildHTU(scheme, host, path string) string {
	if path == "" {
		path = "/"
	}
	scheme = strings.ToLower(scheme)
	return scheme + "://" + canonicalHost(scheme, host) + path
}

// canonicalHost lower-cases host and drops the scheme's default port.
func canonicalHost(scheme, host string) string {
	host = strings.ToLower(host)
	// Without a port net.SplitHostPort fails, and its error allocates.
	if !strings.Contains(host, ":") || (strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]")) {
		return host
	}
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		return host
	}
	scheme = strings.ToLower(scheme)
	if port == "" || (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return host
}

// normalizeHTU parses an htu claim and returns its normalised form, or false
// when it is not an absolute http(s) URI.
func normalizeHTU(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", false
	}
	return buildHTU(u.Scheme, u.Host, u.EscapedPath()), true
}
