package asymjwt

import (
	"context"
	"crypto"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asymjwt/asymjwt/internal/jws"
)

// RetiredKeyMargin is how long a retired signing key stays published after
// the last access token it signed has expired: room for a verifier's clock
// leeway and for JWK set caches.
const RetiredKeyMargin = time.Minute

// Issuer is the identity of an access-token issuer: its identifier (the
// "iss" of its tokens) and its signing keys. A [TokenEndpoint] signs access
// tokens with the newest key; Issuer serves the public keys as a JWK set
// (RFC 7517) at its ServeHTTP, for GET /.well-known/jwks.json, and is an
// [IssuerKeySet] a [Verifier] in the same process can trust directly.
//
// Keys rotate without a restart ([Issuer.Rotate]): the new key signs from
// then on, and the old one stays published as long as a token it signed
// can live. An Issuer is safe for concurrent use by multiple goroutines.
type Issuer struct {
	name string
	now  func() time.Time

	mu   sync.Mutex // serialises Rotate and Publish
	keys atomic.Pointer[issuerKeys]
}

// issuerKeys is one state of an Issuer's keys; Rotate and Publish replace
// it whole.
type issuerKeys struct {
	signing *issuerEntry
	all     []*issuerEntry // newest first; signing among them
}

// issuerEntry is one published key.
type issuerEntry struct {
	IssuerKey
	sk *signingKey // nil for a key published but not (yet) signing here
	// until is the latest "exp" (unix nanos) of an access token this key
	// signed; it is raised before signing, so no token outlives it.
	until atomic.Int64
}

// accessTokenType is the "typ" of access tokens (RFC 9068 §2.1), which
// keeps them apart from request tokens ("JWT") in both directions.
const accessTokenType = "at+jwt"

// NewIssuer returns the Issuer named issuer (its identifier, typically the
// https URL of the service, which its tokens carry as "iss") that signs
// with key. key may be any [Key]: a key file, an ssh-agent key, a KMS
// signer; it signs with its default algorithm (see [DefaultAlgorithm]), so
// an Ed25519 key, the one to choose, signs EdDSA.
func NewIssuer(issuer string, key Key, opts ...IssuerOption) (*Issuer, error) {
	if !validIssuer(issuer) {
		return nil, errorf("NewIssuer: %w: issuer %q is not 1 to 256 bytes of text", ErrInvalidOption, truncate(issuer))
	}
	is := &Issuer{name: issuer, now: time.Now}
	for _, opt := range opts {
		if err := opt.applyIssuer(is); err != nil {
			return nil, err
		}
	}
	is.keys.Store(&issuerKeys{})
	if err := is.Rotate(key); err != nil {
		return nil, err
	}
	return is, nil
}

// Issuer returns the issuer identifier.
func (is *Issuer) Issuer() string { return is.name }

// KeyID returns the "kid" of the key that signs now: its RFC 7638
// thumbprint.
func (is *Issuer) KeyID() string { return is.keys.Load().signing.KeyID }

// Rotate makes key the signing key. The previous signing key stays
// published until every access token it signed has expired (plus
// [RetiredKeyMargin]), then is dropped. In a fleet of endpoints that share
// an issuer, first [Issuer.Publish] the new key on every instance, and
// rotate once verifiers can have fetched it. On an error nothing changes.
func (is *Issuer) Rotate(key Key) error {
	sk, err := newSigningKey(key, "", true) // a certificate means nothing to a JOSE verifier
	if err != nil {
		return wrapOp("Issuer.Rotate", err)
	}
	pub := key.Public()
	kid, err := thumbprint(pub)
	if err != nil {
		return errorf("Issuer.Rotate: %w", err)
	}
	header, err := json.Marshal(struct {
		Alg Algorithm `json:"alg"`
		Typ string    `json:"typ"`
		Kid string    `json:"kid"`
	}{sk.spec.alg, accessTokenType, kid})
	if err != nil {
		return errorf("Issuer.Rotate: %w", err)
	}
	sk.kid = kid
	sk.prefix = string(jws.AppendSegment(nil, header)) + "."

	is.mu.Lock()
	defer is.mu.Unlock()
	old := is.keys.Load()
	e := &issuerEntry{IssuerKey: IssuerKey{KeyID: kid, Key: pub, Algorithm: sk.spec.alg}, sk: sk}
	next := &issuerKeys{signing: e, all: []*issuerEntry{e}}
	now := is.now()
	for _, o := range old.all {
		switch {
		case o.KeyID == kid:
			// A key signing again keeps the record of the tokens it signed.
			e.until.Store(o.until.Load())
		case o.sk == nil || is.published(old, o, now):
			next.all = append(next.all, o)
		}
	}
	is.keys.Store(next)
	return nil
}

