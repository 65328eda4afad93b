package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/asymjwt/asymjwt"
	"golang.org/x/oauth2"
)

// exchange shows the token endpoint at work: alice's assertion buys an
// access token, which calls the server as Bearer until it expires; her
// refresh token is rotated, and presenting a used one revokes the chain.
// bob's ssh-agent key does the same through asymjwt.NewTokenSource and
// oauth2.Transport.
func (r *demoRunner) exchange(alice, bob *asymjwt.Signer) error {
	tokenURL := r.baseURL + "/oauth/token"

	// 8. An assertion buys an access token and a refresh token.
	assertion, err := alice.SignAssertion(r.ctx, tokenURL)
	if err != nil {
		return err
	}
	first, err := r.tokenStep("alice posts an assertion she signed (iss/sub alice, aud the token URL, 1 minute, jti)",
		url.Values{"grant_type": {asymjwt.GrantTypeJWTBearer}, "assertion": {assertion}}, "")
	if err != nil {
		return err
	}

	// 9, 10. The access token calls the server, as often as needed.
	bearer := "Bearer " + first.AccessToken
	if err := r.bearerStep("alice GET /hello with Authorization: Bearer <access token>", bearer, http.StatusOK, ""); err != nil {
		return err
	}
	if err := r.bearerStep("the same access token again (reusable until it expires: no signature per request)", bearer, http.StatusOK, ""); err != nil {
		return err
	}
	// 11. It is an access token, not a request token.
	if err := r.bearerStep("the access token sent as Authorization: JWT", "JWT "+first.AccessToken, http.StatusUnauthorized, "bad_header"); err != nil {
		return err
	}

	// 12-14. Refresh tokens are used once; reuse revokes the chain.
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}
	second, err := r.tokenStep("alice's refresh token buys a new access token and a new refresh token", refresh, "")
	if err != nil {
		return err
	}
	if _, err := r.tokenStep("her first refresh token again (a reuse: someone copied it)", refresh, "invalid_grant"); err != nil {
		return err
	}
	if _, err := r.tokenStep("her newest refresh token, after the reuse",
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {second.RefreshToken}}, "invalid_grant"); err != nil {
		return err
	}

	// 15. The client side, as a program writes it.
	ctx := context.WithValue(r.ctx, oauth2.HTTPClient, &http.Client{Transport: r.base, Timeout: 30 * time.Second})
	src, err := asymjwt.NewTokenSource(ctx, bob, tokenURL)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &oauth2.Transport{Source: src, Base: r.base}, Timeout: 30 * time.Second}
	return r.step("bob GET /hello through asymjwt.NewTokenSource and oauth2.Transport (his agent signs once)", client, http.MethodGet, "/hello", http.StatusOK, "")
}

// tokenAnswer is what the demo reads of a token endpoint's answer.
type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

// tokenStep posts form to the token endpoint and expects a token, or the
// error wantError.
func (r *demoRunner) tokenStep(what string, form url.Values, wantError string) (*tokenAnswer, error) {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodPost, r.baseURL+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var a tokenAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&a); err != nil {
		return nil, fmt.Errorf("token endpoint: %s, %w", resp.Status, err)
	}
	r.n++
	fmt.Fprintf(r.out, "  %d. %s\n", r.n, what)
	if a.Error != "" {
		fmt.Fprintf(r.out, "     -> %s %s: %s\n", resp.Status, a.Error, a.Description)
	} else {
		fmt.Fprintf(r.out, "     -> %s an access token for %d s and a refresh token (neither shown: both are secrets)\n", resp.Status, a.ExpiresIn)
	}
	if a.Error != wantError || (wantError == "" && (a.AccessToken == "" || a.RefreshToken == "")) {
		want := "a token"
		if wantError != "" {
			want = wantError
		}
		return nil, fmt.Errorf("request %d (%s): got %s %s, want %s", r.n, what, resp.Status, a.Error, want)
	}
	return &a, nil
}

// bearerStep sends GET /hello with the Authorization header auth.
func (r *demoRunner) bearerStep(what, auth string, wantStatus int, wantKind string) error {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, r.baseURL+"/hello", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", auth)
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return err
	}
	return r.report(what, resp, wantStatus, wantKind)
}
