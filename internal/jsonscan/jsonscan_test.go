package jsonscan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
)

func FuzzScanObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":"\u00e9\ud83d\ude00","b":[1,{"c":null}],"d":-0.5e+3}`, `{"a":1,"A":2}`, `{"a":"\ud800"}`, ` { "x" : true } `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var seen [][]byte
		err := ScanObject(data, func(name, value []byte) error {
			for _, prev := range seen {
				if bytes.EqualFold(prev, name) {
					t.Fatalf("duplicate name %q passed", name)
				}
			}
			seen = append(seen, name)
			return nil
		})
		if err == nil && !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
	})
}

// decodedJSONString is what a JSON decoder gives back for s once encoded:
// each byte of invalid UTF-8 becomes U+FFFD (as in a range loop; unlike
// strings.ToValidUTF8, which replaces a whole run with one U+FFFD).
func decodedJSONString(s string) string { return string([]rune(s)) }

func checkAppendString(t *testing.T, s string) {
	t.Helper()
	out := AppendString([]byte("prefix"), s)
	if !bytes.HasPrefix(out, []byte("prefix")) {
		t.Fatalf("AppendString lost dst: %q", out)
	}
	out = out[len("prefix"):]
	if !json.Valid(out) {
		t.Fatalf("AppendString(%q) = %s, not valid JSON", s, out)
	}
	var got string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("AppendString(%q) = %s: %v", s, out, err)
	}
	if want := decodedJSONString(s); got != want {
		t.Fatalf("AppendString(%q) decodes to %q, want %q", s, got, want)
	}
	// Same text as encoding/json's, once both are decoded (they differ in
	// which characters they escape).
	ref, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var refGot string
	if err := json.Unmarshal(ref, &refGot); err != nil {
		t.Fatal(err)
	}
	if got != refGot {
		t.Fatalf("AppendString(%q) decodes to %q, encoding/json's to %q", s, got, refGot)
	}
}

var AppendStringSeeds = []string{
	"",
	"alice",
	`quote " and backslash \`,
	"\x00\x01\x1f\x7f",
	"\b\f\n\r\t",
	"<script>&amp;</script>",
	"line\u2028sep\u2029",
	"José 日本 🎉",
	"\xff",
	"\xff\xfe",
	"a\xc3",
	"\xed\xa0\x80", // UTF-8 encoded surrogate
	"\xf4\x90\x80\x80",
	"\uFFFD",
	"/slash/",
}

func TestAppendString(t *testing.T) {
	for _, s := range AppendStringSeeds {
		t.Run("", func(t *testing.T) { checkAppendString(t, s) })
	}
	// Exact output where it is fixed by the format.
	exact := []struct{ in, want string }{
		{"alice", `"alice"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"\x00\n\x1f", `"\u0000\u000a\u001f"`},
		{"<&>", `"<&>"`},
		{"é", `"é"`},
		{"a\xffb", `"a\ufffdb"`},
	}
	for _, tt := range exact {
		if got := string(AppendString(nil, tt.in)); got != tt.want {
			t.Errorf("AppendString(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range AppendStringSeeds {
		f.Add(s)
	}
	f.Fuzz(checkAppendString)
}

func TestScanObjectRefuses(t *testing.T) {
	tests := map[string]string{
		"not an object":     `[1]`,
		"duplicate":         `{"a":1,"a":2}`,
		"case variant":      `{"username":"a","Username":"b"}`,
		"escaped variant":   `{"a":1,"\u0061":2}`,
		"trailing data":     `{"a":1} x`,
		"two objects":       `{}{}`,
		"bad escape":        `{"a":"\x"}`,
		"control character": "{\"a\":\"\x01\"}",
		"invalid UTF-8":     "{\"a\":\"\xff\"}",
		"leading zero":      `{"a":01}`,
		"bare minus":        `{"a":-}`,
		"nested too deeply": `{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`,
		"unterminated":      `{"a":1`,
		"single quotes":     `{'a':1}`,
		"empty":             ``,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if err := ScanObject([]byte(in), func(name, value []byte) error { return nil }); err == nil {
				t.Fatalf("ScanObject(%q) accepted", in)
			}
		})
	}
}

