// Package sfv reads HTTP Structured Field dictionaries (RFC 8941, with the
// Date and Display String types of RFC 9651) strictly, by the parsing
// algorithms of RFC 8941 §4.2: a field that does not parse as a whole is an
// error, never partly read.
package sfv

import (
	"encoding/base64"
	"errors"
	"unicode/utf8"
)

// ErrSyntax is returned for a field value that is not a well-formed
// dictionary. It never quotes the input.
var ErrSyntax = errors.New("malformed structured field")

// Kind is the type of a dictionary member's value.
type Kind uint8

// The kinds of member values.
const (
	Boolean Kind = iota + 1 // also a member without "=value"
	Integer
	Decimal
	String
	Token
	Bytes
	Date
	DisplayString
	InnerList
)

// ScanDictionary parses s as an sf-dictionary and calls visit for each
// member, in order, with its key, the kind of its value and its raw text:
// for Bytes the base64 between the colons (see [DecodeBytes]), for the other
// kinds the value as it appears. Parameters are checked and skipped. Keys
// may repeat (RFC 8941 keeps the last; visit sees each). An empty s is an
// empty dictionary. visit's error stops the scan and is returned.
func ScanDictionary(s string, visit func(key string, kind Kind, raw string) error) error {
	p := parser{s: s}
	p.skipSP()
	if p.done() {
		return nil
	}
	for {
		key, ok := p.key()
		if !ok {
			return ErrSyntax
		}
		kind, start, end := Boolean, p.i, p.i
		if p.peek() == '=' {
			p.i++
			if p.peek() == '(' {
				start = p.i
				if !p.innerList() {
					return ErrSyntax
				}
				kind, end = InnerList, p.i
			} else {
				var ok bool
				if kind, start, end, ok = p.bareItem(); !ok {
					return ErrSyntax
				}
			}
		}
		if !p.parameters() {
			return ErrSyntax
		}
		if err := visit(key, kind, s[start:end]); err != nil {
			return err
		}
		p.skipOWS()
		if p.done() {
			return nil
		}
		if p.s[p.i] != ',' {
			return ErrSyntax
		}
		p.i++
		p.skipOWS()
		if p.done() {
			return ErrSyntax // a trailing comma
		}
	}
}

// DecodeBytes decodes the base64 text of a Bytes value, with or without
// its "=" padding (RFC 8941 §4.2.7 asks parsers to accept both).
func DecodeBytes(raw string) ([]byte, error) {
	enc := base64.StdEncoding.Strict()
	if len(raw)%4 != 0 {
		enc = base64.RawStdEncoding.Strict()
	}
	b, err := enc.DecodeString(raw)
	if err != nil {
		return nil, ErrSyntax
	}
	return b, nil
}

type parser struct {
	s string
	i int
}

func (p *parser) done() bool { return p.i >= len(p.s) }

func (p *parser) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

func (p *parser) skipSP() {
	for !p.done() && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *parser) skipOWS() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func isLCAlpha(c byte) bool { return 'a' <= c && c <= 'z' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || ('A' <= c && c <= 'Z') }
func isDigit(c byte) bool   { return '0' <= c && c <= '9' }

// key reads a key (RFC 8941 §4.2.3.3).
func (p *parser) key() (string, bool) {
	start := p.i
	if c := p.peek(); !isLCAlpha(c) && c != '*' {
		return "", false
	}
	for p.i++; !p.done(); p.i++ {
		c := p.s[p.i]
		if !isLCAlpha(c) && !isDigit(c) && c != '_' && c != '-' && c != '.' && c != '*' {
			break
		}
	}
	return p.s[start:p.i], true
}

// parameters reads and checks any parameters (RFC 8941 §4.2.3.2).
func (p *parser) parameters() bool {
	for p.peek() == ';' {
		p.i++
		p.skipSP()
		if _, ok := p.key(); !ok {
			return false
		}
		if p.peek() == '=' {
			p.i++
			if _, _, _, ok := p.bareItem(); !ok {
				return false
			}
		}
	}
	return true
}

// innerList reads an inner list (RFC 8941 §4.2.1.2); the caller reads its
// parameters.
func (p *parser) innerList() bool {
	p.i++ // '('
	for !p.done() {
		p.skipSP()
		if p.peek() == ')' {
			p.i++
			return true
		}
		if _, _, _, ok := p.bareItem(); !ok || !p.parameters() {
			return false
		}
		if c := p.peek(); c != ' ' && c != ')' {
			return false
		}
	}
	return false
}

