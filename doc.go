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
// [PROTOCOL.agent]: https://datatracker.ietf.org/doc/html/draft-miller-ssh-agent
// [PROTOCOL.certkeys]: https://cvsweb.openbsd.org/src/usr.bin/ssh/PROTOCOL.certkeys
// [PROTOCOL.krl]: https://cvsweb.openbsd.org/src/usr.bin/ssh/PROTOCOL.krl
package asymjwt
