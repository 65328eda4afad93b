package asymjwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	oauth2jwt "golang.org/x/oauth2/jwt"
)

// TestOAuth2JWTClient: golang.org/x/oauth2/jwt, with its default
// configuration (RS256 from a PEM RSA key, the username in iss, no sub, no
// jti, exp an hour ahead, aud the token URL), buys an access token and
// calls the API with it.
func TestOAuth2JWTClient(t *testing.T) {
	x := newExchange(t, nil)
	x.addUser("billing", loadTestKeys(t).rsa)
	pemKey, err := os.ReadFile(keyPath("pkcs1_rsa2048.pem"))
	if err != nil {
		t.Fatal(err)
	}
	conf := &oauth2jwt.Config{
		Email:      "billing",
		PrivateKey: pemKey,
		Scopes:     []string{"invoices:read", "invoices:write"},
		TokenURL:   x.tokenURL,
	}
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, x.srv.Client())
	src := conf.TokenSource(ctx)
	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "Bearer" || time.Until(tok.Expiry) < 4*time.Minute || time.Until(tok.Expiry) > 5*time.Minute {
		t.Fatalf("token type %q, expiry in %v; want Bearer, 5 minutes", tok.TokenType, time.Until(tok.Expiry))
	}
	resp, err := oauth2.NewClient(ctx, src).Get(x.srv.URL + "/api/hello")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("API answered %s", resp.Status)
	}
	var id map[string]any
	if err := jsonDecode(resp, &id); err != nil {
		t.Fatal(err)
	}
	if id["user"] != "billing" || id["kind"] != "access token" || id["issuer"] != x.srv.URL || id["scope"] != "invoices:read invoices:write" {
		t.Fatalf("identity %v", id)
	}
}

// TestOAuth2JWTSameSecond documents a limit of assertions without jti, as
// x/oauth2/jwt sends them: two token sources that exchange within the same
// second sign the same bytes (RS256 is deterministic, iat has seconds), and
// the endpoint cannot tell the second from a replay. One source per
// process (it reuses its token) never meets it.
func TestOAuth2JWTSameSecond(t *testing.T) {
	x := newExchange(t, nil)
	x.addUser("billing", loadTestKeys(t).rsa)
	pemKey, err := os.ReadFile(keyPath("pkcs1_rsa2048.pem"))
	if err != nil {
		t.Fatal(err)
	}
	conf := &oauth2jwt.Config{Email: "billing", PrivateKey: pemKey, TokenURL: x.tokenURL}
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, x.srv.Client())
	for {
		start := time.Now().Unix()
		_, err1 := conf.TokenSource(ctx).Token()
		_, err2 := conf.TokenSource(ctx).Token()
		if time.Now().Unix() != start {
			continue // the second ticked between them: try again
		}
		var re *oauth2.RetrieveError
		if err1 != nil || !errors.As(err2, &re) || !strings.Contains(string(re.Body), "assertion refused: replay") {
			t.Fatalf("two exchanges in one second: %v, %v; want the second refused as a replay", err1, err2)
		}
		return
	}
}

