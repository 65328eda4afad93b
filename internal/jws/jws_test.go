package jws

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	good := enc([]byte(`{"alg":"EdDSA"}`)) + "." + enc([]byte(`{"a":1}`)) + "." + enc([]byte("sig"))
	p, err := Decode(good)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Header) != `{"alg":"EdDSA"}` || string(p.Claims) != `{"a":1}` || string(p.Signature) != "sig" ||
		string(p.SigningInput) != good[:strings.LastIndexByte(good, '.')] {
		t.Fatalf("Decode = %+v", p)
	}
	if cap(p.Header) != len(p.Header) || cap(p.Claims) != len(p.Claims) {
		t.Fatal("segments not capped")
	}
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrSegments},
		{"one segment", "abc", ErrSegments},
		{"two segments", "abc.def", ErrSegments},
		{"four segments", good + ".x", ErrSegments},
		{"empty header", "." + enc([]byte("{}")) + ".c2ln", ErrSegments},
		{"empty claims", "e30..c2ln", ErrSegments},
		{"empty signature", "e30.e30.", ErrSegments},
		{"only dots", strings.Repeat(".", 100), ErrSegments},
		{"padding", "e30=.e30.c2ln", ErrHeader},
		{"standard alphabet", "e30.e30.c2l+", ErrSignature},
		{"claims not base64", "e30.e3!.c2ln", ErrClaims},
		{"line feed", "e30.e\n30.c2ln", ErrLineBreak},
		{"carriage return", "e30.e30.c2ln\r", ErrLineBreak},
		{"JSON serialisation", `{"payload":"e30","signatures":[]}`, ErrSegments},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("Decode(%q) = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("e30.e30.c2ln")
	f.Add("a.b.c")
	f.Add(strings.Repeat(".", 10))
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Decode(s)
		if err != nil {
			return
		}
		enc := base64.RawURLEncoding
		if got := enc.EncodeToString(p.Header) + "." + enc.EncodeToString(p.Claims) + "." + enc.EncodeToString(p.Signature); got != s {
			t.Fatalf("Decode(%q) does not re-encode to its input: %q", s, got)
		}
	})
}
