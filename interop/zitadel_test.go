package interop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"
)

// An OpenID provider from github.com/zitadel/oidc/v3 (its op package), run
// in process on loopback with a small in-memory storage, takes asymjwt's
// assertions in both of RFC 7523's roles: as the authorization grant (the
// JWT profile grant, asymjwt.NewTokenSource) and as client authentication
// (private_key_jwt, asymjwt.NewClientCredentialsTokenSource). zitadel
// verifies them with go-jose against the public keys its storage holds
// under a key ID it chose, and issues JWT access tokens that its JWK set
// verifies.
//
// zitadel's LegacyServer authenticates client_credentials requests with a
// client secret only, and takes private_key_jwt for the other grants; the
// provider here routes client_credentials with a client_assertion to
// zitadel's own op.AuthorizePrivateJWTKey (server below), which verifies
// the assertion exactly as it does for the other grants.

// memStorage is the provider's storage: service accounts (JWT profile
// grant users) and clients, each with one public key under a key ID of the
// provider's choosing, and the provider's own RSA signing key.
type memStorage struct {
	signing *rsa.PrivateKey

	mu      sync.Mutex
	keys    map[string]jose.JSONWebKey // key ID -> key, of a client or user
	owners  map[string]string          // key ID -> client or user ID
	clients map[string]bool            // private_key_jwt clients
	issued  []issued
}

// issued records an access token the provider made.
type issued struct {
	subject string
	scopes  []string
}

func newMemStorage(t testing.TB) *memStorage {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &memStorage{signing: k, keys: map[string]jose.JSONWebKey{}, owners: map[string]string{}, clients: map[string]bool{}}
}

// register gives owner (a service account, or a client when client) the
// public key pub under keyID.
func (s *memStorage) register(owner, keyID string, pub crypto.PublicKey, client bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[keyID] = jose.JSONWebKey{Key: pub, KeyID: keyID, Use: "sig"}
	s.owners[keyID] = owner
	if client {
		s.clients[owner] = true
	}
}

func (s *memStorage) tokens() []issued {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]issued(nil), s.issued...)
}

var (
	errNotHere            = errors.New("not implemented by the test storage")
	_          op.Storage = (*memStorage)(nil)
	// These make the provider offer client_credentials and JWT access
	// tokens for the JWT profile grant.
	_ op.ClientCredentialsStorage = (*memStorage)(nil)
	_ op.JWTProfileTokenStorage   = (*memStorage)(nil)
)

// What the flows here use.

func (s *memStorage) GetKeyByIDAndClientID(_ context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[keyID]
	if !ok || s.owners[keyID] != clientID {
		return nil, errors.New("no such key for this client")
	}
	return &k, nil
}

func (s *memStorage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (s *memStorage) JWTProfileTokenType(context.Context, op.TokenRequest) (op.AccessTokenType, error) {
	return op.AccessTokenTypeJWT, nil
}

func (s *memStorage) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued = append(s.issued, issued{r.GetSubject(), r.GetScopes()})
	return "at-" + r.GetSubject(), time.Now().Add(5 * time.Minute), nil
}

func (s *memStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.clients[id] {
		return nil, errors.New("no such client")
	}
	return client{id}, nil
}

func (s *memStorage) ClientCredentials(context.Context, string, string) (op.Client, error) {
	return nil, errors.New("no client secrets here")
}

func (s *memStorage) ClientCredentialsTokenRequest(_ context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	return tokenRequest{clientID, scopes}, nil
}

func (s *memStorage) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{s.signing}, nil
}

func (s *memStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *memStorage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.signing.Public()}}, nil
}

func (s *memStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *memStorage) Health(context.Context) error { return nil }

// What they do not.

func (s *memStorage) CreateAuthRequest(context.Context, *oidc.AuthRequest, string) (op.AuthRequest, error) {
	return nil, errNotHere
}
func (s *memStorage) AuthRequestByID(context.Context, string) (op.AuthRequest, error) {
	return nil, errNotHere
}
func (s *memStorage) AuthRequestByCode(context.Context, string) (op.AuthRequest, error) {
	return nil, errNotHere
}
func (s *memStorage) SaveAuthCode(context.Context, string, string) error { return errNotHere }
func (s *memStorage) DeleteAuthRequest(context.Context, string) error    { return errNotHere }
func (s *memStorage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errNotHere
}
func (s *memStorage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, errNotHere
}
func (s *memStorage) TerminateSession(context.Context, string, string) error { return errNotHere }
func (s *memStorage) RevokeToken(context.Context, string, string, string) *oidc.Error {
	return oidc.ErrServerError()
}
func (s *memStorage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}
func (s *memStorage) AuthorizeClientIDSecret(context.Context, string, string) error {
	return errNotHere
}
func (s *memStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}
func (s *memStorage) SetUserinfoFromToken(context.Context, *oidc.UserInfo, string, string, string) error {
	return errNotHere
}
func (s *memStorage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errNotHere
}

