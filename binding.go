package asymjwt

import (
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/asymjwt/asymjwt/internal/jsonscan"
)

// Request binding, in the meaning RFC 9449 (DPoP) §4.2 gives "htm" and
// "htu": the HTTP method, and the target URI without query and fragment.
// Both sides normalise htu the same way (RFC 3986 §6.2.2-6.2.3): lower-case
// scheme and host, no default port, "/" for an empty path.

// appendRequestHTU appends the htu claim of an outgoing request to dst as a
// JSON string, without building it on the heap first. The host is the one
// the server sees ([requestHost]).
func appendRequestHTU(dst []byte, r *http.Request) []byte {
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	scheme := strings.ToLower(r.URL.Scheme)
	dst = append(dst, '"')
	dst = jsonscan.AppendChars(dst, scheme)
	dst = append(dst, "://"...)
	dst = jsonscan.AppendChars(dst, canonicalHost(scheme, requestHost(r)))
	dst = jsonscan.AppendChars(dst, path)
	return append(dst, '"')
}

// buildHTU assembles a normalised htu.
func buildHTU(scheme, host, path string) string {
	var buf [128]byte
	return string(appendHTU(buf[:0], scheme, host, path))
}

// appendHTU appends a normalised htu to dst.
func appendHTU(dst []byte, scheme, host, path string) []byte {
	if path == "" {
		path = "/"
	}
	scheme = strings.ToLower(scheme)
	dst = append(dst, scheme...)
	dst = append(dst, "://"...)
	dst = append(dst, canonicalHost(scheme, host)...)
	return append(dst, path...)
}

// requestHost is the host an outgoing request goes to as the server sees
// it: the Host header when the caller set one, else the URL's.
func requestHost(r *http.Request) string {
	if r.Host != "" {
		return r.Host
	}
	return r.URL.Host
}

// canonicalHost lower-cases host and drops the scheme's default port. It is
// the one way hosts are compared, on both sides.
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