func TestStringArray(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{`[]`, nil, true},
		{`["a"]`, []string{"a"}, true},
		{`[ "a" , "b\u0041" ]`, []string{"a", "bA"}, true},
		{`["a",1]`, nil, false},
		{`"a"`, nil, false},
		{`[1]`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := StringArray([]byte(tt.in))
			if ok != tt.ok || strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("StringArray(%s) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestElements(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{`[]`, nil, true},
		{`[ ]`, nil, true},
		{`[{"a":1}]`, []string{`{"a":1}`}, true},
		{`[ {"a":[1,2]} , "x", 3 ,null]`, []string{`{"a":[1,2]}`, `"x"`, `3`, `null`}, true},
		{`{"a":1}`, nil, false},
		{`"a"`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got []string
			err := Elements([]byte(tt.in), func(elem []byte) error {
				got = append(got, string(elem))
				return nil
			})
			if (err == nil) != tt.ok || strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("Elements(%s) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestNumber(t *testing.T) {
	tests := []string{"0", "-0", "7", "-7", "1796294582", "123456789012345", "-123456789012345",
		"1234567890123456", "99999999999999999999", "1.5", "1e3", "-0.0", "1796294582.25", "1E400"}
	for _, in := range tests {
		t.Run(in, func(t *testing.T) { checkNumber(t, []byte(in)) })
	}
	for _, bad := range []string{"", "-", "x", "+1", `"1"`} {
		if f, ok := Number([]byte(bad)); ok {
			t.Errorf("Number(%q) = %v, true; want false", bad, f)
		}
	}
}

// checkNumber compares Number with strconv.ParseFloat on a valid JSON number.
func checkNumber(t *testing.T, value []byte) {
	t.Helper()
	got, ok := Number(value)
	want, err := strconv.ParseFloat(string(value), 64)
	if ok != (err == nil) || (ok && (got != want || math.Signbit(got) != math.Signbit(want))) {
		t.Fatalf("Number(%q) = %v, %v; strconv.ParseFloat gives %v, %v", value, got, ok, want, err)
	}
}

func FuzzNumber(f *testing.F) {
	for _, s := range []string{"0", "-0", "1796294582", "123456789012345", "1.5e-3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		if len(value) == 0 {
			return
		}
		if end, err := scanNumber(value, 0); err != nil || end != len(value) {
			return // Number reads only what ScanObject scanned as a number
		}
		checkNumber(t, value)
	})
}

func FuzzEqualFold(f *testing.F) {
	f.Add([]byte("kid"), []byte("KID"))
	f.Add([]byte("kid"), []byte("\u212aid"))
	f.Add([]byte("sub"), []byte("\u017fub"))
	f.Add([]byte("alg"), []byte("typ"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if got, want := equalFold(a, b), bytes.EqualFold(a, b); got != want {
			t.Fatalf("equalFold(%q, %q) = %v, bytes.EqualFold says %v", a, b, got, want)
		}
	})
}

func TestScanObjectManyMembers(t *testing.T) {
	for _, n := range []int{15, 16, 17, maxJSONMembers, maxJSONMembers + 1} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			var b strings.Builder
			b.WriteByte('{')
			for i := range n {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `"m%d":%d`, i, i)
			}
			b.WriteByte('}')
			seen := 0
			err := ScanObject([]byte(b.String()), func(name, value []byte) error { seen++; return nil })
			if n > maxJSONMembers {
				if err == nil {
					t.Fatalf("%d members accepted", n)
				}
				return
			}
			if err != nil || seen != n {
				t.Fatalf("ScanObject of %d members: %v, saw %d", n, err, seen)
			}
			// The last member again, in another case, is refused.
			dup := b.String()[:b.Len()-1] + fmt.Sprintf(`,"M%d":0}`, n-1)
			if err := ScanObject([]byte(dup), func(name, value []byte) error { return nil }); err == nil {
				t.Fatal("case-variant duplicate accepted")
			}
		})
	}
}

func BenchmarkScanObject(b *testing.B) {
	claims := []byte(`{"username":"svc","time":1796294582,"nonce":"_NVVudpDT7nf1QTIVsEGpw","htm":"GET","htu":"http://127.0.0.1:8080/v1/items","htq":""}`)
	b.SetBytes(int64(len(claims)))
	for b.Loop() {
		err := ScanObject(claims, func(name, value []byte) error {
			if IsString(value) {
				Unquote(value)
			} else {
				Number(value)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
