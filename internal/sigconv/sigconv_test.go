package sigconv

import (
	"bytes"
	"errors"
	"math/big"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestDERToJWS(t *testing.T) {
	// SEQUENCE { INTEGER r, INTEGER s } with r = 0x00 0x80... (top bit set,
	// so DER adds a zero byte) and s = 0x01 (far shorter than the width).
	r := append([]byte{0x00, 0x80}, bytes.Repeat([]byte{0x11}, 31)...)
	der := append([]byte{0x30, byte(2 + len(r) + 3), 0x02, byte(len(r))}, r...)
	der = append(der, 0x02, 0x01, 0x01)
	got, err := DERToJWS(der, 32)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{0x80}, bytes.Repeat([]byte{0x11}, 31)...), append(make([]byte, 31), 0x01)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("DERToJWS = %x, want %x", got, want)
	}
	bad := [][]byte{
		nil,
		{0x30, 0x00},
		{0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01}, // r = 0
		{0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01}, // r negative
		append(der, 0x00),              // trailing data
		{0x30, 0x25, 0x02, 0x21, 0x01}, // truncated
		append([]byte{0x30, 0x26, 0x02, 0x21, 0x01}, make([]byte, 33)...), // r too wide
	}
	for i, in := range bad {
		if _, err := DERToJWS(in, 32); err == nil {
			t.Errorf("case %d: DERToJWS(%x) succeeded", i, in)
		}
	}
}

func TestECDSASSHToJWS(t *testing.T) {
	mpint := func(b ...byte) []byte { return append([]byte{0, 0, 0, byte(len(b))}, b...) }
	cat := func(parts ...[]byte) []byte { return []byte(strings.Join(bytesToStrings(parts), "")) }
	fixed := func(size int, v ...byte) []byte {
		out := make([]byte, size)
		copy(out[size-len(v):], v)
		return out
	}
	full := func(first byte, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = 0x11
		}
		b[0] = first
		return b
	}
	tests := []struct {
		name string
		blob []byte
		size int
		want []byte // nil: an error
	}{
		{"high-bit r, short s", cat(mpint(append([]byte{0}, full(0x80, 32)...)...), mpint(0x7f, 0x01)), 32,
			append(full(0x80, 32), fixed(32, 0x7f, 0x01)...)},
		{"short r, high-bit s", cat(mpint(0x05), mpint(append([]byte{0}, full(0xff, 32)...)...)), 32,
			append(fixed(32, 0x05), full(0xff, 32)...)},
		{"full width both", cat(mpint(full(0x7f, 48)...), mpint(full(0x01, 48)...)), 48,
			append(full(0x7f, 48), full(0x01, 48)...)},
		{"p521: 66 bytes with top bits 0x01", cat(mpint(full(0x01, 66)...), mpint(append([]byte{0}, full(0x80, 65)...)...)), 66,
			append(full(0x01, 66), fixed(66, full(0x80, 65)...)...)},
		{"r too long", cat(mpint(append([]byte{0}, full(0x80, 33)...)...), mpint(1)), 32, nil},
		{"negative r", cat(mpint(0x80), mpint(1)), 32, nil},
		{"zero r", cat(mpint(), mpint(1)), 32, nil},
		{"zero s as 00", cat(mpint(1), mpint(0)), 32, nil},
		{"trailing data", cat(mpint(1), mpint(1), []byte{0}), 32, nil},
		{"missing s", mpint(1), 32, nil},
		{"truncated", []byte{0, 0, 0, 5, 1}, 32, nil},
		{"length overflow", []byte{0xff, 0xff, 0xff, 0xff, 1}, 32, nil},
		{"empty", nil, 32, nil},
		{"no size", cat(mpint(1), mpint(1)), 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SSHToJWS(tt.blob, tt.size)
			if tt.want == nil {
				if err == nil || !errors.Is(err, ErrMalformed) {
					t.Fatalf("got %x, %v; want ErrMalformed", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(tt.want) {
				t.Fatalf("got  %x\nwant %x", got, tt.want)
			}
		})
	}
}

func bytesToStrings(parts [][]byte) []string {
	s := make([]string, len(parts))
	for i, p := range parts {
		s[i] = string(p)
	}
	return s
}

// FuzzSSHToJWS feeds the converter of agent ECDSA signature blobs
// (mpint r, mpint s) arbitrary bytes: it must never panic, and what it
// accepts must be the fixed width JWS wants and hold the same r and s.
func FuzzSSHToJWS(f *testing.F) {
	for _, rs := range [][2]*big.Int{
		{big.NewInt(1), big.NewInt(2)},
		{new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(7)}, // r with its top bit set
		{new(big.Int).Lsh(big.NewInt(1), 520), new(big.Int).Lsh(big.NewInt(1), 300)},
	} {
		f.Add(ssh.Marshal(struct{ R, S *big.Int }{rs[0], rs[1]}), uint8(0))
	}
	f.Add([]byte{0, 0, 0, 1}, uint8(1))
	sizes := [...]int{32, 48, 66}
	f.Fuzz(func(t *testing.T, blob []byte, which uint8) {
		size := sizes[int(which)%len(sizes)]
		out, err := SSHToJWS(blob, size)
		if err != nil {
			return
		}
		if len(out) != 2*size {
			t.Fatalf("%d bytes for width %d", len(out), size)
		}
		var rs struct{ R, S *big.Int }
		if err := ssh.Unmarshal(blob, &rs); err != nil {
			t.Fatalf("accepted a blob x/crypto cannot read: %v", err)
		}
		if new(big.Int).SetBytes(out[:size]).Cmp(rs.R) != 0 || new(big.Int).SetBytes(out[size:]).Cmp(rs.S) != 0 {
			t.Fatalf("r or s changed")
		}
	})
}

func TestPutJWSAsDERRoundTrip(t *testing.T) {
	for _, size := range []int{32, 48, 66} {
		for _, first := range []byte{0x00, 0x01, 0x7f, 0x80, 0xff} {
			sig := bytes.Repeat([]byte{0x5a}, 2*size)
			sig[0], sig[size] = first, 0x80
			sig[1] = 0 // a zero byte after the first
			var der [MaxDERLen]byte
			n, ok := PutJWSAsDER(der[:], sig, size)
			if !ok {
				t.Fatalf("size %d first %x: refused", size, first)
			}
			back, err := DERToJWS(der[:n], size)
			if err != nil || !bytes.Equal(back, sig) {
				t.Fatalf("size %d first %x: round trip %x, %v", size, first, back, err)
			}
		}
	}
	var der [MaxDERLen]byte
	for name, tt := range map[string]struct {
		sig  []byte
		size int
	}{
		"short":  {make([]byte, 63), 32},
		"zero r": {append(make([]byte, 32), bytes.Repeat([]byte{1}, 32)...), 32},
		"zero s": {append(bytes.Repeat([]byte{1}, 32), make([]byte, 32)...), 32},
		"size 0": {nil, 0},
	} {
		if _, ok := PutJWSAsDER(der[:], tt.sig, tt.size); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}