// TestOwnTokenAssertion: a request token of this package, bound to a POST
// to the token URL, buys an access token; bound to another URL it does not.
func TestOwnTokenAssertion(t *testing.T) {
	x := newExchange(t, nil)
	keys := loadTestKeys(t)
	x.addUser("alice", keys.p256)
	s, err := NewSigner("alice", keys.p256, WithClock(x.now))
	if err != nil {
		t.Fatal(err)
	}
	sign := func(target string) string {
		req, _ := http.NewRequest(http.MethodPost, target, nil)
		tok, err := s.Sign(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	a := x.grant(sign(x.tokenURL))
	wantOK(t, a)
	if a.str("refresh_token") == "" || a.body["expires_in"] != float64(300) {
		t.Fatalf("answer %s: want a refresh token and expires_in 300", a.raw)
	}
	wantError(t, x.grant(sign(x.srv.URL+"/api/hello")), http.StatusBadRequest, "invalid_grant")

	// A request token the API accepted is used up for the endpoint too.
	req, _ := http.NewRequest(http.MethodGet, x.srv.URL+"/api/hello", nil)
	tok, _ := s.Sign(t.Context(), req)
	if status, _, _ := x.call("JWT " + tok); status != http.StatusOK {
		t.Fatalf("API answered %d", status)
	}
	if a := x.grant(tok); a.str("error_description") != "assertion refused: binding" {
		t.Fatalf("a token bound to GET /api/hello at the endpoint: %s", a.raw)
	}
}

// TestTokenEndpointAssertionRefused is SECURITY.md row T1: an assertion
// replayed, expired, for another endpoint, signed by another user's key,
// with alg HS* or none is refused with invalid_grant; nothing is issued,
// and nothing is recorded for forged ones.
func TestTokenEndpointAssertionRefused(t *testing.T) {
	keys := loadTestKeys(t)
	type claims = map[string]any
	hdr := func(alg string) string { return mustJSON(t, map[string]string{"alg": alg, "typ": "JWT"}) }

	tests := []struct {
		name string
		// make returns the assertion; it may use the endpoint first.
		make   func(t *testing.T, x *exchange) string
		kind   string // the error_description's kind
		forged bool   // nothing may be recorded
	}{
		{"replayed x/oauth2-style assertion (no jti)", func(t *testing.T, x *exchange) string {
			a := jwsOf(t, keys.rsa, RS256, hdr("RS256"), mustJSON(t, rfc7523Claims(x, "alice", nil)))
			wantOK(t, x.grant(a))
			return a
		}, "replay", false},
		{"replayed assertion with jti", func(t *testing.T, x *exchange) string {
			a := jwsOf(t, keys.rsa, RS256, hdr("RS256"), mustJSON(t, rfc7523Claims(x, "alice", claims{"jti": "j-1"})))
			wantOK(t, x.grant(a))
			return a
		}, "replay", false},
		{"same jti in another assertion", func(t *testing.T, x *exchange) string {
			wantOK(t, x.grant(jwsOf(t, keys.rsa, RS256, hdr("RS256"), mustJSON(t, rfc7523Claims(x, "alice", claims{"jti": "j-2"})))))
			return jwsOf(t, keys.rsa, RS512, hdr("RS512"), mustJSON(t, rfc7523Claims(x, "alice", claims{"jti": "j-2", "scope": "x"})))
		}, "replay", false},
		{"replayed ECDSA assertion with the twin signature (r, n-s)", func(t *testing.T, x *exchange) string {
			a := jwsOf(t, keys.p256, ES256, hdr("ES256"), mustJSON(t, rfc7523Claims(x, "carol", nil)))
			wantOK(t, x.grant(a))
			sig, _ := base64.RawURLEncoding.DecodeString(a[strings.LastIndexByte(a, '.')+1:])
			s := new(big.Int).SetBytes(sig[32:])
			s.Sub(elliptic.P256().Params().N, s)
			twin := append(append([]byte(nil), sig[:32]...), s.FillBytes(make([]byte, 32))...)
			pub := keys.p256.Public().(*ecdsa.PublicKey)
			d := sha256.Sum256([]byte(a[:strings.LastIndexByte(a, '.')]))
			if !ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(twin[:32]), s) {
				t.Fatal("the twin signature does not verify")
			}
			return withSignature(a, twin)
		}, "replay", false},
		{"expired", func(t *testing.T, x *exchange) string {
			return jwsOf(t, keys.rsa, RS256, hdr("RS256"), mustJSON(t, rfc7523Claims(x, "alice", claims{"exp": x.now().Add(-time.Minute).Unix()})))
		}, "stale", false},
		{"exp more than an hour ahead", func(t *testing.T, x *exchange) string {
			return jwsOf(t, keys.rsa, RS256, hdr("RS256"), mustJSON(t, rfc7523Claims(x, "alice", claims{"exp": x.now().Add(2 * time.Hour).Unix()})))
		}, "stale", false},
		{"no exp", func(t *testing.T, x *exchange) string {
			c := rfc7523Claims(x, "alice", nil)
			delete(c, "exp")
			return jwsOf(t, keys.rsa, RS256, hdr("RS256"), mustJSON(t, c))
		}, "bad_claims", true},
		{"iat in the future", func(t *testing.T, x *exchange) string {
			return jwsOf(t, keys.rsa, RS256, hdr("RS256"), mustJSON(t, rfc7523Claims(x, "alice", claims{"iat": x.now().Add(time.Minute).Unix()})))
		}, "stale", false},
		{"aud of another endpoint", func(t *testing.T, x *exchange) string {
			return jwsOf(t, keys.rsa, RS256, hdr("RS256"), mustJSON(t, rfc7523Claims(x, "alice", claims{"aud": "https://other.example.com/oauth/token"})))
		}, "bad_claims", false},
		{"aud of another path on this host", func(t *testing.T, x *exchange) string {
			return jwsOf(t, keys.rsa, RS256, hdr("RS256"), mustJSON(t, rfc7523Claims(x, "alice", claims{"aud": x.srv.URL + "/other/token"})))
		}, "bad_claims", false},
		{"no aud", func(t *testing.T, x *exchange) string {
			c := rfc7523Claims(x, "alice", nil)
			delete(c, "aud")
			return jwsOf(t, keys.rsa, RS256, hdr("RS256"), mustJSON(t, c))
		}, "bad_claims", true},
		{"signed by another user's key", func(t *testing.T, x *exchange) string {
			return jwsOf(t, keys.ed, EdDSA, hdr("EdDSA"), mustJSON(t, rfc7523Claims(x, "alice", nil)))
		}, "invalid_signature", true},
		{"sub names another user than iss", func(t *testing.T, x *exchange) string {
			return jwsOf(t, keys.rsa, RS256, hdr("RS256"), mustJSON(t, rfc7523Claims(x, "alice", claims{"sub": "bob"})))
		}, "bad_claims", true},
		{"unknown user", func(t *testing.T, x *exchange) string {
			return jwsOf(t, keys.rsa, RS256, hdr("RS256"), mustJSON(t, rfc7523Claims(x, "mallory", nil)))
		}, "invalid_signature", true},
		{"alg HS256 with the public key as secret", func(t *testing.T, x *exchange) string {
			return hs256(t, hdr("HS256"), mustJSON(t, rfc7523Claims(x, "alice", nil)), keys.rsa)
		}, "bad_algorithm", true},
		{"alg none", func(t *testing.T, x *exchange) string {
			enc := base64.RawURLEncoding.EncodeToString
			return enc([]byte(hdr("none"))) + "." + enc([]byte(mustJSON(t, rfc7523Claims(x, "alice", nil)))) + ".AA"
		}, "bad_algorithm", true},
		{"alg NONE", func(t *testing.T, x *exchange) string {
			enc := base64.RawURLEncoding.EncodeToString
			return enc([]byte(hdr("NONE"))) + "." + enc([]byte(mustJSON(t, rfc7523Claims(x, "alice", nil)))) + ".AA"
		}, "bad_algorithm", true},
		{"ES256 claimed for an RSA key", func(t *testing.T, x *exchange) string {
			return jwsOf(t, keys.p256, ES256, hdr("ES256"), mustJSON(t, rfc7523Claims(x, "alice", nil)))
		}, "invalid_signature", true},
		{"bit flip in the signature", func(t *testing.T, x *exchange) string {
			a := jwsOf(t, keys.rsa, RS256, hdr("RS256"), mustJSON(t, rfc7523Claims(x, "alice", nil)))
			sig, _ := base64.RawURLEncoding.DecodeString(a[strings.LastIndexByte(a, '.')+1:])
			sig[7] ^= 1
			return withSignature(a, sig)
		}, "invalid_signature", true},
		{"jku in the header", func(t *testing.T, x *exchange) string {
			return jwsOf(t, keys.rsa, RS256, `{"alg":"RS256","jku":"https://evil.example/jwks"}`, mustJSON(t, rfc7523Claims(x, "alice", nil)))
		}, "bad_header", true},
		{"an access token as assertion", func(t *testing.T, x *exchange) string {
			a := x.grant(jwsOf(t, keys.rsa, RS256, hdr("RS256"), mustJSON(t, rfc7523Claims(x, "alice", claims{"jti": "buy"}))))
			wantOK(t, a)
			return a.str("access_token")
		}, "bad_header", false},
		{"duplicate claim names", func(t *testing.T, x *exchange) string {
			c := mustJSON(t, rfc7523Claims(x, "alice", nil))
			return jwsOf(t, keys.rsa, RS256, hdr("RS256"), c[:len(c)-1]+`,"ISS":"bob"}`)
		}, "malformed", true},
		{"not a JWS", func(*testing.T, *exchange) string { return "not.a.jws" }, "malformed", true},
		{"huge", func(*testing.T, *exchange) string { return strings.Repeat("a", 20000) }, "too_large", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newExchange(t, nil)
			x.addUser("alice", keys.rsa)
			x.addUser("bob", keys.ed)
			x.addUser("carol", keys.p256)
			a := tt.make(t, x)
			before, chains := x.nonces.Len(), x.refresh.Len()
			got := x.grant(a)
			wantError(t, got, http.StatusBadRequest, "invalid_grant")
			if d := got.str("error_description"); d != "assertion refused: "+tt.kind {
				t.Errorf("error_description %q, want kind %s", d, tt.kind)
			}
			if x.refresh.Len() != chains {
				t.Error("a refresh token chain was created")
			}
			if tt.forged && x.nonces.Len() != before {
				t.Errorf("a forged assertion was recorded: %d nonces, were %d", x.nonces.Len(), before)
			}
			if strings.Contains(x.log.String(), a[:min(len(a), 40)]) {
				t.Error("the log holds the assertion")
			}
		})
	}
}

