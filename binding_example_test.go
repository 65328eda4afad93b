package asymjwt_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/asymjwt/asymjwt"
)

// The Content-Digest header value of a body, as the Transport sends it
// (here RFC 9530's own example).
func ExampleContentDigest() {
	d, err := asymjwt.ContentDigest(strings.NewReader(`{"hello": "world"}`))
	if err != nil {
		panic(err)
	}
	fmt.Println("Content-Digest:", d)
	// Output: Content-Digest: sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:
}

// changeBody stands for a proxy that changes request bodies in flight.
type changeBody struct{ base http.RoundTripper }

func (c changeBody) RoundTrip(r *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(bytes.Replace(b, []byte("1"), []byte("9"), 1)))
	return c.base.RoundTrip(r2)
}

// A body changed on its way fails the handler's read with an error wrapping
// ErrBinding; the handler answers it as a refusal and never acts on it.
func ExampleVerifier_Verify_bodyChanged() {
	key, _ := asymjwt.KeyFromFile("testdata/keys/openssh_ed25519")
	signer, _ := asymjwt.NewSigner("billing", key)
	keys := asymjwt.NewMemoryKeyStore()
	_ = keys.Add("billing", key.Public())
	verifier, _ := asymjwt.NewVerifier(keys)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body) // read to the end before acting on it
		if errors.Is(err, asymjwt.ErrBinding) {
			fmt.Println("handler:", err)
			http.Error(w, "body changed in flight", http.StatusBadRequest)
			return
		}
		fmt.Printf("handler: pay %s\n", body)
	})
	srv := httptest.NewServer(verifier.Middleware(api))
	defer srv.Close()

	for _, base := range []http.RoundTripper{http.DefaultTransport, changeBody{http.DefaultTransport}} {
		client := asymjwt.NewClient(&asymjwt.Transport{Signer: signer, Base: base})
		resp, err := client.Post(srv.URL+"/pay?to=bob", "application/json", strings.NewReader(`{"amount":1}`))
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println("client:", resp.Status)
	}
	// Output:
	// handler: pay {"amount":1}
	// client: 200 OK
	// handler: asymjwt: token bound to another request: the request body does not match its Content-Digest (sha-256), which the token binds
	// client: 400 Bad Request
}

// A body without GetBody (here an io.Reader that is not a bytes or strings
// reader) is held in memory to be hashed, up to a limit.
func ExampleWithMaxBufferedBody() {
	key, _ := asymjwt.KeyFromFile("testdata/keys/openssh_ed25519")
	signer, _ := asymjwt.NewSigner("uploader", key, asymjwt.WithMaxBufferedBody(1<<10))
	client := asymjwt.NewClient(&asymjwt.Transport{Signer: signer})

	body := io.MultiReader(strings.NewReader(strings.Repeat("x", 4<<10)))
	_, err := client.Post("https://api.example.com/upload", "application/octet-stream", body)
	var tooLarge *asymjwt.BodyTooLargeError
	fmt.Println(errors.Is(err, asymjwt.ErrBodyTooLarge), errors.As(err, &tooLarge) && tooLarge.Limit == 1<<10)
	// Output: true true
}

// A server that requires every request body to be bound refuses a client
// that signs without binding bodies.
func ExampleWithRequireBodyBinding() {
	key, _ := asymjwt.KeyFromFile("testdata/keys/openssh_ed25519")
	keys := asymjwt.NewMemoryKeyStore()
	_ = keys.Add("billing", key.Public())
	verifier, _ := asymjwt.NewVerifier(keys, asymjwt.WithRequireBodyBinding())
	srv := httptest.NewServer(verifier.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	defer srv.Close()

	for _, opts := range [][]asymjwt.SignerOption{nil, {asymjwt.WithoutBodyBinding()}} {
		signer, _ := asymjwt.NewSigner("billing", key, opts...)
		client := asymjwt.NewClient(&asymjwt.Transport{Signer: signer})
		resp, err := client.Post(srv.URL+"/invoices", "text/plain", strings.NewReader("total 42"))
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(strings.TrimSpace(resp.Status + " " + resp.Header.Get("WWW-Authenticate")))
	}
	// Output:
	// 200 OK
	// 401 Unauthorized JWT error="binding"
}
