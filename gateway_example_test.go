package asymjwt_test

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"

	"github.com/asymjwt/asymjwt"
)

// A verifying gateway in front of a service in any language, as
// "asymjwt verify-proxy" builds it: the verifier refuses what does not
// verify, and the service reads the caller from Asymjwt-User and
// Asymjwt-Key, which no client can forge.
func ExampleSetIdentityHeaders() {
	keys := asymjwt.NewMemoryKeyStore()
	verifier, err := asymjwt.NewVerifier(keys, asymjwt.WithPublicURL("https://api.example.com"))
	if err != nil {
		panic(err)
	}
	upstream, _ := url.Parse("http://127.0.0.1:8080")
	proxy := &httputil.ReverseProxy{
		// Rewrite runs after the hop-by-hop headers are gone, so nothing a
		// client lists in Connection can remove the headers set here.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.Header.Del("Authorization")
			asymjwt.StripIdentityHeaders(pr.Out.Trailer)
			id, ok := asymjwt.IdentityFrom(pr.In.Context())
			if !ok {
				asymjwt.StripIdentityHeaders(pr.Out.Header)
				return
			}
			// The error (a username with a leading or trailing space) is
			// better checked before proxying; see the verify-proxy command.
			_ = asymjwt.SetIdentityHeaders(pr.Out.Header, id)
		},
		FlushInterval: -1,
	}
	gateway := verifier.Middleware(proxy)
	_ = http.ListenAndServe // http.ListenAndServe("127.0.0.1:8443", gateway)
	_ = gateway

	// What the service sees of a request that came with forged headers:
	h := http.Header{"Asymjwt_User": {"root"}, "Connection": {"Asymjwt-User"}}
	id := &asymjwt.Identity{Username: "billing", Key: asymjwt.PublicKey{Fingerprint: "SHA256:n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg"}}
	if err := asymjwt.SetIdentityHeaders(h, id); err != nil {
		panic(err)
	}
	fmt.Println(h.Get(asymjwt.UserHeader), h.Get(asymjwt.KeyHeader), len(h))
	// Output: billing SHA256:n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg 2
}
