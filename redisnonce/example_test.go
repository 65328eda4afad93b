package redisnonce_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asymjwt/asymjwt"
	"github.com/asymjwt/asymjwt/redisnonce"
	"github.com/redis/go-redis/v9"
)

// Every verifier of a fleet makes its Store on the same Redis (or Sentinel
// set, or Cluster), with the same prefix, and hands it to its Verifier with
// asymjwt.WithNonceStore. The example needs a live Redis, so it has no
// Output and is only compiled.
func Example() {
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: []string{"127.0.0.1:6379"},
		// Lets the client itself stop at the Store's deadline, instead of
		// finishing a hung command in the background.
		ContextTimeoutEnabled: true,
	})
	defer client.Close()

	store, err := redisnonce.New(client,
		redisnonce.WithKeyPrefix("payments-api:nonce:"),
		redisnonce.WithTimeout(300*time.Millisecond))
	if err != nil {
		panic(err)
	}

	// The Verifier calls Use once a token's signature has verified; here by hand.
	err = store.Use(context.Background(), "alice", "c2FtcGxlIG5vbmNl", 40*time.Second)
	switch {
	case err == nil:
		fmt.Println("first use: accepted")
	case errors.Is(err, asymjwt.ErrReplay):
		fmt.Println("replay: refused (401)")
	case errors.Is(err, asymjwt.ErrUnavailable):
		fmt.Println("Redis cannot answer: refused (503)")
	}
}
