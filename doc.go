// Package asymjwt authenticates server-to-server HTTP requests with
// asymmetric keys and short-lived JSON Web Tokens.
//
// A client holds a private key: a key file (encrypted or not), a key that
// never leaves ssh-agent ([DialAgent]), or a KMS or HSM signer
// ([KeyFromSigner]). For every request it sends, a [Transport] signs a fresh
// token that lives for seconds and carries a random nonce, so no token is
// usable twice and no secret ever crosses the wire. A server holds only
// public keys, several per user if need be, the way ~/.ssh/authorized_keys
// does, and a [Verifier] checks each request against them.
//
// It is the Go successor of the Python/Django library asymmetric_jwt_auth and
// interoperates with it in both directions.
//
// # Wire format
//
// Each request carries
//
//	Authorization: JWT <compact JWS>
//
// The JOSE header holds "alg", "typ": "JWT" and "kid", the SHA-256
// fingerprint of the signing key as ssh-keygen prints it ([Fingerprint]).
// The claims are
//
//	username  the caller's name, whose public keys the server looks up
//	time      Unix seconds when the token was made; accepted within ±20 s
//	nonce     128 random bits, base64url; accepted once
//	htm, htu  the request's method and URL without query (RFC 9449 meaning)
//	htq       the query: unpadded base64url of the SHA-256 of its canonical
//	          form; "" for a request without a query
//	hcd       the body: its digest as in the Content-Digest header,
//	          "sha-256=:<base64>:"; "" for a request without a body
//
// A [Transport] binds every request it signs with all four, unless the
// Signer was made [WithoutBinding] (none) or [WithoutBodyBinding] (no hcd).
// The original library ignores claims it does not know, so it accepts these
// tokens as before; no "aud" is ever added.
//
// The canonical query is the query as sent (the bytes after "?"), in its
// order, with only its percent-encoding normalised (RFC 3986 §6.2.2):
// "%XX" of an unreserved character (A-Z a-z 0-9 - . _ ~) becomes the
// character; the hex digits of every other "%XX" are upper-cased; a byte
// that a query may not hold as it is (anything but unreserved characters,
// ! $ & ' ( ) * + , ; = : @ / ? and %) becomes "%XX". Reserved characters
// stay as they came ("+" is neither "%20" nor "%2B"), and a query with a
// "%" not followed by two hex digits is taken as it is. So re-encoding a
// query in flight passes, and changing, adding, removing or reordering its
// parameters does not.
//
// The body travels with the header "Content-Digest: sha-256=:<base64>:"
// (RFC 9530), the SHA-256 of the bytes sent (after any content coding),
// which hcd repeats. The Transport hashes a body with GetBody (as
// http.NewRequest sets for bytes, strings and buffers) from a fresh copy,
// and reads any other body into memory first, up to [WithMaxBufferedBody]
// ([DefaultMaxBufferedBody], 1 MiB); a larger one fails with
// [ErrBodyTooLarge] and is not sent. The verifier checks the header against
// hcd before the handler runs (sha-256 and sha-512 digests are understood;
// other algorithms are ignored, so a header holding only those is refused),
// and the body against the header as the handler reads it, without holding
// it: a body that does not match ends with an error wrapping [ErrBinding]
// from Read, never with a successful read of all of it (see
// [Verifier.Verify]). [WithRequireBinding] makes htm, htu and htq
// mandatory, [WithRequireBodyBinding] hcd on requests that have a body.
//
// RSA keys sign RS512 unless told otherwise (the original library accepts
// only RS512), ECDSA keys ES256, ES384 or ES512 by curve, Ed25519 keys
// EdDSA. There is no HMAC and no "none".
//
// A key that carries an OpenSSH user certificate ([CertifiedKey]) adds one
// header parameter, "sshcert": the certificate's wire form (RFC 4251
// encoding, as in OpenSSH's PROTOCOL.certkeys) in standard base64 with
// padding, exactly the second field of a -cert.pub file. "kid" remains the
// fingerprint of the key itself, so a verifier that stores the key (and the
// original library, which ignores header parameters it does not know)
// verifies such a token as any other. A verifier that does not store the
// key accepts it when the certificate is signed by a CA it trusts for the
// user ([WithTrustedCAs], a cert-authority line) and allows the request;
// the certificate is never trusted by itself, and nothing is fetched.
//
// # Client
//
//	key, err := asymjwt.KeyFromFile("~/.ssh/id_ed25519")
//	signer, err := asymjwt.NewSigner("billing", key)
//	client := asymjwt.NewClient(&asymjwt.Transport{Signer: signer})
//	resp, err := client.Get("https://api.example.com/v1/invoices")
//
// Retry layers go above the Transport, never below, so every attempt gets a
// token of its own: see [NewRetryClient]. A refusal is a 401 answer, which
// [CheckResponse] turns into a [*RefusedError]. [Signer.SetKey] rotates the
// key of a running client.
//
// # Server
//
//	keys, err := asymjwt.NewDirKeyStore("/etc/myapi/keys") // billing.pub, ...
//	v, err := asymjwt.NewVerifier(keys, asymjwt.WithHosts("api.example.com"))
//	http.Handle("/v1/", v.Middleware(api))
//
// and in the handler, [IdentityFrom] tells who called. A refused request gets
// 401 with "WWW-Authenticate: JWT error=<kind>" ([ErrorKind]); the reason
// goes to the logger ([WithLogger]) and hooks ([WithErrorHook]), never to
// the client. A fleet of servers shares its record of used nonces through
// Redis (package redisnonce). [WithMetrics] reports each verification and
// the stores' latency to a [VerifierMetrics] of the server's own.
//
// # Gateways
//
// A verifying reverse proxy in front of a service in another language (as
// the asymjwt command's verify-proxy is) passes the caller on in the
// [UserHeader] and [KeyHeader] headers: [SetIdentityHeaders] sets them after
// removing every copy a client sent, in any spelling a service could read as
// one ([StripIdentityHeaders]).
//
// # Access tokens
//
// Per-request tokens are bound to one request and accepted once, so a token
// taken in flight is worth nothing; but every request costs the client a
// signature (an ssh-agent round trip, a KMS call, or 0.8 ms of RSA) and the
// server a nonce write (a Redis round trip in a fleet). Where that is too
// dear, or where a peer speaks OAuth 2.0, the client can instead sign once
// and buy an access token, which it presents as "Authorization: Bearer"
// for minutes (the JWT bearer grant, RFC 7523). The price is honest to
// state: an access token is not bound to a request, so whoever obtains one
// (from a log, a proxy, a compromised service it was sent to) can use it
// for any request until it expires, 5 minutes by default; nothing revokes it
// sooner. Choose per-request tokens where that matters.
//
// A [TokenEndpoint] takes an assertion, this package's own request token or
// an RFC 7523 assertion as golang.org/x/oauth2/jwt sends it, checks it as
// strictly as a request (the user's stored key and its algorithm, audience,
// lifetime, used once), and answers with an access token signed by an
// [Issuer], and a refresh token that is single use, rotated on every use,
// and whose reuse revokes its whole chain (RFC 9700). The Issuer serves its
// public keys as a JWK set, each "kid" the key's RFC 7638 thumbprint, and
// rotates keys without a restart. A [Verifier] accepts Bearer tokens only
// from issuers it was told to trust ([WithTrustedIssuer]: an Issuer in the
// process, a [KeySet], or a [RemoteKeySet] on the issuer's JWKS URL), and
// [Identity.Kind] says which kind of token came:
//
//	issuer, err := asymjwt.NewIssuer("https://api.example.com", issuerKey)
//	v, err := asymjwt.NewVerifier(keys, asymjwt.WithTrustedIssuer(issuer))
//	ep, err := asymjwt.NewTokenEndpoint(v, issuer, "https://api.example.com/oauth/token")
//	mux.Handle("POST /oauth/token", ep)
//	mux.Handle("GET /.well-known/jwks.json", issuer)
//	mux.Handle("/v1/", v.Middleware(api))
//
// The client side is an oauth2.TokenSource ([NewTokenSource]): a fresh
// assertion per exchange, the token reused until shortly before it
// expires, then the refresh token:
//
//	src, err := asymjwt.NewTokenSource(ctx, signer, "https://api.example.com/oauth/token")
//	client := oauth2.NewClient(ctx, src)
//
// For third-party OAuth servers, [NewClientCredentialsTokenSource] and
// [Signer.ClientAssertion] authenticate a client with private_key_jwt (RFC
// 7523 §2.2), with any key this package loads, one in ssh-agent included.
//
// # Options and errors
//
// Each constructor takes options of its own type; an idea shared by several
// constructors has one option ([WithClock], [WithLogger]) usable with each.
// An option given a value it cannot use makes the constructor fail with an
// error wrapping [ErrInvalidOption]. Every error names the package once, at
// its start, and wraps a sentinel ([ErrStale], [ErrKeyFormat], ...) or is a
// typed error ([*KeyError], [*AgentError], [*LineError], [*RefusedError]).
//
// # Certificates
//
// A server may trust a CA instead of every key, as sshd's TrustedUserCAKeys
// and cert-authority lines do:
//
//	cas, _ := asymjwt.ParseCertAuthorities(trustedUserCAKeys)
//	v, err := asymjwt.NewVerifier(keys, asymjwt.WithTrustedCAs(cas...))
//
// and a client's key file with its -cert.pub beside it, or a key in
// ssh-agent with its certificate, needs no change. [Identity] then carries
// the certificate's key ID and serial. authorized_keys options are honoured
// or the line is skipped: expiry-time, from= (see [WithClientAddr]),
// principals= on cert-authority lines; revoked keys and certificates come
// from [WithRevocationFile] (an OpenSSH KRL or a list).
//
// # Security model
//
// The verifier parses a token once, strictly, after capping its size; it
// takes the algorithm from the stored key, never trusting the token to
// choose; "kid" only selects among the user's own stored keys, and nothing
// is ever fetched from a header. Nonces are recorded atomically, and only
// after the signature verified, so a flood of forged tokens cannot fill the
// store; when a store cannot answer, the request is refused. Claims are
// signed, not encrypted: use TLS. No error or log line of this package holds
// a private key, a passphrase, a token or an Authorization header.
//
// References:
//   - [RFC 7519] JSON Web Token
//   - [RFC 7515] JSON Web Signature
//   - [RFC 8725] JSON Web Token Best Current Practices
//   - [RFC 9449] OAuth 2.0 Demonstrating Proof of Possession (htm, htu)
//   - [RFC 9530] Digest Fields (Content-Digest)
//   - [RFC 8941] Structured Field Values for HTTP (the Content-Digest syntax)
//   - [RFC 3986] URI Generic Syntax (percent-encoding, §6.2.2)
//   - [RFC 7523] JWT Profile for OAuth 2.0 Client Authentication and Authorization Grants
//   - [RFC 6749] The OAuth 2.0 Authorization Framework (token endpoint, §5)
//   - [RFC 7517] JSON Web Key, and [RFC 7638] its thumbprint
//   - [RFC 9068] JWT Profile for OAuth 2.0 Access Tokens ("typ": "at+jwt")
//   - [RFC 9700] OAuth 2.0 Security Best Current Practice (refresh token rotation)
//   - [PROTOCOL.agent] the ssh-agent protocol
//   - [PROTOCOL.certkeys] OpenSSH certificates; [PROTOCOL.krl] key
//     revocation lists
//
// [RFC 7519]: https://www.rfc-editor.org/rfc/rfc7519
// [RFC 7515]: https://www.rfc-editor.org/rfc/rfc7515
// [RFC 8725]: https://www.rfc-editor.org/rfc/rfc8725
// [RFC 9449]: https://www.rfc-editor.org/rfc/rfc9449
// [RFC 9530]: https://www.rfc-editor.org/rfc/rfc9530
// [RFC 8941]: https://www.rfc-editor.org/rfc/rfc8941
// [RFC 3986]: https://www.rfc-editor.org/rfc/rfc3986
// [RFC 7523]: https://www.rfc-editor.org/rfc/rfc7523
// [RFC 6749]: https://www.rfc-editor.org/rfc/rfc6749
// [RFC 7517]: https://www.rfc-editor.org/rfc/rfc7517
// [RFC 7638]: https://www.rfc-editor.org/rfc/rfc7638
// [RFC 9068]: https://www.rfc-editor.org/rfc/rfc9068
// [RFC 9700]: https://www.rfc-editor.org/rfc/rfc9700
// [PROTOCOL.agent]: https://datatracker.ietf.org/doc/html/draft-miller-ssh-agent
// [PROTOCOL.certkeys]: https://cvsweb.openbsd.org/src/usr.bin/ssh/PROTOCOL.certkeys
// [PROTOCOL.krl]: https://cvsweb.openbsd.org/src/usr.bin/ssh/PROTOCOL.krl
package asymjwt
