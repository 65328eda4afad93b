package asymjwt

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBearerRefused is SECURITY.md row T3: an access token expired, from
// another issuer, for another audience, with an unknown kid, signed by a
// client's key, or sent under the JWT scheme is refused; the issuer's key
// set is the only trust for Bearer tokens.
func TestBearerRefused(t *testing.T) {
	keys := loadTestKeys(t)
	x := newExchange(t, nil)
	x.addUser("alice", keys.p256)
	issuerKey := keys.ed
	kid, _ := Thumbprint(issuerKey.Public())
	other, err := NewIssuer("https://other.example.com", keys.ed2)
	if err != nil {
		t.Fatal(err)
	}
	otherKid := other.KeyID()
	aliceKid, _ := Thumbprint(keys.p256.Public())
	aliceFP, _ := Fingerprint(keys.p256.Public())

	hdr := func(alg Algorithm, typ, kid string) string {
		h := map[string]string{"alg": string(alg), "typ": typ, "kid": kid}
		if typ == "" {
			delete(h, "typ")
		}
		if kid == "" {
			delete(h, "kid")
		}
		return mustJSON(t, h)
	}
	claims := func(changes map[string]any) string {
		now := x.now()
		c := map[string]any{"iss": x.issuer.Issuer(), "sub": "alice", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "j1"}
		for k, v := range changes {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return mustJSON(t, c)
	}
	good := func(changes map[string]any) string {
		return jwsOf(t, issuerKey, EdDSA, hdr(EdDSA, "at+jwt", kid), claims(changes))
	}
	requestToken := func() string {
		s, _ := NewSigner("alice", keys.p256, WithClock(x.now))
		req, _ := http.NewRequest(http.MethodGet, x.srv.URL+"/api/hello", nil)
		tok, err := s.Sign(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	enc := base64.RawURLEncoding.EncodeToString

	tests := []struct {
		name string
		auth string
		kind string // "" for accepted
	}{
		{"valid", "Bearer " + good(nil), ""},
		{"valid, scheme in lower case", "bearer " + good(nil), ""},
		{"valid, typ application/at+jwt", "Bearer " + jwsOf(t, issuerKey, EdDSA, hdr(EdDSA, "application/AT+JWT", kid), claims(nil)), ""},
		{"expired", "Bearer " + good(map[string]any{"exp": x.now().Add(-time.Minute).Unix()}), "stale"},
		{"issued in the future", "Bearer " + good(map[string]any{"iat": x.now().Add(time.Minute).Unix()}), "stale"},
		{"not yet valid", "Bearer " + good(map[string]any{"nbf": x.now().Add(time.Minute).Unix()}), "stale"},
		{"from another issuer", "Bearer " + jwsOf(t, keys.ed2, EdDSA, hdr(EdDSA, "at+jwt", otherKid), claims(map[string]any{"iss": other.Issuer()})), "bad_claims"},
		{"trusted iss, other issuer's key and kid", "Bearer " + jwsOf(t, keys.ed2, EdDSA, hdr(EdDSA, "at+jwt", otherKid), claims(nil)), "invalid_signature"},
		{"trusted iss and kid, other issuer's signature", "Bearer " + jwsOf(t, keys.ed2, EdDSA, hdr(EdDSA, "at+jwt", kid), claims(nil)), "invalid_signature"},
		{"for another audience", "Bearer " + good(map[string]any{"aud": "https://billing.example.com"}), "bad_claims"},
		{"unknown kid", "Bearer " + jwsOf(t, issuerKey, EdDSA, hdr(EdDSA, "at+jwt", "no-such-key"), claims(nil)), "invalid_signature"},
		{"no kid", "Bearer " + jwsOf(t, issuerKey, EdDSA, hdr(EdDSA, "at+jwt", ""), claims(nil)), "bad_header"},
		{"signed by a client's key, its thumbprint as kid", "Bearer " + jwsOf(t, keys.p256, ES256, hdr(ES256, "at+jwt", aliceKid), claims(nil)), "invalid_signature"},
		{"signed by a client's key, its fingerprint as kid", "Bearer " + jwsOf(t, keys.p256, ES256, hdr(ES256, "at+jwt", aliceFP), claims(nil)), "invalid_signature"},
		{"signed by a client's key, the issuer's kid", "Bearer " + jwsOf(t, keys.p256, ES256, hdr(ES256, "at+jwt", kid), claims(nil)), "bad_algorithm"},
		{"access token under the JWT scheme", "JWT " + good(nil), "bad_header"},
		{"request token as Bearer", "Bearer " + requestToken(), "bad_header"},
		{"typ JWT", "Bearer " + jwsOf(t, issuerKey, EdDSA, hdr(EdDSA, "JWT", kid), claims(nil)), "bad_header"},
		{"no typ", "Bearer " + jwsOf(t, issuerKey, EdDSA, hdr(EdDSA, "", kid), claims(nil)), "bad_header"},
		{"alg none", "Bearer " + enc([]byte(hdr("none", "at+jwt", kid))) + "." + enc([]byte(claims(nil))) + ".AA", "bad_algorithm"},
		{"alg HS256", "Bearer " + hs256(t, hdr("HS256", "at+jwt", kid), claims(nil), issuerKey), "bad_algorithm"},
		{"jku", "Bearer " + jwsOf(t, issuerKey, EdDSA, `{"alg":"EdDSA","typ":"at+jwt","kid":"`+kid+`","jku":"https://evil.example"}`, claims(nil)), "bad_header"},
		{"no sub", "Bearer " + good(map[string]any{"sub": nil}), "bad_claims"},
		{"no jti", "Bearer " + good(map[string]any{"jti": nil}), "bad_claims"},
		{"no exp", "Bearer " + good(map[string]any{"exp": nil}), "bad_claims"},
		{"exp a string", "Bearer " + good(map[string]any{"exp": "soon"}), "bad_claims"},
		{"sub with a control character", "Bearer " + good(map[string]any{"sub": "al\nice"}), "bad_claims"},
		{"case-variant claim", "Bearer " + jwsOf(t, issuerKey, EdDSA, hdr(EdDSA, "at+jwt", kid), strings.TrimSuffix(claims(nil), "}")+`,"Sub":"bob"}`), "malformed"},
		{"signature bit flipped", "Bearer " + flipSignatureBit(good(nil)), "invalid_signature"},
		{"too large", "Bearer " + strings.Repeat("a", DefaultMaxTokenSize+1), "too_large"},
		{"no Authorization", "", "no_token"},
		{"Basic", "Basic YTpi", "no_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, challenges, body := x.call(tt.auth)
			if tt.kind == "" {
				if status != http.StatusOK || !strings.Contains(body, `"kind":"access token"`) || !strings.Contains(body, `"user":"alice"`) {
					t.Fatalf("answered %d %s, want 200 for alice's access token", status, body)
				}
				return
			}
			if status != http.StatusUnauthorized {
				t.Fatalf("answered %d %s, want 401 %s", status, body, tt.kind)
			}
			wantChallenge := "Bearer"
			if isBearer(tt.auth) {
				wantChallenge = `Bearer error="invalid_token"`
			}
			if !slices.Contains(challenges, `JWT error="`+tt.kind+`"`) || !slices.Contains(challenges, wantChallenge) {
				t.Fatalf("WWW-Authenticate %q, want JWT error=%q and %s", challenges, tt.kind, wantChallenge)
			}
		})
	}
}

// flipSignatureBit changes one bit of a JWS's signature.
func flipSignatureBit(tok string) string {
	sig, _ := base64.RawURLEncoding.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
	sig[3] ^= 0x10
	return withSignature(tok, sig)
}

// TestBearerNeedsTrust: without WithTrustedIssuer a Verifier does not read
// Bearer at all, whatever the token; with it, it trusts only that issuer.
func TestBearerNeedsTrust(t *testing.T) {
	keys := loadTestKeys(t)
	x := newExchange(t, nil)
	x.addUser("alice", keys.p256)
	a := x.grant(jwsOf(t, keys.p256, ES256, `{"alg":"ES256"}`, mustJSON(t, rfc7523Claims(x, "alice", nil))))
	wantOK(t, a)
	at := a.str("access_token")

	plain, err := NewVerifier(x.keys, WithClock(x.now))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "http://api.example.com/", nil)
	r.Header.Set("Authorization", "Bearer "+at)
	if _, err := plain.Verify(r); !errors.Is(err, ErrNoToken) {
		t.Fatalf("a verifier without trusted issuers: %v, want ErrNoToken", err)
	}
	other, _ := NewIssuer("https://other.example.com", keys.ed2)
	v, err := NewVerifier(x.keys, WithClock(x.now), WithTrustedIssuer(other))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(r); !errors.Is(err, ErrBadClaims) {
		t.Fatalf("a verifier trusting another issuer: %v, want ErrBadClaims", err)
	}
	if _, err := x.v.Verify(r); err != nil {
		t.Fatalf("the issuer's verifier: %v", err)
	}
}

// TestBearerAudience: an access token with "aud" is accepted only by a
// verifier told to expect it.
func TestBearerAudience(t *testing.T) {
	keys := loadTestKeys(t)
	for _, tt := range []struct {
		name     string
		tokenAud string
		expect   string
		ok       bool
	}{
		{"no aud, none expected", "", "", true},
		{"no aud, one expected", "", "https://api.example.com", true},
		{"aud expected", "https://api.example.com", "https://api.example.com", true},
		{"aud not expected", "https://api.example.com", "", false},
		{"another aud expected", "https://api.example.com", "https://billing.example.com", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var epOpts []TokenEndpointOption
			var vOpts []VerifierOption
			if tt.tokenAud != "" {
				epOpts = append(epOpts, WithAccessTokenAudience(tt.tokenAud))
			}
			if tt.expect != "" {
				vOpts = append(vOpts, WithAudience(tt.expect))
			}
			x := newExchange(t, epOpts, vOpts...)
			x.addUser("alice", keys.p256)
			a := x.grant(jwsOf(t, keys.p256, ES256, `{"alg":"ES256"}`, mustJSON(t, rfc7523Claims(x, "alice", nil))))
			wantOK(t, a)
			status, _, body := x.call("Bearer " + a.str("access_token"))
			if (status == http.StatusOK) != tt.ok {
				t.Fatalf("answered %d %s; want ok=%v", status, body, tt.ok)
			}
		})
	}
}

