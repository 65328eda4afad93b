package asymjwt

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/url"
	"strconv"
	"time"

	"github.com/asymjwt/asymjwt/internal/jsonscan"
	"github.com/asymjwt/asymjwt/internal/jws"
)

// AssertionLifetime is how long the assertions a [Signer] makes
// ([Signer.SignAssertion]) are valid: each is used for one exchange, right
// away.
const AssertionLifetime = time.Minute

// SignAssertion returns a JWT for use as an authorization grant (RFC 7523
// §2.1, the assertion of [GrantTypeJWTBearer]) or as client authentication
// (§2.2, private_key_jwt; see [Signer.ClientAssertion]) at audience, the
// token endpoint's URL or its issuer identifier, as the server asks. Its
// claims are those of RFC 7523 §3: "iss" and "sub" the Signer's username,
// "aud", "iat" now, "exp" [AssertionLifetime] later and a random "jti" of
// 128 bits; its header carries "alg", "typ": "JWT" and "kid", the key's
// SHA-256 fingerprint (see [Fingerprint]), by which a server picks the key.
// Each call makes a new assertion.
func (s *Signer) SignAssertion(ctx context.Context, audience string) (string, error) {
	return s.signAssertion(ctx, audience, "")
}

// signAssertion is SignAssertion with the header's kid replaced by kid
// when not empty.
func (s *Signer) signAssertion(ctx context.Context, audience, kid string) (string, error) {
	if audience == "" {
		return "", errorf("SignAssertion: empty audience")
	}
	if err := ctx.Err(); err != nil {
		return "", s.signError(err)
	}
	var jti [16]byte
	rand.Read(jti[:])
	now := s.now()
	c := make([]byte, 0, 256)
	c = append(c, `{"iss":`...)
	c = jsonscan.AppendString(c, s.username)
	c = append(c, `,"sub":`...)
	c = jsonscan.AppendString(c, s.username)
	c = append(c, `,"aud":`...)
	c = jsonscan.AppendString(c, audience)
	c = append(c, `,"iat":`...)
	c = strconv.AppendInt(c, now.Unix(), 10)
	c = append(c, `,"exp":`...)
	c = strconv.AppendInt(c, now.Add(AssertionLifetime).Unix(), 10)
	c = append(c, `,"jti":"`...)
	c = jws.AppendSegment(c, jti[:])
	c = append(c, `"}`...)
	k := s.key.Load()
	prefix := k.prefix
	if kid != "" {
		header, err := json.Marshal(struct {
			Alg Algorithm `json:"alg"`
			Typ string    `json:"typ"`
			Kid string    `json:"kid"`
		}{k.spec.alg, "JWT", kid})
		if err != nil {
			return "", s.signError(err)
		}
		prefix = string(jws.AppendSegment(nil, header)) + "."
	}
	tok, err := k.signCompact(ctx, prefix, c)
	if err != nil {
		return "", s.signError(err)
	}
	return tok, nil
}

// ClientAssertion returns the form parameters of private_key_jwt client
// authentication (RFC 7523 §2.2, OpenID Connect Core §9):
// client_assertion_type [ClientAssertionTypeJWTBearer] and client_assertion,
// a new assertion from [Signer.SignAssertion] for audience, which names the
// Signer's username as the client_id. Add them to a token request of any
// grant, such as client_credentials at a third-party OAuth server (see
// [NewClientCredentialsTokenSource]); any key this package loads can sign
// it, a key held by ssh-agent included.
func (s *Signer) ClientAssertion(ctx context.Context, audience string) (url.Values, error) {
	return s.clientAssertion(ctx, audience, "")
}

func (s *Signer) clientAssertion(ctx context.Context, audience, kid string) (url.Values, error) {
	a, err := s.signAssertion(ctx, audience, kid)
	if err != nil {
		return nil, err
	}
	return url.Values{
		"client_assertion_type": {ClientAssertionTypeJWTBearer},
		"client_assertion":      {a},
	}, nil
}
