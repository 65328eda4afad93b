package sfv

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

type member struct {
	key  string
	kind Kind
	raw  string
}

func scan(s string) ([]member, error) {
	var got []member
	err := ScanDictionary(s, func(key string, kind Kind, raw string) error {
		got = append(got, member{key, kind, raw})
		return nil
	})
	return got, err
}

func TestScanDictionary(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []member // nil with ok false: a syntax error
		ok   bool
	}{
		{"empty", "", nil, true},
		{"spaces only", "   ", nil, true},
		{"RFC 9530 sha-256", "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
			[]member{{"sha-256", Bytes, "X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="}}, true},
		{"two members, OWS", "sha-256=:AA==:,\t sha-512=:AQ==:",
			[]member{{"sha-256", Bytes, "AA=="}, {"sha-512", Bytes, "AQ=="}}, true},
		{"unknown kinds", `unixsum=30637, md5=:aGk=:, a=1.5, b="s\"q", c=tok/x:1, d=?1, e, f=(1 "x" :AA==:);p=2, g=@1659578233, h=%"f%c3%bc"`,
			[]member{
				{"unixsum", Integer, "30637"}, {"md5", Bytes, "aGk="}, {"a", Decimal, "1.5"},
				{"b", String, `"s\"q"`}, {"c", Token, "tok/x:1"}, {"d", Boolean, "?1"}, {"e", Boolean, ""},
				{"f", InnerList, `(1 "x" :AA==:)`}, {"g", Date, "@1659578233"}, {"h", DisplayString, `%"f%c3%bc"`},
			}, true},
		{"parameters skipped", "sha-256=:AA==:;a=1;b;c=\"x\", e;f=?0",
			[]member{{"sha-256", Bytes, "AA=="}, {"e", Boolean, ""}}, true},
		{"repeated key seen twice", "a=1, a=2", []member{{"a", Integer, "1"}, {"a", Integer, "2"}}, true},
		{"star key", "*x-1.2_3*=-12", []member{{"*x-1.2_3*", Integer, "-12"}}, true},
		{"empty inner list", "a=()", []member{{"a", InnerList, "()"}}, true},
		{"inner list spaces", "a=( 1  2 )", []member{{"a", InnerList, "( 1  2 )"}}, true},

		{"trailing comma", "a=1,", nil, false},
		{"leading comma", ",a=1", nil, false},
		{"double comma", "a=1,,b=2", nil, false},
		{"upper-case key", "SHA-256=:AA==:", nil, false},
		{"key starts with digit", "1a=1", nil, false},
		{"no separator", "a=1 b=2", nil, false},
		{"unterminated bytes", "a=:AA==", nil, false},
		{"bytes with bad char", "a=:A-A=:", nil, false},
		{"unterminated string", `a="x`, nil, false},
		{"bad escape", `a="\x"`, nil, false},
		{"control in string", "a=\"\x01\"", nil, false},
		{"integer 16 digits", "a=1234567890123456", nil, false},
		{"decimal 13 integer digits", "a=1234567890123.1", nil, false},
		{"decimal 4 fraction digits", "a=1.1234", nil, false},
		{"decimal ending in dot", "a=1.", nil, false},
		{"bare minus", "a=-", nil, false},
		{"bad boolean", "a=?2", nil, false},
		{"date decimal", "a=@1.5", nil, false},
		{"display string upper hex", `a=%"%C3%BC"`, nil, false},
		{"display string bad utf-8", `a=%"%ff"`, nil, false},
		{"display string cut utf-8", `a=%"%c3"`, nil, false},
		{"unterminated inner list", "a=(1 2", nil, false},
		{"inner list no space", `a=(1"x")`, nil, false},
		{"empty value", "a=", nil, false},
		{"tab before member", "\ta=1", nil, false},
		{"non-ASCII", "a=1, \xc3\xa9=2", nil, false},
		{"parameter bad key", "a=1;A=2", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scan(tt.in)
			if !tt.ok {
				if !errors.Is(err, ErrSyntax) {
					t.Fatalf("ScanDictionary(%q) = %v, %v; want ErrSyntax", tt.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ScanDictionary(%q): %v", tt.in, err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("ScanDictionary(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestScanDictionaryStopsOnVisitError(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := ScanDictionary("a=1, b=2, c=3", func(string, Kind, string) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if err != stop || n != 2 {
		t.Fatalf("err %v after %d members", err, n)
	}
}

func TestDecodeBytes(t *testing.T) {
	tests := []struct {
		in   string
		want []byte
		ok   bool
	}{
		{"", []byte{}, true},
		{"AQ==", []byte{1}, true},
		{"AQ", []byte{1}, true}, // padding may be missing (RFC 8941 §4.2.7)
		{"AQI=", []byte{1, 2}, true},
		{"AQI", []byte{1, 2}, true},
		{"AR==", nil, false}, // non-zero trailing bits
		{"A", nil, false},
		{"A===", nil, false},
	}
	for _, tt := range tests {
		got, err := DecodeBytes(tt.in)
		if (err == nil) != tt.ok || (tt.ok && !bytes.Equal(got, tt.want)) {
			t.Errorf("DecodeBytes(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// FuzzScanDictionary checks that any input is scanned without panicking,
// that raw values lie within the input, and that a dictionary rebuilt from
// the members scans to the same members.
func FuzzScanDictionary(f *testing.F) {
	for _, s := range []string{
		"sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
		`unixsum=30637, md5=:aGk=:, a=1.5, b="s\"q", c=tok, d=?1, e, f=(1 "x");p=2, g=@1, h=%"%c3%bc"`,
		"a=(1 2", "a=1,", `a=%"%c3"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got []member
		err := ScanDictionary(s, func(key string, kind Kind, raw string) error {
			if !strings.Contains(s, key) || !strings.Contains(s, raw) {
				t.Fatalf("member %q=%q is not from the input", key, raw)
			}
			got = append(got, member{key, kind, raw})
			if kind == Bytes {
				if _, err := DecodeBytes(raw); err == nil {
					if _, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(raw, "=")); err != nil {
						t.Fatalf("DecodeBytes accepted %q", raw)
					}
				}
			}
			return nil
		})
		if err != nil {
			return
		}
		var b strings.Builder
		for i, m := range got {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(m.key)
			switch {
			case m.kind == Bytes:
				b.WriteString("=:" + m.raw + ":")
			case m.raw != "":
				b.WriteString("=" + m.raw)
			}
		}
		again, err := scan(b.String())
		if err != nil || fmt.Sprint(again) != fmt.Sprint(got) {
			t.Fatalf("%q scanned as %v; rebuilt %q scans as %v, %v", s, got, b.String(), again, err)
		}
	})
}