// TestIssuerRotation: after Rotate the new key signs, the old one stays
// published while its tokens live and is dropped after; tokens signed
// with it verify until then.
func TestIssuerRotation(t *testing.T) {
	keys := loadTestKeys(t)
	x := newExchange(t, nil)
	x.addUser("alice", keys.p256)
	buy := func(jti string) string {
		a := x.grant(jwsOf(t, keys.p256, ES256, `{"alg":"ES256"}`, mustJSON(t, rfc7523Claims(x, "alice", map[string]any{"jti": jti}))))
		wantOK(t, a)
		return a.str("access_token")
	}
	oldKid := x.issuer.KeyID()
	oldToken := buy("1")
	if err := x.issuer.Rotate(keys.rsa); err != nil {
		t.Fatal(err)
	}
	newKid := x.issuer.KeyID()
	if newKid == oldKid {
		t.Fatal("Rotate kept the kid")
	}
	newToken := buy("2")
	if !strings.Contains(headerOf(t, newToken), newKid) || !strings.Contains(headerOf(t, newToken), `"RS512"`) {
		t.Fatalf("a token after rotation has header %s", headerOf(t, newToken))
	}
	published := func() []string {
		var kids []string
		for _, k := range x.issuer.KeySet().Keys() {
			kids = append(kids, k.KeyID)
		}
		return kids
	}
	if got := published(); !slices.Equal(got, []string{newKid, oldKid}) {
		t.Fatalf("published %v, want the new key and the old one", got)
	}
	for _, tok := range []string{oldToken, newToken} {
		if status, _, body := x.call("Bearer " + tok); status != http.StatusOK {
			t.Fatalf("after rotation: %d %s", status, body)
		}
	}
	// The old key's last token expires in 5 minutes; it stays published a
	// margin longer, then goes.
	x.advance(DefaultAccessTokenLifetime + RetiredKeyMargin - time.Second)
	if got := published(); len(got) != 2 {
		t.Fatalf("published %v before the old key's tokens and margin ran out", got)
	}
	x.advance(2 * time.Second)
	if got := published(); !slices.Equal(got, []string{newKid}) {
		t.Fatalf("published %v, want the new key only", got)
	}
	if status, _, _ := x.call("Bearer " + oldToken); status != http.StatusUnauthorized {
		t.Fatal("a token of a dropped key is accepted")
	}

	// Publish then rotate: a fleet's rotation.
	if err := x.issuer.Publish(keys.p384.Public()); err != nil {
		t.Fatal(err)
	}
	p384Kid, _ := Thumbprint(keys.p384.Public())
	if got := published(); !slices.Equal(got, []string{p384Kid, newKid}) {
		t.Fatalf("published %v after Publish", got)
	}
	if err := x.issuer.Rotate(keys.p384); err != nil {
		t.Fatal(err)
	}
	if got := published(); !slices.Equal(got, []string{p384Kid}) || x.issuer.KeyID() != p384Kid {
		t.Fatalf("published %v after rotating to the published key (the RSA key signed no token that lives)", got)
	}
}

