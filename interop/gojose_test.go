package interop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// signers are throw-away private keys of every kind asymjwt signs with.
func signers(t testing.TB) map[string]crypto.Signer {
	t.Helper()
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]crypto.Signer{"EdDSA": ed, "ES256": p256, "ES384": p384, "RS512": rsaKey}
}

func mustKey(t testing.TB, s crypto.Signer) asymjwt.Key {
	t.Helper()
	k, err := asymjwt.KeyFromSigner(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tokenServer is an asymjwt token endpoint and its JWK set on loopback.
type tokenServer struct {
	srv      *httptest.Server
	issuer   *asymjwt.Issuer
	keys     *asymjwt.MemoryKeyStore
	tokenURL string
}

func newTokenServer(t testing.TB, issuerKey asymjwt.Key) *tokenServer {
	t.Helper()
	mux := http.NewServeMux()
	ts := &tokenServer{srv: httptest.NewServer(mux), keys: asymjwt.NewMemoryKeyStore()}
	t.Cleanup(ts.srv.Close)
	ts.tokenURL = ts.srv.URL + "/oauth/token"
	var err error
	if ts.issuer, err = asymjwt.NewIssuer(ts.srv.URL, issuerKey); err != nil {
		t.Fatal(err)
	}
	v, err := asymjwt.NewVerifier(ts.keys)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := asymjwt.NewTokenEndpoint(v, ts.issuer, ts.tokenURL, asymjwt.WithAccessTokenAudience("https://api.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("POST /oauth/token", ep)
	mux.Handle("GET /.well-known/jwks.json", ts.issuer)
	return ts
}

// buy gets an access token for user, whose key is key, through
// asymjwt.NewTokenSource.
func (ts *tokenServer) buy(t testing.TB, user string, key asymjwt.Key) string {
	t.Helper()
	if err := ts.keys.Add(user, key.Public()); err != nil {
		t.Fatal(err)
	}
	signer, err := asymjwt.NewSigner(user, key)
	if err != nil {
		t.Fatal(err)
	}
	src, err := asymjwt.NewTokenSource(t.Context(), signer, ts.tokenURL, asymjwt.WithScopes("read"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// TestGoJoseVerifiesAccessTokens: go-jose reads asymjwt's JWK set (each
// kid the key's RFC 7638 thumbprint, as go-jose computes it) and verifies
// its access tokens with it, for every kind of issuer key.
func TestGoJoseVerifiesAccessTokens(t *testing.T) {
	user := mustKey(t, signers(t)["EdDSA"])
	for alg, s := range signers(t) {
		t.Run(alg, func(t *testing.T) {
			ts := newTokenServer(t, mustKey(t, s))
			access := ts.buy(t, "alice", user)

			resp, err := http.Get(ts.srv.URL + "/.well-known/jwks.json")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var set jose.JSONWebKeySet
			if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
				t.Fatalf("go-jose cannot read the JWK set: %v", err)
			}
			if len(set.Keys) != 1 || !set.Keys[0].Valid() || set.Keys[0].Use != "sig" || set.Keys[0].Algorithm != alg {
				t.Fatalf("JWK set %+v", set.Keys)
			}
			tp, err := set.Keys[0].Thumbprint(crypto.SHA256)
			if err != nil || base64.RawURLEncoding.EncodeToString(tp) != set.Keys[0].KeyID {
				t.Fatalf("kid %s is not go-jose's RFC 7638 thumbprint %x (%v)", set.Keys[0].KeyID, tp, err)
			}

			tok, err := jwt.ParseSigned(access, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatalf("go-jose cannot parse the access token: %v", err)
			}
			h := tok.Headers[0]
			if h.ExtraHeaders["typ"] != "at+jwt" {
				t.Fatalf("typ %v", h.ExtraHeaders["typ"])
			}
			keys := set.Key(h.KeyID)
			if len(keys) != 1 {
				t.Fatalf("no key %q in the JWK set", h.KeyID)
			}
			var claims jwt.Claims
			var extra struct {
				Scope    string `json:"scope"`
				ClientID string `json:"client_id"`
			}
			if err := tok.Claims(keys[0].Key, &claims, &extra); err != nil {
				t.Fatalf("go-jose: the signature does not verify: %v", err)
			}
			err = claims.Validate(jwt.Expected{
				Issuer:      ts.srv.URL,
				Subject:     "alice",
				AnyAudience: jwt.Audience{"https://api.example.com"},
				Time:        time.Now(),
			})
			if err != nil || extra.Scope != "read" || extra.ClientID != "alice" || claims.ID == "" || claims.IssuedAt == nil {
				t.Fatalf("claims %+v %+v: %v", claims, extra, err)
			}
			if exp := claims.Expiry.Time().Sub(claims.IssuedAt.Time()); exp != asymjwt.DefaultAccessTokenLifetime {
				t.Fatalf("lifetime %v", exp)
			}
		})
	}
}

// TestVerifierTrustsGoJoseIssuer is the other direction: go-jose issues
// access tokens and publishes its JWK set; asymjwt's Verifier, trusting that
// set (parsed, or fetched from a JWKS URL), accepts its tokens and nothing
// signed otherwise.
func TestVerifierTrustsGoJoseIssuer(t *testing.T) {
	const issuer = "https://gojose.example.com"
	for alg, s := range signers(t) {
		t.Run(alg, func(t *testing.T) {
			jwk := jose.JSONWebKey{Key: s.Public(), KeyID: "key-" + alg, Algorithm: alg, Use: "sig"}
			hmac := jose.JSONWebKey{Key: []byte("a shared secret of 32 bytes long"), KeyID: "hmac", Algorithm: "HS256", Use: "sig"}
			doc, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{hmac, jwk}})
			if err != nil {
				t.Fatal(err)
			}
			set, skipped := asymjwt.ParseKeySet(issuer, doc)
			if len(set.Keys()) != 1 || len(skipped) != 1 {
				t.Fatalf("ParseKeySet kept %d keys (want 1) and skipped %v (want the HMAC key)", len(set.Keys()), skipped)
			}
			jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(doc) }))
			defer jwksSrv.Close()
			remote, err := asymjwt.NewRemoteKeySet(issuer, jwksSrv.URL)
			if err != nil {
				t.Fatal(err)
			}

			sign := func(key any, alg jose.SignatureAlgorithm, kid, typ string, c jwt.Claims) string {
				signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
					(&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", kid))
				if err != nil {
					t.Fatal(err)
				}
				tok, err := jwt.Signed(signer).Claims(c).Claims(map[string]any{"scope": "read write"}).Serialize()
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
			now := time.Now()
			claims := jwt.Claims{Issuer: issuer, Subject: "alice", ID: "j1", IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}
			good := sign(s, jose.SignatureAlgorithm(alg), jwk.KeyID, "at+jwt", claims)
			forged := sign([]byte("a shared secret of 32 bytes long"), jose.HS256, "hmac", "at+jwt", claims)
			untyped := sign(s, jose.SignatureAlgorithm(alg), jwk.KeyID, "JWT", claims)

			for name, keys := range map[string]asymjwt.IssuerKeySet{"parsed": set, "remote": remote} {
				v, err := asymjwt.NewVerifier(asymjwt.NewMemoryKeyStore(), asymjwt.WithTrustedIssuer(keys))
				if err != nil {
					t.Fatal(err)
				}
				verify := func(tok string) (*asymjwt.Identity, error) {
					r := httptest.NewRequest(http.MethodGet, "https://api.example.com/", nil)
					r.Header.Set("Authorization", "Bearer "+tok)
					return v.Verify(r)
				}
				id, err := verify(good)
				if err != nil || id.Username != "alice" || id.Issuer != issuer || id.Scope != "read write" || id.Kind != asymjwt.AccessToken {
					t.Fatalf("%s: go-jose's token: %+v, %v", name, id, err)
				}
				if _, err := verify(forged); err == nil {
					t.Fatalf("%s: an HS256 token signed with the published secret was accepted", name)
				}
				if _, err := verify(untyped); err == nil {
					t.Fatalf("%s: a token typed JWT was accepted as an access token", name)
				}
			}
		})
	}
}

// TestGoJoseVerifiesAssertions: go-jose verifies the assertions asymjwt
// sends (RFC 7523 §3 claims), as any OAuth server's JOSE library would.
func TestGoJoseVerifiesAssertions(t *testing.T) {
	for alg, s := range signers(t) {
		t.Run(alg, func(t *testing.T) {
			signer, err := asymjwt.NewSigner("svc", mustKey(t, s))
			if err != nil {
				t.Fatal(err)
			}
			params, err := signer.ClientAssertion(context.Background(), "https://id.example.com/oauth/token")
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jwt.ParseSigned(params.Get("client_assertion"), []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatal(err)
			}
			var c jwt.Claims
			if err := tok.Claims(s.Public(), &c); err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(jwt.Expected{Issuer: "svc", Subject: "svc", AnyAudience: jwt.Audience{"https://id.example.com/oauth/token"}, Time: time.Now()}); err != nil || c.ID == "" {
				t.Fatalf("claims %+v: %v", c, err)
			}
			if params.Get("client_assertion_type") != asymjwt.ClientAssertionTypeJWTBearer {
				t.Fatalf("params %v", params)
			}
		})
	}
}
