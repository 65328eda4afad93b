package asymjwt_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/asymjwt/asymjwt"
)

// A client and a server together: the client signs every request with its
// private key; the server knows only the public key.
func Example() {
	// Client side: a private key and the name it signs for.
	key, err := asymjwt.KeyFromFile("testdata/keys/openssh_ed25519")
	if err != nil {
		panic(err)
	}
	signer, err := asymjwt.NewSigner("billing", key)
	if err != nil {
		panic(err)
	}

	// Server side: the users' public keys, and a verifier in front of the API.
	keys := asymjwt.NewMemoryKeyStore()
	pub, _ := os.ReadFile("testdata/keys/openssh_ed25519.pub.ssh")
	found, _ := asymjwt.ParsePublicKeys(pub)
	if err := keys.AddPublicKeys("billing", found...); err != nil {
		panic(err)
	}
	verifier, err := asymjwt.NewVerifier(keys)
	if err != nil {
		panic(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := asymjwt.IdentityFrom(r.Context())
		fmt.Fprintf(w, "hello %s, signed with %s", id.Username, id.Algorithm)
	})
	srv := httptest.NewServer(verifier.Middleware(api))
	defer srv.Close()

	client := asymjwt.NewClient(&asymjwt.Transport{Signer: signer})
	resp, err := client.Get(srv.URL + "/v1/invoices")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(body))
	// Output: 200 OK hello billing, signed with EdDSA
}

// A token is good once: the same token sent again is refused as a replay.
func ExampleVerifier_Middleware() {
	key, _ := asymjwt.KeyFromFile("testdata/keys/sec1_p256.pem")
	signer, _ := asymjwt.NewSigner("batch", key)
	keys := asymjwt.NewMemoryKeyStore()
	_ = keys.Add("batch", key.Public())
	verifier, _ := asymjwt.NewVerifier(keys)
	srv := httptest.NewServer(verifier.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/jobs", nil)
	token, _ := signer.Sign(context.Background(), req)
	for range 2 {
		req.Header.Set("Authorization", "JWT "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(strings.TrimSpace(resp.Status + " " + resp.Header.Get("WWW-Authenticate")))
	}
	// Output:
	// 200 OK
	// 401 Unauthorized JWT error="replay"
}

// Verify's errors say why a token was refused; switch on them with errors.Is.
func ExampleVerifier_Verify() {
	key, _ := asymjwt.KeyFromFile("testdata/keys/openssh_ed25519")
	keys := asymjwt.NewMemoryKeyStore()
	_ = keys.Add("alice", key.Public())
	verifier, _ := asymjwt.NewVerifier(keys)

	// A client whose clock is a minute slow.
	slow, _ := asymjwt.NewSigner("alice", key, asymjwt.WithClock(func() time.Time {
		return time.Now().Add(-time.Minute)
	}))
	req := httptest.NewRequest("GET", "http://api.example.com/v1/items", nil)
	token, _ := slow.Sign(context.Background(), req)
	req.Header.Set("Authorization", "JWT "+token)

	_, err := verifier.Verify(req)
	switch {
	case errors.Is(err, asymjwt.ErrStale):
		fmt.Println("stale: check the client's clock")
	case errors.Is(err, asymjwt.ErrReplay):
		fmt.Println("replayed")
	case errors.Is(err, asymjwt.ErrUnavailable):
		fmt.Println("try again later")
	case err != nil:
		fmt.Println("refused:", asymjwt.ErrorKind(err))
	}
	// Output: stale: check the client's clock
}

// An encrypted key needs its passphrase; without one the error says so, and
// names the file but never holds key bytes.
func ExampleKeyFromFile_passphrase() {
	_, err := asymjwt.KeyFromFile("testdata/keys/openssh_ed25519_enc")
	var missing *asymjwt.PassphraseMissingError
	if errors.As(err, &missing) {
		fmt.Println("passphrase needed for", missing.Path)
	}

	_, err = asymjwt.KeyFromFile("testdata/keys/openssh_ed25519_enc", asymjwt.WithPassphrase([]byte("wrong")))
	fmt.Println(errors.Is(err, asymjwt.ErrIncorrectPassphrase))

	key, err := asymjwt.KeyFromFile("testdata/keys/openssh_ed25519_enc",
		asymjwt.WithPassphrase([]byte("asymjwt-test-passphrase")))
	fmt.Println(key != nil, err)
	// Output:
	// passphrase needed for testdata/keys/openssh_ed25519_enc
	// true
	// true <nil>
}

// The kid of a token is the key's fingerprint as ssh-keygen -l prints it.
func ExampleNewSigner() {
	key, _ := asymjwt.KeyFromFile("testdata/keys/pkcs1_rsa2048.pem")
	signer, _ := asymjwt.NewSigner("reports", key)
	fmt.Println(signer.Algorithm())
	fmt.Println(len(signer.KeyID()) > len("SHA256:"), signer.KeyID()[:7])
	// Output:
	// RS512
	// true SHA256:
}

// A retrying client: every attempt carries a token of its own, so a retry is
// never refused as a replay.
func ExampleNewRetryClient() {
	key, _ := asymjwt.KeyFromFile("testdata/keys/openssh_ed25519")
	signer, _ := asymjwt.NewSigner("batch", key)
	keys := asymjwt.NewMemoryKeyStore()
	_ = keys.Add("batch", key.Public())
	verifier, _ := asymjwt.NewVerifier(keys)

	attempts := 0
	srv := httptest.NewServer(verifier.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts++; attempts < 3 {
			w.WriteHeader(http.StatusServiceUnavailable) // a deploy in progress
		}
	})))
	defer srv.Close()

	client := asymjwt.NewRetryClient(&asymjwt.Transport{Signer: signer})
	client.RetryWaitMin, client.RetryWaitMax = time.Millisecond, 10*time.Millisecond
	resp, err := client.Post(srv.URL+"/jobs", "application/json", []byte(`{"id":7}`))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status, "after", attempts, "attempts")
	// Output: 200 OK after 3 attempts
}