func headerOf(t testing.TB, tok string) string {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(tok[:strings.IndexByte(tok, '.')])
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// TestIssuerKeys: an Issuer's keys of each kind sign access tokens that
// verify, and bad keys are refused.
func TestIssuerKeys(t *testing.T) {
	keys := loadTestKeys(t)
	for name, k := range map[string]Key{"EdDSA": keys.ed, "ES256": keys.p256, "ES384": keys.p384, "RS512": keys.rsa} {
		t.Run(name, func(t *testing.T) {
			is, err := NewIssuer("https://issuer.example.com", k)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now() // golang-jwt checks exp on the real clock
			exp := now.Add(time.Minute)
			tok, err := is.sign(context.Background(), accessTokenClaims(is.Issuer(), "alice", "", "", now, exp), exp)
			if err != nil {
				t.Fatal(err)
			}
			// An independent check: golang-jwt.
			claims := verifyWithGolangJWT(t, tok, k.Public(), Algorithm(name))
			if claims["sub"] != "alice" || claims["iss"] != "https://issuer.example.com" {
				t.Fatalf("claims %v", claims)
			}
			v, _ := NewVerifier(NewMemoryKeyStore(), WithTrustedIssuer(is))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			id, err := v.Verify(r)
			if err != nil || id.Kind != AccessToken || id.Username != "alice" || id.Algorithm != Algorithm(name) {
				t.Fatalf("Verify: %+v, %v", id, err)
			}
		})
	}
	for _, tt := range []struct {
		name   string
		issuer string
		key    Key
	}{
		{"empty issuer", "", keys.ed},
		{"issuer with a newline", "a\nb", keys.ed},
		{"nil key", "https://i.example.com", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewIssuer(tt.issuer, tt.key); err == nil {
				t.Fatal("NewIssuer accepted it")
			}
		})
	}
}