// rfc7523Claims are an assertion's claims as x/oauth2/jwt makes them, with
// changes (a nil value deletes).
func rfc7523Claims(x *exchange, user string, changes map[string]any) map[string]any {
	now := x.now().Add(-10 * time.Second)
	c := map[string]any{"iss": user, "aud": x.tokenURL, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range changes {
		c[k] = v
	}
	return c
}

// TestTokenEndpointAssertionAccepted covers the forms an assertion may
// take.
func TestTokenEndpointAssertionAccepted(t *testing.T) {
	keys := loadTestKeys(t)
	hdr := `{"alg":"EdDSA","typ":"JWT"}`
	tests := []struct {
		name      string
		changes   map[string]any
		form      url.Values
		wantScope string
	}{
		{"iss only", nil, nil, ""},
		{"sub and iss the same", map[string]any{"sub": "bob"}, nil, ""},
		{"sub only", map[string]any{"sub": "bob", "iss": "client-app"}, nil, ""},
		{"aud is the issuer", map[string]any{"aud": "ISSUER"}, nil, ""},
		{"aud is a list naming the endpoint", map[string]any{"aud": []string{"https://else", "TOKENURL"}}, nil, ""},
		{"prn and unknown claims", map[string]any{"prn": "bob", "typ": "x", "foo": []int{1}}, nil, ""},
		{"scope claim", map[string]any{"scope": "a b"}, nil, "a b"},
		{"scope parameter", nil, url.Values{"scope": {"c"}}, "c"},
		{"both, the same", map[string]any{"scope": "a b"}, url.Values{"scope": {"a b"}}, "a b"},
		{"nonce as replay key", map[string]any{"nonce": "n-1"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newExchange(t, nil)
			x.addUser("bob", keys.ed)
			c := rfc7523Claims(x, "bob", tt.changes)
			if tt.name == "sub only" {
				delete(c, "iss")
			}
			for k, v := range c {
				switch v {
				case "ISSUER":
					c[k] = x.issuer.Issuer()
				}
				if l, ok := v.([]string); ok && l[1] == "TOKENURL" {
					c[k] = []string{l[0], x.tokenURL}
				}
			}
			form := url.Values{"grant_type": {GrantTypeJWTBearer}, "assertion": {jwsOf(t, keys.ed, EdDSA, hdr, mustJSON(t, c))}}
			for k, v := range tt.form {
				form[k] = v
			}
			a := x.post(form)
			wantOK(t, a)
			if a.str("scope") != tt.wantScope {
				t.Errorf("scope %q, want %q", a.str("scope"), tt.wantScope)
			}
			status, _, body := x.call("Bearer " + a.str("access_token"))
			if status != http.StatusOK || !strings.Contains(body, `"user":"bob"`) {
				t.Fatalf("API: %d %s", status, body)
			}
		})
	}
}

// TestRefreshTokenRefused is SECURITY.md row T2: a refresh token reused
// after rotation (which revokes its whole chain), of another user, expired
// or garbage is refused with invalid_grant; and the store is given only
// hashes of refresh tokens.
func TestRefreshTokenRefused(t *testing.T) {
	keys := loadTestKeys(t)
	// run keeps every refresh token the endpoint hands out; newest is the
	// chain's latest.
	type run struct {
		x      *exchange
		issued []string
	}
	keep := func(r *run, a tokenAnswer) string {
		wantOK(t, a)
		r.issued = append(r.issued, a.str("refresh_token"))
		return a.str("refresh_token")
	}
	begin := func(t *testing.T, r *run) string {
		return keep(r, r.x.grant(jwsOf(t, keys.ed, EdDSA, `{"alg":"EdDSA"}`, mustJSON(t, rfc7523Claims(r.x, "bob", map[string]any{"jti": "begin", "scope": "a b"})))))
	}
	tests := []struct {
		name string
		// present returns the form to post; it may use the endpoint first.
		present     func(t *testing.T, r *run) url.Values
		desc        string
		chainKilled bool // the chain's newest token is refused afterwards
	}{
		{"reused after rotation", func(t *testing.T, r *run) url.Values {
			rt := begin(t, r)
			keep(r, r.x.refreshWith(rt))
			return url.Values{"refresh_token": {rt}}
		}, "refresh token reused: its chain is revoked", true},
		{"reused after two rotations", func(t *testing.T, r *run) url.Values {
			rt := keep(r, r.x.refreshWith(begin(t, r)))
			keep(r, r.x.refreshWith(rt))
			return url.Values{"refresh_token": {rt}}
		}, "refresh token reused: its chain is revoked", true},
		{"of another user (client_id)", func(t *testing.T, r *run) url.Values {
			return url.Values{"refresh_token": {begin(t, r)}, "client_id": {"alice"}}
		}, "refresh token not valid", true},
		{"expired", func(t *testing.T, r *run) url.Values {
			rt := begin(t, r)
			r.x.advance(DefaultRefreshTokenLifetime + time.Second)
			return url.Values{"refresh_token": {rt}}
		}, "refresh token not valid", false},
		{"the user's key removed", func(t *testing.T, r *run) url.Values {
			rt := begin(t, r)
			r.x.keys.Remove("bob")
			r.x.addUser("bob", keys.ed2)
			return url.Values{"refresh_token": {rt}}
		}, "refresh token not valid", false},
		{"scope wider than granted", func(t *testing.T, r *run) url.Values {
			return url.Values{"refresh_token": {begin(t, r)}, "scope": {"a c"}}
		}, "scope wider than the refresh token's", false},
		{"garbage", func(*testing.T, *run) url.Values {
			return url.Values{"refresh_token": {"garbage"}}
		}, "refresh token not valid", false},
		{"garbage of the right shape", func(*testing.T, *run) url.Values {
			return url.Values{"refresh_token": {strings.Repeat("A", 22) + "." + strings.Repeat("B", 43)}}
		}, "refresh token not valid", false},
		{"right chain, wrong secret", func(t *testing.T, r *run) url.Values {
			return url.Values{"refresh_token": {begin(t, r)[:23] + strings.Repeat("B", 43)}}
		}, "refresh token not valid", false},
		{"an access token", func(t *testing.T, r *run) url.Values {
			a := r.x.grant(jwsOf(t, keys.ed, EdDSA, `{"alg":"EdDSA"}`, mustJSON(t, rfc7523Claims(r.x, "bob", nil))))
			return url.Values{"refresh_token": {a.str("access_token")}}
		}, "refresh token not valid", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingRefreshStore{}
			x := newExchange(t, []TokenEndpointOption{WithRefreshStore(rec)})
			rec.s = x.refresh
			x.addUser("bob", keys.ed)
			r := &run{x: x}
			form := tt.present(t, r)
			form.Set("grant_type", "refresh_token")
			a := x.post(form)
			code := "invalid_grant"
			if strings.HasPrefix(tt.desc, "scope") {
				code = "invalid_scope"
			}
			wantError(t, a, http.StatusBadRequest, code)
			if d := a.str("error_description"); d != tt.desc {
				t.Errorf("error_description %q, want %q", d, tt.desc)
			}
			if tt.chainKilled {
				newest := r.issued[len(r.issued)-1]
				if a := x.refreshWith(newest); a.str("error") != "invalid_grant" {
					t.Errorf("the chain's newest refresh token still works: %s", a.raw)
				}
			}
			rec.checkOnlyHashes(t, r.issued)
		})
	}
}

