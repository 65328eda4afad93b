// Package jsonscan reads and writes the one JSON shape a JWS header or
// claims set has, an object of named members, strictly and without
// reflection.
package jsonscan

import (
	"bytes"
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A strict, allocation-light reader for the one JSON shape a JWS header or
// claims set has: an object of named members. Go's encoding/json matches
// names case-insensitively and keeps the last of duplicate names, so the name
// a check looks at and the name another reader authorises could differ
// (SECURITY.md V4). Here every member is seen once, by its exact name, and
// duplicate or case-variant names are an error.

const (
	maxJSONDepth   = 32 // nesting inside a member's value
	maxJSONMembers = 64 // members of the top-level object
)

// ErrSyntax is returned for input that is not the JSON expected.
var ErrSyntax = errors.New("invalid JSON")

// ScanObject calls visit for each member of the JSON object in data, in
// order, with the member's decoded name and its raw value. It fails on
// anything that is not exactly one well-formed object, on duplicate or
// case-variant names, and on too many members or too deep nesting.
func ScanObject(data []byte, visit func(name, value []byte) error) error {
	// A header or claims set has a handful of members: room for the usual
	// number on the stack, without zeroing room for the most.
	var small [16][]byte
	names := small[:0]
	i := SkipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return ErrSyntax
	}
	i = SkipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		if SkipSpace(data, i+1) != len(data) {
			return ErrSyntax
		}
		return nil
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return ErrSyntax
		}
		end, err := ScanString(data, i)
		if err != nil {
			return err
		}
		name := Unquote(data[i:end])
		if len(names) == maxJSONMembers {
			return errors.New("too many members")
		}
		for _, prev := range names {
			if equalFold(prev, name) {
				return errors.New("duplicate or case-variant member " + strconv.QuoteToASCII(string(name)))
			}
		}
		names = append(names, name)
		i = SkipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return ErrSyntax
		}
		start := SkipSpace(data, i+1)
		end, err = scanValue(data, start, 0)
		if err != nil {
			return err
		}
		if err := visit(name, data[start:end]); err != nil {
			return err
		}
		i = SkipSpace(data, end)
		if i >= len(data) {
			return ErrSyntax
		}
		if data[i] == '}' {
			if SkipSpace(data, i+1) != len(data) {
				return ErrSyntax
			}
			return nil
		}
		if data[i] != ',' {
			return ErrSyntax
		}
		i = SkipSpace(data, i+1)
	}
}

// equalFold is bytes.EqualFold, with a quick answer for the usual pair of
// names whose first bytes are ASCII and differ under case folding: an ASCII
// character folds to another only as its other case (and to U+017F or
// U+212A, which are not ASCII).
func equalFold(a, b []byte) bool {
	if len(a) > 0 && len(b) > 0 && a[0] < utf8.RuneSelf && b[0] < utf8.RuneSelf && lowerASCII(a[0]) != lowerASCII(b[0]) {
		return false
	}
	return bytes.EqualFold(a, b)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// SkipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func SkipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanValue returns the end of the JSON value starting at data[i].
func scanValue(data []byte, i, depth int) (int, error) {
	if i >= len(data) {
		return 0, ErrSyntax
	}
	switch c := data[i]; {
	case c == '"':
		return ScanString(data, i)
	case c == '{' || c == '[':
		if depth >= maxJSONDepth {
			return 0, errors.New("JSON nested too deeply")
		}
		return scanContainer(data, i, depth+1)
	case c == '-' || ('0' <= c && c <= '9'):
		return scanNumber(data, i)
	case c == 't':
		return scanLiteral(data, i, "true")
	case c == 'f':
		return scanLiteral(data, i, "false")
	case c == 'n':
		return scanLiteral(data, i, "null")
	}
	return 0, ErrSyntax
}

func scanLiteral(data []byte, i int, lit string) (int, error) {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return 0, ErrSyntax
	}
	return i + len(lit), nil
}

// scanContainer scans a nested object or array (names inside it are not
// checked for duplicates: nothing here reads them).
func scanContainer(data []byte, i, depth int) (int, error) {
	closer := byte(']')
	isObject := data[i] == '{'
	if isObject {
		closer = '}'
	}
	i = SkipSpace(data, i+1)
	if i < len(data) && data[i] == closer {
		return i + 1, nil
	}
	for {
		var err error
		if isObject {
			if i >= len(data) || data[i] != '"' {
				return 0, ErrSyntax
			}
			if i, err = ScanString(data, i); err != nil {
				return 0, err
			}
			i = SkipSpace(data, i)
			if i >= len(data) || data[i] != ':' {
				return 0, ErrSyntax
			}
			i = SkipSpace(data, i+1)
		}
		if i, err = scanValue(data, i, depth); err != nil {
			return 0, err
		}
		i = SkipSpace(data, i)
		if i >= len(data) {
			return 0, ErrSyntax
		}
		if data[i] == closer {
			return i + 1, nil
		}
		if data[i] != ',' {
			return 0, ErrSyntax
		}
		i = SkipSpace(data, i+1)
	}
}

