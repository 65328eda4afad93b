package asymjwt

import (
	"crypto/sha256"
	"encoding/base64"
)

// The "htq" claim binds a request's query: the unpadded base64url SHA-256
// of its canonical form. The canonical form is the query's bytes (after
// "?", before any "#"), in their order, with the percent-encoding
// normalised as RFC 3986 §6.2.2 allows and nothing else changed:
//
//   - "%XX" of an unreserved character (A-Z a-z 0-9 - . _ ~) becomes the
//     character, and the hex digits of every other "%XX" are upper-cased;
//   - a byte a query may not hold as it is (anything but unreserved, the
//     sub-delims ! $ & ' ( ) * + , ; =, and : @ / ? %) becomes "%XX";
//   - reserved characters stay as they came: "+" is not "%20" or "%2B",
//     "&" is not "%26", "=" is not "%3D", since servers read them apart;
//   - the order of the parameters is kept: reordering changes what some
//     servers read (the first or the last of a repeated name);
//   - a query with a "%" not followed by two hex digits is taken as it is.
//
// So every form of one query that a server decodes alike has one canonical
// form, and forms a server may read differently have different ones.
//
// A request without a query (or with "?" alone) has an empty htq, "": it
// binds the empty query in 43 bytes less than a digest, which every token
// of a GET without a query would carry. A non-empty query never has an
// empty canonical form, so the two cannot meet.

// htqLen is the length of an htq claim of a query: base64url of 32 bytes,
// unpadded.
const htqLen = 43

// appendHTQ appends the htq of the raw query q to dst: nothing for no
// query.
func appendHTQ(dst []byte, q string) []byte {
	if q == "" {
		return dst
	}
	var buf [512]byte
	sum := sha256.Sum256(appendCanonicalQuery(buf[:0], q))
	return base64.RawURLEncoding.AppendEncode(dst, sum[:])
}

// appendCanonicalQuery appends the canonical form of the raw query q to
// dst (see above).
func appendCanonicalQuery(dst []byte, q string) []byte {
	start := len(dst)
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '%':
			if i+2 >= len(q) { // fewer than two characters follow
				return append(dst[:start], q...)
			}
			hi, ok1 := unhex(q[i+1])
			lo, ok2 := unhex(q[i+2])
			if !ok1 || !ok2 {
				return append(dst[:start], q...)
			}
			if b := hi<<4 | lo; isUnreserved(b) {
				dst = append(dst, b)
			} else {
				dst = append(dst, '%', upperHex[hi], upperHex[lo])
			}
			i += 2
		case queryRawOK(c):
			dst = append(dst, c)
		default:
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return dst
}

const upperHex = "0123456789ABCDEF"

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// isUnreserved reports whether c is an RFC 3986 unreserved character.
func isUnreserved(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// queryRawOK reports whether c may stand in a query as it is (RFC 3986
// §3.4: pchar, "/" and "?"), "%" aside.
func queryRawOK(c byte) bool {
	if isUnreserved(c) {
		return true
	}
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@', '/', '?':
		return true
	}
	return false
}
