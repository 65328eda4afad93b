package asymjwt

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// exchangeConfig is what the ExchangeOptions set.
type exchangeConfig struct {
	scopes   []string
	audience string
	kid      string // "" for the key's fingerprint
}

// WithScopes asks for scopes in every exchange ("scope" parameter, RFC
// 6749 §3.3). Without it no scope is asked for. Each scope must be a
// non-empty token of printable ASCII without space, '"' or '\'.
func WithScopes(scopes ...string) ExchangeOption {
	return exchangeOptionFunc(func(c *exchangeConfig) error {
		if len(scopes) == 0 {
			return optionError("WithScopes", "no scopes")
		}
		for _, s := range scopes {
			if s == "" || strings.Contains(s, " ") || !validScope(s) {
				return optionError("WithScopes", fmt.Sprintf("%q is not a scope token", truncate(s)))
			}
		}
		c.scopes = append([]string(nil), scopes...)
		return nil
	})
}

// WithAssertionAudience sets the "aud" of the assertions; the default is
// the token URL (as golang.org/x/oauth2/jwt does). Some servers want their
// issuer identifier instead (an OpenID provider's "issuer", such as
// "https://id.example.com"). aud must not be empty.
func WithAssertionAudience(aud string) ExchangeOption {
	return exchangeOptionFunc(func(c *exchangeConfig) error {
		if aud == "" {
			return optionError("WithAssertionAudience", "empty audience")
		}
		c.audience = aud
		return nil
	})
}

// WithAssertionKeyID sets the "kid" of the assertions' header, for a
// server that registered the client's public key under a key ID of its own
// choosing (an OpenID provider's service account key, for example). The
// default is the key's SHA-256 fingerprint ([Fingerprint]), which a
// [TokenEndpoint] uses. kid must not be empty.
func WithAssertionKeyID(kid string) ExchangeOption {
	return exchangeOptionFunc(func(c *exchangeConfig) error {
		if kid == "" {
			return optionError("WithAssertionKeyID", "empty key ID")
		}
		c.kid = kid
		return nil
	})
}

func newExchangeConfig(op, tokenURL string, s *Signer, opts []ExchangeOption) (exchangeConfig, error) {
	c := exchangeConfig{audience: tokenURL}
	if s == nil {
		return c, errorf("%s: nil Signer", op)
	}
	if u, err := url.Parse(tokenURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return c, errorf("%s: %w: token URL %q is not an absolute http(s) URL", op, ErrInvalidOption, truncate(tokenURL))
	}
	for _, opt := range opts {
		if err := opt.applyExchange(&c); err != nil {
			return c, err
		}
	}
	return c, nil
}

// NewTokenSource returns an oauth2.TokenSource that buys access tokens
// from the token endpoint at tokenURL with the JWT bearer grant (RFC 7523
// §2.1): each exchange sends a new assertion signed by s
// ([Signer.SignAssertion]). The token is reused until shortly before it
// expires (oauth2.ReuseTokenSource); then, when the endpoint gave a
// refresh token, it is refreshed with it (and the rotated refresh token
// kept), else, or when the refresh is refused with invalid_grant, a new
// assertion buys a new one. The refresh token stays inside the source:
// the tokens it returns carry none. Refusals are *oauth2.RetrieveError
// values, as with any oauth2 token source.
//
// The HTTP client comes from ctx, as for every golang.org/x/oauth2 source
// (the oauth2.HTTPClient context value; http.DefaultClient without one),
// and ctx is used for every exchange, so it should live as long as the
// source. Use the source with oauth2.NewClient(ctx, src) or
// &oauth2.Transport{Source: src}. It is safe for concurrent use. It works
// with a [TokenEndpoint] and with any OAuth server that takes RFC 7523
// assertions whose "iss" and "sub" are the client (an OpenID provider's
// JWT profile grant: see [WithAssertionAudience]).
func NewTokenSource(ctx context.Context, s *Signer, tokenURL string, opts ...ExchangeOption) (oauth2.TokenSource, error) {
	c, err := newExchangeConfig("NewTokenSource", tokenURL, s, opts)
	if err != nil {
		return nil, err
	}
	return oauth2.ReuseTokenSource(nil, &bearerGrantSource{ctx: ctx, signer: s, tokenURL: tokenURL, cfg: c}), nil
}

