package asymjwt

import (
	"net/http"
	"strings"
)

// The headers in which a verifying gateway (such as "asymjwt verify-proxy")
// tells the service behind it who called: the verified username and the
// [Fingerprint] of the key that verified the token ("SHA256:...").
const (
	// UserHeader carries the verified username.
	UserHeader = "Asymjwt-User"
	// KeyHeader carries the fingerprint of the key that verified the token.
	KeyHeader = "Asymjwt-Key"
)

// StripIdentityHeaders removes from h every header that a service behind a
// gateway could read as [UserHeader] or [KeyHeader], so that only what the
// gateway sets reaches it: any letter case, every repeated value, and the
// spellings with "_" for "-" ("Asymjwt_User"), which CGI, WSGI and Rack
// servers read as the same header (both become HTTP_ASYMJWT_USER). It also
// removes those names from the Connection header (and drops a Connection
// header left empty), so that no proxy on the way treats them as hop-by-hop
// and drops the gateway's own values. Other headers are kept. A nil h is
// left alone.
//
// Call it on the request sent to the service (for request trailers too, if
// they are forwarded) on every path, whether or not the request verified.
func StripIdentityHeaders(h http.Header) {
	for name, values := range h {
		switch {
		case isIdentityHeader(name):
			delete(h, name)
		case len(name) == len("Connection") && strings.EqualFold(name, "Connection"):
			stripConnection(h, name, values)
		}
	}
}

// stripConnection removes the identity header names from h[name], a
// Connection header.
func stripConnection(h http.Header, name string, values []string) {
	var kept []string
	for i, v := range values {
		w := removeIdentityTokens(v)
		if w == v && kept == nil {
			continue
		}
		if kept == nil {
			kept = append(make([]string, 0, len(values)), values[:i]...)
		}
		if w != "" {
			kept = append(kept, w)
		}
	}
	switch {
	case kept == nil:
	case len(kept) == 0:
		delete(h, name)
	default:
		h[name] = kept
	}
}

// SetIdentityHeaders strips h as [StripIdentityHeaders] does and sets
// [UserHeader] to id's username and [KeyHeader] to the fingerprint of the
// key that verified it, one value each.
//
// A username that a receiver would not read back as it is, because it
// starts or ends with a space (HTTP trims them from header values, so
// " alice" would arrive as "alice"), is not set: the error wraps
// [ErrInvalidUsername], h is left stripped, and the request must not be
// passed on as that user. A nil id is an error too.
func SetIdentityHeaders(h http.Header, id *Identity) error {
	StripIdentityHeaders(h)
	if id == nil {
		return errorf("SetIdentityHeaders: nil Identity")
	}
	u := id.Username
	if !validUsername(u) || u[0] == ' ' || u[len(u)-1] == ' ' {
		return errorf("SetIdentityHeaders: %w: %q cannot be sent as a header value as it is", ErrInvalidUsername, truncate(u))
	}
	h[UserHeader] = []string{u}
	h[KeyHeader] = []string{id.Key.Fingerprint}
	return nil
}

// isIdentityHeader reports whether name, with "_" read as "-" and without
// case, is one of the identity headers.
func isIdentityHeader(name string) bool {
	return len(name) == len(UserHeader) && equalHeaderName(name, UserHeader) ||
		len(name) == len(KeyHeader) && equalHeaderName(name, KeyHeader)
}

// equalHeaderName compares header names as CGI does: without case, "_"
// equal to "-". a and b have the same length.
func equalHeaderName(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := lowerHeaderByte(a[i]), lowerHeaderByte(b[i])
		if x != y {
			return false
		}
	}
	return true
}

func lowerHeaderByte(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + ('a' - 'A')
	}
	return c
}

// removeIdentityTokens removes the identity header names from a
// Connection header value, a comma-separated list of tokens; a value
// without them is returned as it is.
func removeIdentityTokens(v string) string {
	found := false
	for tok := range strings.SplitSeq(v, ",") {
		if isIdentityHeader(strings.Trim(tok, " \t")) {
			found = true
			break
		}
	}
	if !found {
		return v
	}
	var b strings.Builder
	for tok := range strings.SplitSeq(v, ",") {
		tok = strings.Trim(tok, " \t")
		if tok == "" || isIdentityHeader(tok) {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tok)
	}
	return b.String()
}
