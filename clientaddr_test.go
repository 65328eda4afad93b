package asymjwt

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestRemoteAddr(t *testing.T) {
	for _, tt := range []struct{ remote, want string }{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"[::ffff:10.0.0.1]:80", "10.0.0.1"},
		{"10.0.0.9", "10.0.0.9"},
		{"@", ""},
		{"", ""},
		{"example.com:80", ""},
	} {
		r := &http.Request{RemoteAddr: tt.remote}
		got := RemoteAddr(r)
		if tt.want == "" && got.IsValid() || tt.want != "" && got != netip.MustParseAddr(tt.want) {
			t.Errorf("RemoteAddr(%q) = %v, want %q", tt.remote, got, tt.want)
		}
	}
}

func TestForwardedClientAddr(t *testing.T) {
	f := ForwardedClientAddr("x-forwarded-for", netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.5/32"))
	for _, tt := range []struct {
		name, remote string
		header       []string
		want         string
	}{
		{"peer not a proxy: header ignored", "198.51.100.7:1", []string{"203.0.113.9"}, "198.51.100.7"},
		{"from a proxy", "10.1.1.1:1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"the client's own claims are left of the proxy's", "10.1.1.1:1", []string{"1.2.3.4, 203.0.113.9"}, "203.0.113.9"},
		{"a chain of proxies", "10.1.1.1:1", []string{"203.0.113.9, 192.0.2.5", "10.2.2.2"}, "203.0.113.9"},
		{"only proxies", "10.1.1.1:1", []string{"10.9.9.9"}, "10.9.9.9"},
		{"with a port", "10.1.1.1:1", []string{"203.0.113.9:5555"}, "203.0.113.9"},
		{"IPv6", "10.1.1.1:1", []string{"2001:db8::7"}, "2001:db8::7"},
		{"malformed", "10.1.1.1:1", []string{"unknown"}, ""},
		{"missing", "10.1.1.1:1", nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
			for _, v := range tt.header {
				r.Header.Add("X-Forwarded-For", v)
			}
			got := f(r)
			if tt.want == "" && got.IsValid() || tt.want != "" && got != netip.MustParseAddr(tt.want) {
				t.Errorf("= %v, want %q", got, tt.want)
			}
		})
	}
}

// TestWithClientAddr: from= is checked against the address WithClientAddr
// gives, and a nil function is refused.
func TestWithClientAddr(t *testing.T) {
	k := loadTestKeys(t)
	h := newHarness(t, WithClientAddr(ForwardedClientAddr("X-Real-Ip", netip.MustParsePrefix("127.0.0.1/32"))))
	if err := h.keys.AddPublicKeys("alice", PublicKey{Key: k.ed.Public(), Restrictions: KeyRestrictions{From: []string{"203.0.113.0/24"}}}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		remote, realIP string
		want           error
	}{
		{"127.0.0.1:9", "203.0.113.4", nil},
		{"127.0.0.1:9", "198.51.100.4", ErrAddressRefused},
		{"198.51.100.4:9", "203.0.113.4", ErrAddressRefused}, // not from the proxy: the header is not believed
	} {
		h.now = h.now.Add(1)
		r := httptest.NewRequest("GET", "http://api.example.com/v1/items", nil)
		r.RemoteAddr = tt.remote
		r.Header.Set("X-Real-Ip", tt.realIP)
		r.Header.Set("Authorization", "JWT "+h.token("alice", k.ed, h.now, nil))
		_, err := h.v.Verify(r)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s via %s: err = %v, want %v", tt.realIP, tt.remote, err, tt.want)
		}
	}
	if _, err := NewVerifier(NewMemoryKeyStore(), WithClientAddr(nil)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("nil: %v", err)
	}
}