// bareItem reads a bare item (RFC 8941 §4.2.3.1, RFC 9651 §4.2.3.1) and
// returns its kind and the bounds of its raw text.
func (p *parser) bareItem() (kind Kind, start, end int, ok bool) {
	c := p.peek()
	switch {
	case c == '-' || isDigit(c):
		start = p.i
		kind, ok = p.number()
		return kind, start, p.i, ok
	case c == '"':
		start = p.i
		ok = p.str()
		return String, start, p.i, ok
	case c == '*' || isAlpha(c):
		start = p.i
		p.token()
		return Token, start, p.i, true
	case c == ':':
		p.i++
		start = p.i
		for !p.done() && p.s[p.i] != ':' {
			c := p.s[p.i]
			if !isAlpha(c) && !isDigit(c) && c != '+' && c != '/' && c != '=' {
				return 0, 0, 0, false
			}
			p.i++
		}
		if p.done() {
			return 0, 0, 0, false
		}
		end = p.i
		p.i++
		return Bytes, start, end, true
	case c == '?':
		start = p.i
		p.i++
		if b := p.peek(); b != '0' && b != '1' {
			return 0, 0, 0, false
		}
		p.i++
		return Boolean, start, p.i, true
	case c == '@':
		start = p.i
		p.i++
		k, ok := p.number()
		return Date, start, p.i, ok && k == Integer
	case c == '%':
		start = p.i
		ok = p.displayString()
		return DisplayString, start, p.i, ok
	}
	return 0, 0, 0, false
}

// number reads an Integer or a Decimal (RFC 8941 §4.2.4).
func (p *parser) number() (Kind, bool) {
	kind := Integer
	if p.peek() == '-' {
		p.i++
	}
	if !isDigit(p.peek()) {
		return 0, false
	}
	n, frac := 0, -1
	for ; !p.done(); p.i++ {
		c := p.s[p.i]
		if isDigit(c) {
			n++
			if frac >= 0 {
				frac++
			}
		} else if kind == Integer && c == '.' {
			if n > 12 {
				return 0, false
			}
			kind, frac = Decimal, 0
			n++
		} else {
			break
		}
		if (kind == Integer && n > 15) || (kind == Decimal && n > 16) {
			return 0, false
		}
	}
	if kind == Decimal && (frac < 1 || frac > 3) {
		return 0, false
	}
	return kind, true
}

// str reads a String (RFC 8941 §4.2.5).
func (p *parser) str() bool {
	p.i++ // '"'
	for !p.done() {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\':
			if b := p.peek(); b != '"' && b != '\\' {
				return false
			}
			p.i++
		case c == '"':
			return true
		case c < 0x20 || c > 0x7e:
			return false
		}
	}
	return false
}

// token reads a Token (RFC 8941 §4.2.6); its first character was checked.
func (p *parser) token() {
	for p.i++; !p.done(); p.i++ {
		if !isTokenChar(p.s[p.i]) {
			return
		}
	}
}

func isTokenChar(c byte) bool {
	if isAlpha(c) || isDigit(c) {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~', ':', '/':
		return true
	}
	return false
}

// displayString reads a Display String (RFC 9651 §4.2.10): percent-encoded
// UTF-8 in lower-case hex.
func (p *parser) displayString() bool {
	p.i++ // '%'
	if p.peek() != '"' {
		return false
	}
	p.i++
	var buf [4]byte
	n := 0 // bytes of an unfinished UTF-8 sequence in buf
	for !p.done() {
		c := p.s[p.i]
		p.i++
		switch {
		case c < 0x20 || c > 0x7e:
			return false
		case c == '%':
			if p.i+2 > len(p.s) {
				return false
			}
			h, ok1 := lowerHex(p.s[p.i])
			l, ok2 := lowerHex(p.s[p.i+1])
			if !ok1 || !ok2 {
				return false
			}
			p.i += 2
			if n == len(buf) {
				return false
			}
			buf[n] = h<<4 | l
			n++
			if utf8.FullRune(buf[:n]) {
				if r, size := utf8.DecodeRune(buf[:n]); r == utf8.RuneError && size == 1 {
					return false
				}
				n = 0
			}
		case n > 0:
			return false // a UTF-8 sequence cut short
		case c == '"':
			return true
		}
	}
	return false
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case isDigit(c):
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
