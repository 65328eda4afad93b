package asymjwt

import (
	"net/http"
	"net/netip"
	"strings"
)

// WithClientAddr sets how the verifier learns a request's client address,
// which from= options and source-address certificate options are checked
// against. The default is the peer address of the connection,
// r.RemoteAddr, which behind a proxy or load balancer is the proxy's; there,
// use [ForwardedClientAddr] with the proxies' addresses, or a function of
// your own that knows your proxies. f returns an invalid netip.Addr when it
// cannot tell: a key or certificate restricted by address is then refused
// ([ErrAddressRefused]); others do not need the address. f must not be nil.
func WithClientAddr(f func(r *http.Request) netip.Addr) VerifierOption {
	return verifierOptionFunc(func(v *Verifier) error {
		if f == nil {
			return optionError("WithClientAddr", "nil function")
		}
		v.clientAddr = f
		return nil
	})
}

// RemoteAddr returns the address of r's peer, r.RemoteAddr, as
// http.Server sets it ("host:port"); an invalid netip.Addr if it is not an
// IP address. It is the default of [WithClientAddr].
func RemoteAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// ForwardedClientAddr returns a function for [WithClientAddr] that believes
// the header (such as "X-Forwarded-For", or "X-Real-Ip") only when the
// request comes from one of proxies. The header's addresses are read from
// the right, the end the proxies append to, skipping those of proxies (a
// chain of them); the first other address is the client's. A request from
// any other peer is taken at its peer address, so a client cannot choose
// its address by sending the header itself. Malformed entries, or a header
// missing where it is believed, give an invalid address (refused where an
// address is needed). proxies are addresses or prefixes, such as
// netip.MustParsePrefix("10.0.0.0/8").
func ForwardedClientAddr(header string, proxies ...netip.Prefix) func(r *http.Request) netip.Addr {
	header = http.CanonicalHeaderKey(header)
	trusted := func(a netip.Addr) bool {
		for _, p := range proxies {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) netip.Addr {
		peer := RemoteAddr(r)
		if !peer.IsValid() || !trusted(peer) {
			return peer
		}
		var entries []string
		for _, v := range r.Header[header] {
			entries = append(entries, strings.Split(v, ",")...)
		}
		for i := len(entries) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(entries[i]))
			if err != nil {
				ap, err := netip.ParseAddrPort(strings.TrimSpace(entries[i]))
				if err != nil {
					return netip.Addr{}
				}
				a = ap.Addr()
			}
			a = a.Unmap()
			if !trusted(a) || i == 0 {
				return a
			}
		}
		return netip.Addr{}
	}
}
