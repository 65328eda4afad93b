package asymjwt

import (
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestCanonicalQuery(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"question mark alone", "?", "?"},
		{"plain", "a=1&b=2", "a=1&b=2"},
		{"order kept", "b=2&a=1", "b=2&a=1"},
		{"repeated name order kept", "a=2&a=1", "a=2&a=1"},
		{"unreserved escapes decoded", "%61=%31%2D%2e%5F%7e", "a=1-._~"},
		{"other escapes upper-cased", "q=%2f%3a%e2%82%ac", "q=%2F%3A%E2%82%AC"},
		{"plus kept", "q=a+b", "q=a+b"},
		{"escaped plus kept", "q=a%2Bb", "q=a%2Bb"},
		{"escaped space kept", "q=a%20b", "q=a%20b"},
		{"raw space encoded", "q=a b", "q=a%20b"},
		{"raw non-ASCII encoded", "q=é", "q=%C3%A9"},
		{"raw brackets and quotes encoded", `a[]="<>"`, "a%5B%5D=%22%3C%3E%22"},
		{"raw controls encoded", "q=\x00\x7f", "q=%00%7F"},
		{"sub-delims, colon, at, slash, question mark kept", "q=!$'()*,;:@/?", "q=!$'()*,;:@/?"},
		{"escaped ampersand kept apart", "q=a%26b=c", "q=a%26b=c"},
		{"escaped equals kept apart", "q%3Da=b", "q%3Da=b"},
		{"empty fields kept", "a=1&&b=2&", "a=1&&b=2&"},
		{"bare name kept", "flag&a=", "flag&a="},
		{"bad escape: taken as it is", "a=%zz&b=%41", "a=%zz&b=%41"},
		{"cut escape: taken as it is", "a=%4", "a=%4"},
		{"lone percent: taken as it is", "a=100%", "a=100%"},
		{"escaped percent", "a=100%25", "a=100%25"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendCanonicalQuery(nil, tt.in)); got != tt.want {
				t.Fatalf("canonical(%q) = %q, want %q", tt.in, got, tt.want)
			}
			sum := sha256.Sum256([]byte(tt.want))
			want := base64.RawURLEncoding.EncodeToString(sum[:])
			if tt.in == "" {
				want = ""
			}
			if got := string(appendHTQ(nil, tt.in)); got != want {
				t.Fatalf("htq(%q) = %s, want %s", tt.in, got, want)
			}
		})
	}
}

// TestCanonicalQueryTells lists queries a server may read differently: none
// may share a canonical form with another.
func TestCanonicalQueryTells(t *testing.T) {
	apart := [][2]string{
		{"a=1&b=2", "b=2&a=1"},
		{"a=1&a=2", "a=2&a=1"},
		{"q=a+b", "q=a%20b"},
		{"q=a+b", "q=a%2Bb"},
		{"q=a&b=c", "q=a%26b=c"},
		{"q=a=b", "q=a%3Db"},
		{"a;b=1", "a%3Bb=1"},
		{"a=%zz", "a=%25zz"},
		{"a=%%41", "a=%A"},
		{"amount=1", "amount=1000"},
		{"a", "a="},
		{"", "a"},
	}
	for _, p := range apart {
		a, b := string(appendCanonicalQuery(nil, p[0])), string(appendCanonicalQuery(nil, p[1]))
		if a == b {
			t.Errorf("%q and %q have one canonical form %q", p[0], p[1], a)
		}
	}
}

func TestHTQLength(t *testing.T) {
	if got := appendHTQ(nil, ""); len(got) != 0 {
		t.Fatalf("appendHTQ of no query = %q, want empty", got)
	}
	if got := appendHTQ(nil, "a"); len(got) != htqLen {
		t.Fatalf("appendHTQ of a query = %q, want %d bytes", got, htqLen)
	}
}

func TestAppendHTQAllocations(t *testing.T) {
	dst := make([]byte, 0, 64)
	for _, q := range []string{"", "page=2&sort=name", strings.Repeat("k=v&", 100)} {
		if n := testing.AllocsPerRun(100, func() { appendHTQ(dst[:0], q) }); n != 0 {
			t.Errorf("appendHTQ(%d bytes) allocates %v times", len(q), n)
		}
	}
}

// FuzzCanonicalQuery checks the canonical form: idempotent, made only of
// characters a query may hold, and read by Go's url.ParseQuery (which
// decodes as most servers do) exactly as the query it came from.
func FuzzCanonicalQuery(f *testing.F) {
	for _, s := range []string{"a=1&b=2", "%61=%7e+%2b", "q=é &x[]=<>", "a=%zz", "a=%4", "a;b=1", "%%41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		c := string(appendCanonicalQuery(nil, q))
		if again := string(appendCanonicalQuery(nil, c)); again != c {
			t.Fatalf("not idempotent: %q -> %q -> %q", q, c, again)
		}
		if c == q && !strings.Contains(q, "%") {
			return
		}
		badEscape := false
		for i := 0; i < len(q); i++ {
			if q[i] == '%' {
				if i+2 >= len(q) {
					badEscape = true
					break
				}
				_, ok1 := unhex(q[i+1])
				_, ok2 := unhex(q[i+2])
				if !ok1 || !ok2 {
					badEscape = true
					break
				}
			}
		}
		if badEscape {
			if c != q {
				t.Fatalf("query with a bad escape %q changed to %q", q, c)
			}
			return
		}
		for i := 0; i < len(c); i++ {
			if !queryRawOK(c[i]) && c[i] != '%' {
				t.Fatalf("canonical %q of %q holds %q", c, q, c[i])
			}
		}
		v1, err1 := url.ParseQuery(q)
		v2, err2 := url.ParseQuery(c)
		if (err1 == nil) != (err2 == nil) || !reflect.DeepEqual(v1, v2) {
			t.Fatalf("ParseQuery reads %q as %v (%v) and its canonical %q as %v (%v)", q, v1, err1, c, v2, err2)
		}
	})
}
