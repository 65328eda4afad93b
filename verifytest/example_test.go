package verifytest_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/asymjwt/asymjwt"
	"github.com/asymjwt/asymjwt/verifytest"
)

// A test of a client: the server verifies what the client sends and records
// it.
func ExampleNewServer() {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	key, _ := asymjwt.KeyFromSigner(priv)
	signer, _ := asymjwt.NewSigner("billing", key)

	srv := verifytest.NewServer()
	defer srv.Close()
	srv.AddKey("billing", key.Public())

	resp, err := srv.SignedClient(signer).Get(srv.URL + "/invoices")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.Status, " ", string(body))

	// The same request without a token is refused, and recorded.
	resp, _ = srv.Client().Get(srv.URL + "/invoices")
	resp.Body.Close()
	for _, r := range srv.Requests() {
		fmt.Printf("%s %s authorized=%v user=%q kind=%q\n", r.Method, r.Path, r.Authorized, r.Username, r.Kind)
	}
	// Output:
	// 200 OK hello billing
	// GET /invoices authorized=true user="billing" kind=""
	// GET /invoices authorized=false user="" kind="no_token"
}

// A server whose clock runs ahead refuses a client's tokens as stale; a
// client from asymjwt.NewClient learns the offset from the refusal and tries
// once more.
func ExampleWithClockOffset() {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	key, _ := asymjwt.KeyFromSigner(priv)
	signer, _ := asymjwt.NewSigner("batch", key)

	srv := verifytest.NewServer(verifytest.WithClockOffset(90 * time.Second))
	defer srv.Close()
	srv.AddKey("batch", key.Public())

	client := srv.SignedClient(signer)
	resp, _ := client.Get(srv.URL + "/")
	resp.Body.Close()
	fmt.Println(resp.Status)
	for _, r := range srv.Requests() {
		fmt.Printf("authorized=%v kind=%q\n", r.Authorized, r.Kind)
	}
	off := client.Transport.(*asymjwt.Transport).ClockOffset(strings.TrimPrefix(srv.URL, "http://"))
	fmt.Println("learned offset about 90s:", off > 85*time.Second && off < 95*time.Second)
	// Output:
	// 200 OK
	// authorized=false kind="stale"
	// authorized=true kind=""
	// learned offset about 90s: true
}
