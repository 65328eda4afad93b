// Package interop holds tests of asymjwt against peers no one here wrote:
// go-jose verifying asymjwt's access tokens from its JWK set (and signing
// tokens asymjwt verifies), and zitadel/oidc's OpenID provider taking
// asymjwt's assertions (the JWT profile grant, and private_key_jwt client
// authentication for the client credentials grant). It is a module of its
// own so that these test-only dependencies stay out of what a user of
// asymjwt downloads; .ci/run runs it.
package interop