// Publish adds pub to the published keys without signing with it here:
// the next key of a fleet's rotation, or another instance's key. It stays
// published until the Issuer signs with it and then retires it.
func (is *Issuer) Publish(pub crypto.PublicKey) error {
	kid, err := thumbprint(pub)
	if err != nil {
		return errorf("Issuer.Publish: %w", err)
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	old := is.keys.Load()
	for _, o := range old.all {
		if o.KeyID == kid {
			return nil
		}
	}
	next := &issuerKeys{signing: old.signing, all: append([]*issuerEntry{{IssuerKey: IssuerKey{KeyID: kid, Key: pub}}}, old.all...)}
	is.keys.Store(next)
	return nil
}

// published reports whether e is still published at now: it signs, is
// waiting to sign, or signed a token that may still live.
func (is *Issuer) published(ks *issuerKeys, e *issuerEntry, now time.Time) bool {
	return e == ks.signing || e.sk == nil || now.UnixNano() < e.until.Load()+int64(RetiredKeyMargin)
}

// IssuerKey returns the published key whose kid is kid.
func (is *Issuer) IssuerKey(_ context.Context, kid string) (IssuerKey, bool, error) {
	ks := is.keys.Load()
	now := is.now()
	for _, e := range ks.all {
		if e.KeyID == kid && is.published(ks, e, now) {
			return e.IssuerKey, true, nil
		}
	}
	return IssuerKey{}, false, nil
}

// KeySet returns the keys published now.
func (is *Issuer) KeySet() *KeySet {
	ks := is.keys.Load()
	now := is.now()
	s := &KeySet{issuer: is.name}
	for _, e := range ks.all {
		if is.published(ks, e, now) {
			s.keys = append(s.keys, e.IssuerKey)
		}
	}
	return s
}

// ServeHTTP serves the published keys as a JWK set (RFC 7517 §5, media
// type application/jwk-set+json) to GET and HEAD, cacheable for a minute;
// other methods get 405. Mount it at /.well-known/jwks.json.
func (is *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body := appendJWKS(nil, is.KeySet().keys)
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", "public, max-age=60")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// sign signs claims as an access token expiring at exp with the newest
// key, after recording exp so the key stays published while the token
// lives.
func (is *Issuer) sign(ctx context.Context, claims []byte, exp time.Time) (string, error) {
	e := is.keys.Load().signing
	for until := e.until.Load(); exp.UnixNano() > until; until = e.until.Load() {
		if e.until.CompareAndSwap(until, exp.UnixNano()) {
			break
		}
	}
	return e.sk.signJWS(ctx, claims)
}

// signJWS returns the compact JWS of claims under the key's header.
func (k *signingKey) signJWS(ctx context.Context, claims []byte) (string, error) {
	return k.signCompact(ctx, k.prefix, claims)
}

// signCompact returns the compact JWS of claims under prefix, an encoded
// header and its dot, which must name the key's algorithm.
func (k *signingKey) signCompact(ctx context.Context, prefix string, claims []byte) (string, error) {
	tok := make([]byte, 0, len(prefix)+jws.SegmentLen(len(claims))+1+jws.SegmentLen(512))
	tok = append(tok, prefix...)
	tok = jws.AppendSegment(tok, claims)
	var sigBuf [2 * 66]byte
	sig, err := k.signature(ctx, tok, &sigBuf)
	if err != nil {
		return "", err
	}
	tok = append(tok, '.')
	tok = jws.AppendSegment(tok, sig)
	return string(tok), nil
}