// ScanString returns the end of the JSON string starting at data[i] (just
// past the closing quote), checking escapes, control characters and UTF-8.
func ScanString(data []byte, i int) (int, error) {
	i++ // opening quote
	for i < len(data) {
		// Most of a string is printable ASCII, passed at a table lookup a
		// byte.
		for i < len(data) && plainASCII[data[i]] {
			i++
		}
		if i == len(data) {
			break
		}
		c := data[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 >= len(data) {
				return 0, ErrSyntax
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(data) {
					return 0, ErrSyntax
				}
				if _, ok := hex4(data[i+2 : i+6]); !ok {
					return 0, ErrSyntax
				}
				i += 6
			default:
				return 0, ErrSyntax
			}
		case c < utf8.RuneSelf: // a control character
			return 0, ErrSyntax
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				return 0, ErrSyntax
			}
			i += size
		}
	}
	return 0, ErrSyntax
}

// plainASCII marks the bytes a JSON string holds as they are: printable
// ASCII but the quote and the backslash.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// scanNumber returns the end of the JSON number starting at data[i],
// following the grammar of RFC 8259 §6 exactly.
func scanNumber(data []byte, i int) (int, error) {
	digits := func(i int) int {
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
		return i
	}
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && '1' <= data[i] && data[i] <= '9':
		i = digits(i)
	default:
		return 0, ErrSyntax
	}
	if i < len(data) && data[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, ErrSyntax
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, ErrSyntax
		}
		i = j
	}
	return i, nil
}

// Unquote decodes a complete, already scanned JSON string (with its
// quotes). Without escapes it returns a subslice of quoted; lone surrogates
// become U+FFFD, as in encoding/json.
func Unquote(quoted []byte) []byte {
	s := quoted[1 : len(quoted)-1]
	i := 0
	for i < len(s) && s[i] != '\\' {
		i++
	}
	if i == len(s) {
		return s
	}
	out := make([]byte, i, len(s))
	copy(out, s[:i])
	for i < len(s) {
		if s[i] != '\\' {
			out = append(out, s[i])
			i++
			continue
		}
		switch s[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, _ := hex4(s[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if r2, ok := hex4(s[i+2 : i+6]); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							out = utf8.AppendRune(out, dec)
							i += 6
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // '"', '\\', '/'
			out = append(out, s[i+1])
		}
		i += 2
	}
	return out
}

// IsString reports whether a scanned member value is a string.
func IsString(value []byte) bool { return len(value) >= 2 && value[0] == '"' }

// String returns the value of a JSON string member (already scanned).
func String(value []byte) (string, bool) {
	if !IsString(value) {
		return "", false
	}
	return string(Unquote(value)), true
}

// Number returns the value of a JSON number member.
func Number(value []byte) (float64, bool) {
	if f, ok := smallInteger(value); ok {
		return f, true
	}
	if len(value) == 0 || (value[0] != '-' && (value[0] < '0' || value[0] > '9')) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(value), 64)
	if err != nil { // out of range: ±Inf
		return 0, false
	}
	return f, true
}

// smallInteger reads an integer of at most 15 digits, such as a time in
// seconds, exactly as strconv.ParseFloat would (all are exact in a
// float64), without its general machinery.
func smallInteger(value []byte) (float64, bool) {
	digits := value
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 15 || (digits[0] == '0' && len(digits) > 1) {
		return 0, false
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	f := float64(n)
	if len(digits) < len(value) {
		f = -f
	}
	return f, true
}

// StringArray reads a scanned JSON array of strings, such as an "aud"
// claim, and reports whether value was one.
func StringArray(value []byte) ([]string, bool) {
	if len(value) < 2 || value[0] != '[' {
		return nil, false
	}
	var out []string
	i := SkipSpace(value, 1)
	if value[i] == ']' {
		return out, true
	}
	for {
		if value[i] != '"' {
			return nil, false
		}
		end, err := ScanString(value, i)
		if err != nil {
			return nil, false
		}
		s, _ := String(value[i:end])
		out = append(out, s)
		i = SkipSpace(value, end)
		if value[i] == ']' {
			return out, true
		}
		if value[i] != ',' {
			return nil, false
		}
		i = SkipSpace(value, i+1)
	}
}

// Elements calls visit with each element of value, a JSON array already
// scanned as a member's value (such as the "keys" of a JWK set), in order.
// It fails on anything else.
func Elements(value []byte, visit func(elem []byte) error) error {
	if len(value) < 2 || value[0] != '[' {
		return ErrSyntax
	}
	i := SkipSpace(value, 1)
	if value[i] == ']' {
		return nil
	}
	for {
		end, err := scanValue(value, i, 1)
		if err != nil {
			return err
		}
		if err := visit(value[i:end]); err != nil {
			return err
		}
		i = SkipSpace(value, end)
		if i >= len(value) {
			return ErrSyntax
		}
		if value[i] == ']' {
			return nil
		}
		if value[i] != ',' {
			return ErrSyntax
		}
		i = SkipSpace(value, i+1)
	}
}

// AppendString appends s to dst as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = AppendChars(dst, s)
	return append(dst, '"')
}

// AppendChars appends s escaped for the inside of a JSON string.
func AppendChars(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\':
				dst = append(dst, '\\', b)
			case b < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			default:
				dst = append(dst, b)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}