// TestTrustedIssuerOption: invalid uses of WithTrustedIssuer are option
// errors.
func TestTrustedIssuerOption(t *testing.T) {
	keys := loadTestKeys(t)
	is, _ := NewIssuer("https://i.example.com", keys.ed)
	for name, opts := range map[string][]VerifierOption{
		"nil":   {WithTrustedIssuer(nil)},
		"twice": {WithTrustedIssuer(is), WithTrustedIssuer(is)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewVerifier(NewMemoryKeyStore(), opts...)
			if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "WithTrustedIssuer") {
				t.Fatalf("NewVerifier: %v", err)
			}
		})
	}
}

// FuzzBearer feeds the Bearer path of a Verifier that trusts an issuer:
// nothing may panic, and nothing but a token the issuer signed may pass.
func FuzzBearer(f *testing.F) {
	keys := loadTestKeys(f)
	is, err := NewIssuer("https://issuer.example.com", keys.ed)
	if err != nil {
		f.Fatal(err)
	}
	exp := testNow.Add(time.Minute)
	tok, err := is.sign(context.Background(), accessTokenClaims(is.Issuer(), "alice", "aud", "a b", testNow, exp), exp)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add("e30.e30.AA")
	f.Add(strings.Repeat(".", 100))
	v, err := NewVerifier(NewMemoryKeyStore(), WithClock(func() time.Time { return testNow }), WithTrustedIssuer(is), WithAudience("aud"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := v.verifyAccessToken(context.Background(), raw)
		// The seed's jti is random, so a worker process's seed differs from
		// its own tok: only the issuer's signature can make alice.
		if err == nil && (id.Username != "alice" || id.Issuer != is.Issuer()) {
			t.Fatalf("accepted %q as %+v", raw, id)
		}
	})
}
