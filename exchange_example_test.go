package asymjwt_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/asymjwt/asymjwt"
	"golang.org/x/oauth2"
)

// A token endpoint and an API on one server: the client signs once, buys
// an access token and calls the API with it as Bearer.
func ExampleNewTokenEndpoint() {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// Server side: the users' keys, the issuer's own key, one Verifier for
	// both kinds of token, the token endpoint and the JWK set.
	userKey, _ := asymjwt.KeyFromFile("testdata/keys/openssh_ed25519")
	keys := asymjwt.NewMemoryKeyStore()
	keys.Add("billing", userKey.Public())
	issuerKey, _ := asymjwt.KeyFromFile("testdata/keys/pkcs8_ed25519.pem")
	issuer, err := asymjwt.NewIssuer(srv.URL, issuerKey)
	if err != nil {
		panic(err)
	}
	verifier, err := asymjwt.NewVerifier(keys, asymjwt.WithTrustedIssuer(issuer))
	if err != nil {
		panic(err)
	}
	endpoint, err := asymjwt.NewTokenEndpoint(verifier, issuer, srv.URL+"/oauth/token")
	if err != nil {
		panic(err)
	}
	mux.Handle("POST /oauth/token", endpoint)
	mux.Handle("GET /.well-known/jwks.json", issuer)
	mux.Handle("/v1/", verifier.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := asymjwt.IdentityFrom(r.Context())
		fmt.Fprintf(w, "hello %s, by %s, scope %q", id.Username, id.Kind, id.Scope)
	})))

	// Client side: an oauth2.TokenSource that signs an assertion per
	// exchange, and an ordinary oauth2 client.
	signer, _ := asymjwt.NewSigner("billing", userKey)
	src, err := asymjwt.NewTokenSource(context.Background(), signer, srv.URL+"/oauth/token", asymjwt.WithScopes("invoices:read"))
	if err != nil {
		panic(err)
	}
	client := oauth2.NewClient(context.Background(), src)
	for range 2 {
		resp, err := client.Get(srv.URL + "/v1/invoices")
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Status, string(body))
	}
	// Output:
	// 200 OK hello billing, by access token, scope "invoices:read"
	// 200 OK hello billing, by access token, scope "invoices:read"
}

// A refresh token is used once; presenting a used one again revokes its
// whole chain, the newest token included.
func ExampleTokenEndpoint_refreshReuse() {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	userKey, _ := asymjwt.KeyFromFile("testdata/keys/openssh_ed25519")
	keys := asymjwt.NewMemoryKeyStore()
	keys.Add("billing", userKey.Public())
	issuerKey, _ := asymjwt.KeyFromFile("testdata/keys/pkcs8_ed25519.pem")
	issuer, _ := asymjwt.NewIssuer(srv.URL, issuerKey)
	verifier, _ := asymjwt.NewVerifier(keys)
	endpoint, _ := asymjwt.NewTokenEndpoint(verifier, issuer, srv.URL+"/oauth/token")
	mux.Handle("/oauth/token", endpoint)

	// post sends a token request and returns the refresh token of the
	// answer, or the refusal.
	post := func(form url.Values) (refresh, refusal string) {
		resp, err := http.PostForm(srv.URL+"/oauth/token", form)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", resp.Status + " " + strings.TrimSpace(string(body))
		}
		_, rest, _ := strings.Cut(string(body), `"refresh_token":"`)
		refresh, _, _ = strings.Cut(rest, `"`)
		return refresh, ""
	}
	signer, _ := asymjwt.NewSigner("billing", userKey)
	assertion, _ := signer.SignAssertion(context.Background(), srv.URL+"/oauth/token")
	first, _ := post(url.Values{"grant_type": {asymjwt.GrantTypeJWTBearer}, "assertion": {assertion}})
	second, _ := post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first}})
	_, problem := post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first}})
	fmt.Println("first token again:", problem)
	_, problem = post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {second}})
	fmt.Println("newest token then:", problem)
	// Output:
	// first token again: 400 Bad Request {"error":"invalid_grant","error_description":"refresh token reused: its chain is revoked"}
	// newest token then: 400 Bad Request {"error":"invalid_grant","error_description":"refresh token not valid"}
}