// bearerGrantSource makes one exchange per call; ReuseTokenSource calls it
// only when its token is about to expire.
type bearerGrantSource struct {
	ctx      context.Context
	signer   *Signer
	tokenURL string
	cfg      exchangeConfig

	mu      sync.Mutex
	refresh string // the current refresh token, if any
}

func (b *bearerGrantSource) Token() (*oauth2.Token, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.refresh != "" {
		conf := &oauth2.Config{
			ClientID: b.signer.Username(),
			Endpoint: oauth2.Endpoint{TokenURL: b.tokenURL, AuthStyle: oauth2.AuthStyleInParams},
		}
		tok, err := conf.TokenSource(b.ctx, &oauth2.Token{RefreshToken: b.refresh}).Token()
		if err == nil {
			b.refresh = tok.RefreshToken
			return withoutRefreshToken(tok), nil
		}
		b.refresh = ""
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			return nil, err
		}
		// The chain ended (expired, revoked): begin anew with the key.
	}
	assertion, err := b.signer.signAssertion(b.ctx, b.cfg.audience, b.cfg.kid)
	if err != nil {
		return nil, err
	}
	tok, err := postTokenRequest(b.ctx, b.tokenURL, b.cfg.scopes, url.Values{
		"grant_type": {GrantTypeJWTBearer},
		"assertion":  {assertion},
	})
	if err != nil {
		return nil, err
	}
	b.refresh = tok.RefreshToken
	return withoutRefreshToken(tok), nil
}

// NewClientCredentialsTokenSource returns an oauth2.TokenSource for the
// client credentials grant (RFC 6749 §4.4) at a third-party OAuth server,
// with private_key_jwt client authentication (RFC 7523 §2.2): every
// exchange sends a new client assertion signed by s
// ([Signer.ClientAssertion]), whose "iss" and "sub" are the Signer's
// username as the client_id registered with the server, and whose "aud" is
// tokenURL unless [WithAssertionAudience] says otherwise. Tokens are
// reused until shortly before they expire; no client secret exists
// anywhere. The HTTP client and ctx are used as for [NewTokenSource]; the
// source is safe for concurrent use.
func NewClientCredentialsTokenSource(ctx context.Context, s *Signer, tokenURL string, opts ...ExchangeOption) (oauth2.TokenSource, error) {
	c, err := newExchangeConfig("NewClientCredentialsTokenSource", tokenURL, s, opts)
	if err != nil {
		return nil, err
	}
	return oauth2.ReuseTokenSource(nil, clientCredentialsSource{ctx: ctx, signer: s, tokenURL: tokenURL, cfg: c}), nil
}

type clientCredentialsSource struct {
	ctx      context.Context
	signer   *Signer
	tokenURL string
	cfg      exchangeConfig
}

func (c clientCredentialsSource) Token() (*oauth2.Token, error) {
	params, err := c.signer.clientAssertion(c.ctx, c.cfg.audience, c.cfg.kid)
	if err != nil {
		return nil, err
	}
	tok, err := postTokenRequest(c.ctx, c.tokenURL, c.cfg.scopes, params)
	if err != nil {
		return nil, err
	}
	return withoutRefreshToken(tok), nil
}

// postTokenRequest posts one token request through golang.org/x/oauth2's own
// request and answer handling: its client_credentials Config sends params
// (grant_type among them, which it lets a caller set) and no client
// secret, and reads the answer as every oauth2 source does
// (*oauth2.RetrieveError for a refusal).
func postTokenRequest(ctx context.Context, tokenURL string, scopes []string, params url.Values) (*oauth2.Token, error) {
	conf := &clientcredentials.Config{
		TokenURL:       tokenURL,
		Scopes:         scopes,
		EndpointParams: params,
		AuthStyle:      oauth2.AuthStyleInParams,
	}
	return conf.Token(ctx)
}

// withoutRefreshToken copies tok without its refresh token (the source
// keeps it), keeping the granted scope as an extra.
func withoutRefreshToken(tok *oauth2.Token) *oauth2.Token {
	out := &oauth2.Token{
		AccessToken: tok.AccessToken,
		TokenType:   tok.TokenType,
		Expiry:      tok.Expiry,
		ExpiresIn:   tok.ExpiresIn,
	}
	if scope, ok := tok.Extra("scope").(string); ok {
		out = out.WithExtra(map[string]any{"scope": scope})
	}
	return out
}