type tokenRequest struct {
	subject string
	scopes  []string
}

func (r tokenRequest) GetSubject() string    { return r.subject }
func (r tokenRequest) GetAudience() []string { return []string{r.subject} }
func (r tokenRequest) GetScopes() []string   { return r.scopes }

type signingKey struct{ k *rsa.PrivateKey }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.k }
func (k signingKey) ID() string                                  { return "op-key-1" }

type publicKey struct{ k crypto.PublicKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Key() any                           { return k.k }
func (k publicKey) ID() string                         { return "op-key-1" }
func (k publicKey) Use() string                        { return "sig" }

// client is a private_key_jwt client allowed the client credentials grant.
type client struct{ id string }

func (c client) GetID() string                       { return c.id }
func (c client) RedirectURIs() []string              { return nil }
func (c client) PostLogoutRedirectURIs() []string    { return nil }
func (c client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodPrivateKeyJWT }
func (c client) ResponseTypes() []oidc.ResponseType  { return nil }
func (c client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeClientCredentials}
}
func (c client) LoginURL(string) string               { return "" }
func (c client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (c client) IDTokenLifetime() time.Duration       { return time.Hour }
func (c client) DevMode() bool                        { return false }
func (c client) IsScopeAllowed(string) bool           { return true }
func (c client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c client) ClockSkew() time.Duration             { return 0 }
func (c client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// server is zitadel's LegacyServer, with client_credentials requests that
// carry a client assertion authenticated by zitadel's own private_key_jwt
// check (see above).
type server struct {
	*op.LegacyServer
	provider *op.Provider
}

func (s server) VerifyClient(ctx context.Context, r *op.Request[op.ClientCredentials]) (op.Client, error) {
	if oidc.GrantType(r.Form.Get("grant_type")) == oidc.GrantTypeClientCredentials &&
		r.Data.ClientAssertionType == oidc.ClientAssertionTypeJWTAssertion {
		return op.AuthorizePrivateJWTKey(ctx, r.Data.ClientAssertion, s.provider)
	}
	return s.LegacyServer.VerifyClient(ctx, r)
}

// provider is an OpenID provider on loopback.
type provider struct {
	srv      *httptest.Server
	storage  *memStorage
	issuer   string
	tokenURL string
}

func newProvider(t *testing.T) *provider {
	t.Helper()
	p := &provider{storage: newMemStorage(t)}
	mux := http.NewServeMux()
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	p.issuer = p.srv.URL
	p.tokenURL = p.issuer + "/oauth/token"
	config := &op.Config{
		CryptoKey:               sha256.Sum256([]byte("interop test crypto key")),
		AuthMethodPrivateKeyJWT: true,
	}
	opp, err := op.NewProvider(config, p.storage, op.StaticIssuer(p.issuer), op.WithAllowInsecure())
	if err != nil {
		t.Fatal(err)
	}
	s := server{LegacyServer: op.NewLegacyServer(opp, *op.DefaultEndpoints), provider: opp}
	mux.Handle("/", op.RegisterLegacyServer(s, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }))
	return p
}

// checkAccessToken verifies a JWT access token of the provider with go-jose
// against the provider's JWK set, and returns its subject.
func (p *provider) checkAccessToken(access string) (string, error) {
	resp, err := http.Get(p.issuer + "/keys")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return "", err
	}
	tok, err := jwt.ParseSigned(access, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return "", err
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		return "", errors.New("no such key at the provider's jwks_uri")
	}
	var c jwt.Claims
	if err := tok.Claims(keys[0].Key, &c); err != nil {
		return "", err
	}
	if err := c.Validate(jwt.Expected{Issuer: p.issuer, Time: time.Now()}); err != nil {
		return "", err
	}
	return c.Subject, nil
}

// userKey is a client's key and the algorithm it signs with.
type userKey struct {
	key asymjwt.Key
	alg asymjwt.Algorithm
}

