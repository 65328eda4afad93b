package asymjwt

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// BenchmarkBearerVsRequest compares, in one run, what the server spends on
// one request authenticated by a per-request token ("JWT", signed by the
// client's key, nonce recorded in memory) and by an access token
// ("Bearer", signed by the issuer's key, EdDSA or RS512, reused, nothing
// recorded). Each is the whole Verifier.Verify: header, parse, key lookup,
// signature, time and the rest.
func BenchmarkBearerVsRequest(b *testing.B) {
	keys := loadTestKeys(b)
	now := func() time.Time { return testNow }
	issuers := map[string]*Issuer{}
	for name, k := range map[string]Key{"EdDSA": keys.ed2, "RS512": keys.rsa2} {
		is, err := NewIssuer("https://auth.example.com/"+name, k, WithClock(now))
		if err != nil {
			b.Fatal(err)
		}
		issuers[name] = is
	}
	req := httptest.NewRequest("GET", "http://api.example.com/v1/items", nil)
	for _, name := range []string{"EdDSA", "ES256", "RS512"} {
		key := benchKeys(b)[name]
		store := NewMemoryKeyStore()
		if err := store.Add("svc", key.Public()); err != nil {
			b.Fatal(err)
		}
		s, err := NewSigner("svc", key, WithClock(now))
		if err != nil {
			b.Fatal(err)
		}
		pool := newTokenPool(b, s, req)
		v, err := NewVerifier(store, WithNonceStore(pool), WithClock(now),
			WithTrustedIssuer(issuers["EdDSA"]), WithTrustedIssuer(issuers["RS512"]))
		if err != nil {
			b.Fatal(err)
		}
		b.Run("Request/"+name, func(b *testing.B) {
			pool.reset() // each run of the closure starts afresh
			loopCPU(b, func() {
				pool.load()
				if _, err := v.Verify(req); err != nil {
					b.Fatal(err)
				}
			})
		})
		issuer := issuers[name]
		if issuer == nil {
			continue
		}
		exp := testNow.Add(DefaultAccessTokenLifetime)
		at, err := issuer.sign(context.Background(), accessTokenClaims(issuer.Issuer(), "svc", "", "read", testNow, exp), exp)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("Bearer/"+name, func(b *testing.B) {
			req.Header.Set("Authorization", "Bearer "+at)
			loopCPU(b, func() {
				if _, err := v.Verify(req); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkTokenEndpoint measures exchanges per CPU-second at the token
// endpoint, in process (no network, no TLS): an RFC 7523 assertion (EdDSA, or
// RS256 as golang.org/x/oauth2/jwt signs) verified, recorded, an EdDSA
// access token signed and a refresh token chain begun; and a refresh
// (rotation and a new access token).
func BenchmarkTokenEndpoint(b *testing.B) {
	keys := loadTestKeys(b)
	now := func() time.Time { return testNow }
	issuer, err := NewIssuer("https://auth.example.com", keys.ed2, WithClock(now))
	if err != nil {
		b.Fatal(err)
	}
	const tokenURL = "https://auth.example.com/oauth/token"
	newEndpoint := func(b *testing.B, nonces NonceStore, user Key) *TokenEndpoint {
		store := NewMemoryKeyStore()
		if err := store.Add("svc", user.Public()); err != nil {
			b.Fatal(err)
		}
		v, err := NewVerifier(store, WithNonceStore(nonces), WithClock(now))
		if err != nil {
			b.Fatal(err)
		}
		ep, err := NewTokenEndpoint(v, issuer, tokenURL)
		if err != nil {
			b.Fatal(err)
		}
		return ep
	}
	post := func(ep *TokenEndpoint, form string) string {
		r := httptest.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		ep.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
		return w.Body.String()
	}
	for _, tt := range []struct {
		name string
		key  Key
		alg  Algorithm
	}{{"Assertion/EdDSA", keys.ed, EdDSA}, {"Assertion/RS256", keys.rsa, RS256}} {
		b.Run(tt.name, func(b *testing.B) {
			nonces := newSwapNonces()
			ep := newEndpoint(b, nonces, tt.key)
			pool := make([]string, 256)
			for i := range pool {
				c := fmt.Sprintf(`{"iss":"svc","aud":%q,"iat":%d,"exp":%d,"jti":"%d"}`, tokenURL, testNow.Unix(), testNow.Add(time.Hour).Unix(), i)
				pool[i] = url.Values{"grant_type": {GrantTypeJWTBearer},
					"assertion": {jwsOf(b, tt.key, tt.alg, `{"alg":"`+string(tt.alg)+`","typ":"JWT"}`, c)}}.Encode()
			}
			i := 0
			start := processCPUTime()
			loopCPU(b, func() {
				if i%len(pool) == 0 && i > 0 {
					nonces.renew()
				}
				post(ep, pool[i%len(pool)])
				i++
			})
			reportExchanges(b, start)
		})
	}
	b.Run("Refresh", func(b *testing.B) {
		ep := newEndpoint(b, mustNonceStore(), keys.ed)
		c := fmt.Sprintf(`{"iss":"svc","aud":%q,"iat":%d,"exp":%d}`, tokenURL, testNow.Unix(), testNow.Add(time.Hour).Unix())
		answer := post(ep, url.Values{"grant_type": {GrantTypeJWTBearer}, "assertion": {jwsOf(b, keys.ed, EdDSA, `{"alg":"EdDSA"}`, c)}}.Encode())
		rt := refreshTokenOf(b, answer)
		start := processCPUTime()
		loopCPU(b, func() {
			rt = refreshTokenOf(b, post(ep, "grant_type=refresh_token&refresh_token="+rt))
		})
		reportExchanges(b, start)
	})
}

// reportExchanges reports exchanges per CPU-second since start: what one
// core serves, whatever else the machine runs.
func reportExchanges(b *testing.B, start time.Duration) {
	if cpu := processCPUTime() - start; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "exchanges/cpu-s")
	}
}

// refreshTokenOf finds the refresh token in a token answer.
func refreshTokenOf(b *testing.B, answer string) string {
	_, rest, ok := strings.Cut(answer, `"refresh_token":"`)
	rt, _, ok2 := strings.Cut(rest, `"`)
	if !ok || !ok2 {
		b.Fatalf("no refresh token in %s", answer)
	}
	return rt
}