// A client that follows redirects only within the host it started with,
// unless told which other hosts it may sign for.
func ExampleNewClient() {
	key, _ := asymjwt.KeyFromFile("testdata/keys/openssh_ed25519")
	signer, _ := asymjwt.NewSigner("billing", key)

	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer other.Close()
	srv := httptest.NewServer(http.RedirectHandler(other.URL+"/elsewhere", http.StatusFound))
	defer srv.Close()

	_, err := asymjwt.NewClient(&asymjwt.Transport{Signer: signer}).Get(srv.URL + "/")
	fmt.Println(errors.Is(err, asymjwt.ErrRedirectRefused))

	allowed := asymjwt.NewClient(&asymjwt.Transport{Signer: signer, AllowedHosts: []string{
		strings.TrimPrefix(srv.URL, "http://"), strings.TrimPrefix(other.URL, "http://")}})
	resp, err := allowed.Get(srv.URL + "/")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status, resp.Request.URL.Path)
	// Output:
	// true
	// 200 OK /elsewhere
}

// A client tells a refusal from other answers with CheckResponse, and the
// kind of refusal with errors.Is.
func ExampleCheckResponse() {
	key, _ := asymjwt.KeyFromFile("testdata/keys/openssh_ed25519")
	keys := asymjwt.NewMemoryKeyStore() // the server does not know the key
	verifier, _ := asymjwt.NewVerifier(keys)
	srv := httptest.NewServer(verifier.Middleware(http.NotFoundHandler()))
	defer srv.Close()

	signer, _ := asymjwt.NewSigner("stranger", key)
	resp, err := asymjwt.NewClient(&asymjwt.Transport{Signer: signer}).Get(srv.URL + "/")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	err = asymjwt.CheckResponse(resp)
	var refused *asymjwt.RefusedError
	if errors.As(err, &refused) {
		fmt.Println(refused.StatusCode, refused.Kind, errors.Is(err, asymjwt.ErrBadSignature))
	}
	// Output: 401 invalid_signature true
}

// Rotating a client's key without a restart: the server lists both keys
// for a while, the client switches, then the server drops the old one.
func ExampleSigner_SetKey() {
	oldKey, _ := asymjwt.KeyFromFile("testdata/keys/openssh_ed25519")
	newKey, _ := asymjwt.KeyFromFile("testdata/keys/sec1_p256.pem")
	keys := asymjwt.NewMemoryKeyStore()
	_ = keys.Add("billing", oldKey.Public(), newKey.Public()) // step 1: both trusted
	verifier, _ := asymjwt.NewVerifier(keys)
	srv := httptest.NewServer(verifier.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := asymjwt.IdentityFrom(r.Context())
		fmt.Fprint(w, id.Algorithm)
	})))
	defer srv.Close()

	signer, _ := asymjwt.NewSigner("billing", oldKey)
	client := asymjwt.NewClient(&asymjwt.Transport{Signer: signer})
	get := func() {
		resp, err := client.Get(srv.URL + "/")
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(body))
	}
	get()
	if err := signer.SetKey(newKey); err != nil { // step 2: the client switches
		panic(err)
	}
	get()
	_ = keys.Set("billing", []asymjwt.PublicKey{{Key: newKey.Public()}}) // step 3: the old key goes
	get()
	// Output:
	// 200 EdDSA
	// 200 ES256
	// 200 ES256
}

// A JSON API writes its own body for refused requests; the status and the
// WWW-Authenticate and Date headers stay the verifier's.
func ExampleWithErrorBody() {
	keys := asymjwt.NewMemoryKeyStore()
	verifier, _ := asymjwt.NewVerifier(keys, asymjwt.WithErrorBody(func(r *http.Request, err error) (string, []byte) {
		return "application/json", []byte(`{"error":"` + asymjwt.ErrorKind(err) + `"}` + "\n")
	}))
	srv := httptest.NewServer(verifier.Middleware(http.NotFoundHandler()))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("WWW-Authenticate"))
	fmt.Print(string(body))
	// Output:
	// 401 application/json JWT error="no_token"
	// {"error":"no_token"}
}

// One clock option serves every constructor that reads a clock, and an
// option given a value it cannot use is an error from the constructor.
func ExampleWithClock() {
	fixed := func() time.Time { return time.Unix(1_800_000_000, 0) }
	keys := asymjwt.NewMemoryKeyStore()
	nonces, _ := asymjwt.NewMemoryNonceStore(asymjwt.WithClock(fixed))
	_, err := asymjwt.NewVerifier(keys, asymjwt.WithClock(fixed), asymjwt.WithNonceStore(nonces))
	fmt.Println(err)

	_, err = asymjwt.NewVerifier(keys, asymjwt.WithClock(nil))
	fmt.Println(errors.Is(err, asymjwt.ErrInvalidOption), err)
	// Output:
	// <nil>
	// true asymjwt: WithClock: invalid option: nil clock
}