// userKeys are keys signing the algorithms zitadel's assertion verifier
// takes: RS256, ES256 and PS256 (not EdDSA, nor RS512, asymjwt's default
// for RSA keys, so the Signer is told WithAlgorithm).
func userKeys(t *testing.T) map[string]userKey {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]userKey{
		"RS256": {mustKey(t, rsaKey), asymjwt.RS256},
		"PS256": {mustKey(t, rsaKey), asymjwt.PS256},
		"ES256": {mustKey(t, p256), asymjwt.ES256},
	}
}

func (k userKey) signer(t *testing.T, user string) *asymjwt.Signer {
	t.Helper()
	s, err := asymjwt.NewSigner(user, k.key, asymjwt.WithAlgorithm(k.alg))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestZitadelJWTProfileGrant: asymjwt.NewTokenSource buys access tokens
// from zitadel's OpenID provider with the JWT profile grant (RFC 7523
// §2.1), and oauth2.NewClient uses them.
func TestZitadelJWTProfileGrant(t *testing.T) {
	p := newProvider(t)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const prefix = "Bearer "
		auth := r.Header.Get("Authorization")
		if len(auth) <= len(prefix) {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		sub, err := p.checkAccessToken(auth[len(prefix):])
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		w.Write([]byte(sub))
	}))
	defer api.Close()
	for alg, key := range userKeys(t) {
		t.Run(alg, func(t *testing.T) {
			user := "svc-" + alg
			p.storage.register(user, "zitadel-key-"+alg, key.key.Public(), false)
			signer := key.signer(t, user)
			// zitadel wants its issuer as aud, and its own key ID as kid.
			src, err := asymjwt.NewTokenSource(t.Context(), signer, p.tokenURL,
				asymjwt.WithAssertionAudience(p.issuer), asymjwt.WithAssertionKeyID("zitadel-key-"+alg), asymjwt.WithScopes("openid", "read"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := oauth2.NewClient(t.Context(), src).Get(api.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body [64]byte
			n, _ := resp.Body.Read(body[:])
			if resp.StatusCode != http.StatusOK || string(body[:n]) != user {
				t.Fatalf("API answered %s %q", resp.Status, body[:n])
			}
			last := p.storage.tokens()[len(p.storage.tokens())-1]
			if last.subject != user || !slices.Contains(last.scopes, "read") {
				t.Fatalf("the provider issued %+v", last)
			}

			// Signed by a key the provider does not hold for this user: refused.
			other := userKeys(t)["ES256"].signer(t, user)
			bad, _ := asymjwt.NewTokenSource(t.Context(), other, p.tokenURL,
				asymjwt.WithAssertionAudience(p.issuer), asymjwt.WithAssertionKeyID("zitadel-key-"+alg))
			var re *oauth2.RetrieveError
			if _, err := bad.Token(); !errors.As(err, &re) {
				t.Fatalf("a foreign key's assertion: %v", err)
			}
		})
	}
}

// TestZitadelPrivateKeyJWT: asymjwt.NewClientCredentialsTokenSource
// authenticates to zitadel's provider with private_key_jwt (RFC 7523 §2.2)
// for the client credentials grant: no client secret anywhere.
func TestZitadelPrivateKeyJWT(t *testing.T) {
	p := newProvider(t)
	for alg, key := range userKeys(t) {
		t.Run(alg, func(t *testing.T) {
			clientID := "client-" + alg
			p.storage.register(clientID, "client-key-"+alg, key.key.Public(), true)
			signer := key.signer(t, clientID)
			src, err := asymjwt.NewClientCredentialsTokenSource(t.Context(), signer, p.tokenURL,
				asymjwt.WithAssertionAudience(p.issuer), asymjwt.WithAssertionKeyID("client-key-"+alg), asymjwt.WithScopes("read"))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := src.Token()
			if err != nil {
				t.Fatal(err)
			}
			if sub, err := p.checkAccessToken(tok.AccessToken); tok.TokenType != "Bearer" || err != nil || sub != clientID {
				t.Fatalf("token type %q, subject %q, %v", tok.TokenType, sub, err)
			}

			// An assertion for another audience: refused.
			wrong, _ := asymjwt.NewClientCredentialsTokenSource(t.Context(), signer, p.tokenURL,
				asymjwt.WithAssertionAudience("https://elsewhere.example.com"), asymjwt.WithAssertionKeyID("client-key-"+alg))
			var re *oauth2.RetrieveError
			if _, err := wrong.Token(); !errors.As(err, &re) || re.ErrorCode == "" {
				t.Fatalf("an assertion for another audience: %v", err)
			}
		})
	}
}