// TestRefreshRotation: each refresh gives a new refresh token and an access
// token; the chain keeps its scope; a narrower scope may be asked for.
func TestRefreshRotation(t *testing.T) {
	keys := loadTestKeys(t)
	x := newExchange(t, nil)
	x.addUser("bob", keys.ed)
	a := x.grant(jwsOf(t, keys.ed, EdDSA, `{"alg":"EdDSA"}`, mustJSON(t, rfc7523Claims(x, "bob", map[string]any{"scope": "a b"}))))
	wantOK(t, a)
	seen := map[string]bool{a.str("refresh_token"): true}
	rt := a.str("refresh_token")
	for i := range 3 {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"bob"}}
		want := "a b"
		if i == 1 {
			form.Set("scope", "b")
			want = "b"
		}
		a := x.post(form)
		wantOK(t, a)
		rt = a.str("refresh_token")
		if seen[rt] || a.str("scope") != want {
			t.Fatalf("refresh %d: refresh token seen before %v, scope %q", i, seen[rt], a.str("scope"))
		}
		seen[rt] = true
		if status, _, _ := x.call("Bearer " + a.str("access_token")); status != http.StatusOK {
			t.Fatalf("refresh %d: API answered %d", i, status)
		}
	}
}

// TestTokenRequestRefused covers RFC 6749 §5.2 for malformed requests.
func TestTokenRequestRefused(t *testing.T) {
	x := newExchange(t, nil)
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	tests := []struct {
		name        string
		method      string
		url         string
		contentType string
		auth        string
		body        string
		status      int
		code        string
	}{
		{"GET", http.MethodGet, "", "", "", "", http.StatusMethodNotAllowed, "invalid_request"},
		{"no grant_type", "", "", "", "", form("assertion", "x"), 400, "invalid_request"},
		{"unknown grant_type", "", "", "", "", form("grant_type", "password", "username", "a"), 400, "unsupported_grant_type"},
		{"client_credentials", "", "", "", "", form("grant_type", "client_credentials"), 400, "unsupported_grant_type"},
		{"no assertion", "", "", "", "", form("grant_type", GrantTypeJWTBearer), 400, "invalid_request"},
		{"no refresh_token", "", "", "", "", form("grant_type", "refresh_token"), 400, "invalid_request"},
		{"assertion twice", "", "", "", "", form("grant_type", GrantTypeJWTBearer, "assertion", "a", "assertion", "b"), 400, "invalid_request"},
		{"grant_type twice", "", "", "", "", form("grant_type", GrantTypeJWTBearer, "grant_type", "refresh_token"), 400, "invalid_request"},
		{"parameters in the URL", "", "?grant_type=" + url.QueryEscape(GrantTypeJWTBearer), "", "", form("assertion", "a"), 400, "invalid_request"},
		{"JSON body", "", "", "application/json", "", `{"grant_type":"refresh_token"}`, 400, "invalid_request"},
		{"body too large", "", "", "", "", form("grant_type", GrantTypeJWTBearer, "assertion", strings.Repeat("a", 70<<10)), 400, "invalid_request"},
		{"bad scope", "", "", "", "", form("grant_type", GrantTypeJWTBearer, "assertion", "a", "scope", `a"b`), 400, "invalid_scope"},
		{"HTTP Basic client authentication", "", "", "", "Basic YWxpY2U6c2VjcmV0", form("grant_type", GrantTypeJWTBearer, "assertion", "a"), 401, "invalid_client"},
		{"client_secret", "", "", "", "", form("grant_type", GrantTypeJWTBearer, "assertion", "a", "client_id", "alice", "client_secret", "s"), 401, "invalid_client"},
		{"client_assertion", "", "", "", "", form("grant_type", "client_credentials", "client_assertion_type", ClientAssertionTypeJWTBearer, "client_assertion", "a"), 401, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req, _ := http.NewRequest(method, x.tokenURL+tt.url, strings.NewReader(tt.body))
			ct := tt.contentType
			if ct == "" {
				ct = "application/x-www-form-urlencoded"
			}
			req.Header.Set("Content-Type", ct)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			a := x.do(req)
			wantError(t, a, tt.status, tt.code)
			if tt.auth != "" && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("401 for Basic without WWW-Authenticate: Basic (%q)", a.header.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestTokenEndpointUnavailable: a store that cannot answer gives 503
// temporarily_unavailable, never a token.
func TestTokenEndpointUnavailable(t *testing.T) {
	keys := loadTestKeys(t)
	x := newExchange(t, []TokenEndpointOption{WithRefreshStore(failingRefreshStore{})})
	x.addUser("bob", keys.ed)
	a := x.grant(jwsOf(t, keys.ed, EdDSA, `{"alg":"EdDSA"}`, mustJSON(t, rfc7523Claims(x, "bob", nil))))
	wantError(t, a, http.StatusServiceUnavailable, "temporarily_unavailable")
	if a.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
}

type failingRefreshStore struct{}

func (failingRefreshStore) Create(context.Context, RefreshGrant, [32]byte, time.Duration) error {
	return errors.New("disk on fire")
}

func (failingRefreshStore) Rotate(context.Context, string, [32]byte, [32]byte) (RefreshGrant, error) {
	return RefreshGrant{}, errors.New("disk on fire")
}

func (failingRefreshStore) Revoke(context.Context, string) error { return errors.New("disk on fire") }

// TestScopePolicy: the policy decides the scope; its refusal is
// invalid_scope.
func TestScopePolicy(t *testing.T) {
	keys := loadTestKeys(t)
	policy := func(_ context.Context, user, scope string) (string, error) {
		if strings.Contains(scope, "admin") {
			return "", errors.New("no admin for " + user)
		}
		return strings.TrimSpace(scope + " base"), nil
	}
	x := newExchange(t, []TokenEndpointOption{WithScopePolicy(policy)})
	x.addUser("bob", keys.ed)
	grant := func(scope string) tokenAnswer {
		return x.post(url.Values{"grant_type": {GrantTypeJWTBearer}, "scope": {scope},
			"assertion": {jwsOf(t, keys.ed, EdDSA, `{"alg":"EdDSA"}`, mustJSON(t, rfc7523Claims(x, "bob", map[string]any{"jti": scope})))}})
	}
	a := grant("read")
	wantOK(t, a)
	if a.str("scope") != "read base" {
		t.Fatalf("scope %q", a.str("scope"))
	}
	wantError(t, grant("read admin"), http.StatusBadRequest, "invalid_scope")
}

// recordingRefreshStore passes calls on to s and records every argument, to
// show that no refresh token reaches the store, only hashes.
type recordingRefreshStore struct {
	s      RefreshStore
	mu     sync.Mutex
	hashes map[[32]byte]bool
	texts  []string
}

func (r *recordingRefreshStore) record(texts []string, hashes ...[32]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hashes == nil {
		r.hashes = map[[32]byte]bool{}
	}
	for _, h := range hashes {
		r.hashes[h] = true
	}
	r.texts = append(r.texts, texts...)
}

func (r *recordingRefreshStore) Create(ctx context.Context, g RefreshGrant, first [32]byte, ttl time.Duration) error {
	r.record([]string{g.Chain, g.Username, g.Scope, g.KeyID}, first)
	return r.s.Create(ctx, g, first, ttl)
}

func (r *recordingRefreshStore) Rotate(ctx context.Context, chain string, used, next [32]byte) (RefreshGrant, error) {
	r.record([]string{chain}, used, next)
	return r.s.Rotate(ctx, chain, used, next)
}

func (r *recordingRefreshStore) Revoke(ctx context.Context, chain string) error {
	r.record([]string{chain})
	return r.s.Revoke(ctx, chain)
}

// checkOnlyHashes checks that every refresh token handed out reached the
// store as its SHA-256 hash, and that no text given to it holds a token's
// secret part.
func (r *recordingRefreshStore) checkOnlyHashes(t *testing.T, issued []string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rt := range issued {
		if !r.hashes[sha256.Sum256([]byte(rt))] {
			t.Errorf("refresh token %d did not reach the store as its hash", len(rt))
		}
		_, secret, _ := strings.Cut(rt, ".")
		for _, s := range r.texts {
			if secret != "" && strings.Contains(s, secret) {
				t.Errorf("the store was given a refresh token's secret")
			}
		}
	}
}

// hs256 makes an HS256 JWS keyed with the public key's PKIX DER, the
// key-confusion attack.
func hs256(t testing.TB, header, claims string, key Key) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	input := enc([]byte(header)) + "." + enc([]byte(claims))
	m := hmac.New(sha256.New, der)
	m.Write([]byte(input))
	return input + "." + enc(m.Sum(nil))
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

// FuzzAssertion feeds the assertion check of a token endpoint: nothing may
// panic, and no assertion but one signed by the user's key may pass.
func FuzzAssertion(f *testing.F) {
	keys := loadTestKeys(f)
	x := newExchange(f, nil)
	x.addUser("alice", keys.ed)
	f.Add(jwsOf(f, keys.ed, EdDSA, `{"alg":"EdDSA"}`, mustJSON(f, rfc7523Claims(x, "alice", nil))))
	f.Add(jwsOf(f, keys.ed, EdDSA, `{"alg":"EdDSA","typ":"JWT"}`, `{"username":"alice","time":1,"nonce":"n"}`))
	f.Add("e30.e30.AA")
	f.Fuzz(func(t *testing.T, raw string) {
		g, err := x.ep.verifyAssertion(context.Background(), raw, netip.Addr{})
		if err == nil && g.username != "alice" {
			t.Fatalf("accepted %q for %q", raw, g.username)
		}
	})
}

// TestExchangeNoSecrets (SECURITY.md C5 for the exchange): refused
// assertions, refresh tokens and access tokens leave no part of a token in
// the log, in an error or in an answer.
func TestExchangeNoSecrets(t *testing.T) {
	keys := loadTestKeys(t)
	var errs []string
	var mu sync.Mutex
	hook := WithErrorHook(func(_ *http.Request, err error) {
		mu.Lock()
		errs = append(errs, err.Error())
		mu.Unlock()
	})
	x := newExchange(t, nil, hook)
	x.addUser("bob", keys.ed)
	assertion := jwsOf(t, keys.ed, EdDSA, `{"alg":"EdDSA"}`, mustJSON(t, rfc7523Claims(x, "bob", nil)))
	a := x.grant(assertion)
	wantOK(t, a)
	at, rt := a.str("access_token"), a.str("refresh_token")
	wantOK(t, x.refreshWith(rt))

	var answers []string
	for _, ans := range []tokenAnswer{
		x.grant(assertion),                     // a replay
		x.refreshWith(rt),                      // a reuse
		x.refreshWith(rt[:23] + "x" + rt[24:]), // a wrong secret
		x.grant(at),                            // an access token as assertion
	} {
		answers = append(answers, ans.raw)
	}
	x.call("JWT " + at)
	x.call("Bearer " + flipSignatureBit(at))
	x.call("Bearer " + at[:len(at)-3])

	secrets := map[string]string{}
	for name, tok := range map[string]string{"assertion": assertion, "access token": at} {
		parts := strings.Split(tok, ".")
		secrets[name+" claims"], secrets[name+" signature"] = parts[1], parts[2][:20]
	}
	_, secret, _ := strings.Cut(rt, ".")
	secrets["refresh token secret"] = secret
	mu.Lock()
	all := append(append([]string{x.log.String()}, errs...), answers...)
	mu.Unlock()
	if len(errs) < 3 || !strings.Contains(x.log.String(), "token request refused") {
		t.Fatalf("the refusals were not all logged: %d errors, log %q", len(errs), x.log.String())
	}
	for name, s := range secrets {
		for _, text := range all {
			if strings.Contains(text, s) {
				t.Errorf("the %s appears in %q", name, text)
			}
		}
	}
}
