package asymjwt

import (
	"crypto"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// verifyWithGolangJWT checks tok independently of this package: golang-jwt,
// restricted to alg, against pub. It returns the claims.
func verifyWithGolangJWT(t testing.TB, tok string, pub crypto.PublicKey, alg Algorithm) jwt.MapClaims {
	t.Helper()
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{string(alg)}))
	if err != nil {
		t.Fatalf("golang-jwt rejects the token: %v", err)
	}
	return claims
}
