package asymjwt

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAssertionCertificate: an assertion signed by a key whose OpenSSH
// certificate a trusted CA signed buys an access token, in either form;
// the grant has no refresh token (a refresh could not check the
// certificate again), and the access token ends with the certificate.
// A certificate for another principal is refused.
func TestAssertionCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := newKeygenCA(t, dir, "ca", keygenKinds[0])
	path := keygen(t, dir, "alice", keygenKinds[0])
	x := newExchange(t, nil)
	if err := x.keys.SetCertAuthorities("alice", []CertAuthority{ca.authority()}); err != nil {
		t.Fatal(err)
	}
	// The exchange runs on the real clock (its peers sign with time.Now).
	around := func(from, to time.Duration) string {
		return "-V" + utcStamp(x.now().Add(from)) + ":" + utcStamp(x.now().Add(to))
	}
	certified := loadCertified(t, path, ca.certify(t, path, "-I", "alice@laptop", "-n", "alice", around(-time.Hour, 2*time.Minute)))
	s, err := NewSigner("alice", certified, WithClock(x.now))
	if err != nil {
		t.Fatal(err)
	}
	assertion, err := s.SignAssertion(t.Context(), x.tokenURL)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, x.tokenURL, nil)
	own, err := s.Sign(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]string{"RFC 7523 assertion": assertion, "request token": own} {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(headerOf(t, a), `"sshcert"`) {
				t.Fatalf("header %s carries no certificate", headerOf(t, a))
			}
			ans := x.grant(a)
			wantOK(t, ans)
			if ans.str("refresh_token") != "" {
				t.Error("a grant through a certificate has a refresh token")
			}
			if in := ans.body["expires_in"].(float64); in > 120 || in < 100 {
				t.Errorf("expires_in %v, want the certificate's remaining two minutes", in)
			}
			if status, _, body := x.call("Bearer " + ans.str("access_token")); status != http.StatusOK {
				t.Fatalf("API: %d %s", status, body)
			}
		})
	}

	other := keygen(t, dir, "bob", keygenKinds[0])
	forBob := loadCertified(t, other, ca.certify(t, other, "-I", "bob", "-n", "bob", around(-time.Hour, time.Hour)))
	sb, _ := NewSigner("alice", forBob, WithClock(x.now))
	a, _ := sb.SignAssertion(t.Context(), x.tokenURL)
	wantError(t, x.grant(a), http.StatusBadRequest, "invalid_grant")
}

// TestRefreshKeyRestrictions: a refresh checks the key that began the chain
// as a request would be checked: an expiry-time that has passed, a from=
// the client does not match, or a revocation ends the chain.
func TestRefreshKeyRestrictions(t *testing.T) {
	keys := loadTestKeys(t)
	fp, _ := Fingerprint(keys.ed.Public())
	begin := func(t *testing.T, x *exchange, jti string) string {
		a := x.grant(jwsOf(t, keys.ed, EdDSA, `{"alg":"EdDSA"}`, mustJSON(t, rfc7523Claims(x, "bob", map[string]any{"jti": jti}))))
		wantOK(t, a)
		return a.str("refresh_token")
	}
	store := func(t *testing.T, x *exchange, r KeyRestrictions) {
		x.keys.Remove("bob")
		if err := x.keys.AddPublicKeys("bob", PublicKey{Key: keys.ed.Public(), Fingerprint: fp, Restrictions: r}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("expiry-time passed", func(t *testing.T) {
		x := newExchange(t, nil)
		store(t, x, KeyRestrictions{ExpiresAt: x.now().Add(time.Hour)})
		rt := begin(t, x, "1")
		x.advance(2 * time.Hour)
		wantError(t, x.refreshWith(rt), http.StatusBadRequest, "invalid_grant")
		if !strings.Contains(x.log.String(), "expiry-time") {
			t.Errorf("the log does not say why: %s", x.log.String())
		}
	})

	t.Run("from= no longer matching", func(t *testing.T) {
		x := newExchange(t, nil)
		store(t, x, KeyRestrictions{From: []string{"127.0.0.1"}})
		rt := begin(t, x, "2")
		store(t, x, KeyRestrictions{From: []string{"10.0.0.0/8"}})
		wantError(t, x.refreshWith(rt), http.StatusBadRequest, "invalid_grant")
		// An assertion from an address from= refuses is refused too.
		a := x.grant(jwsOf(t, keys.ed, EdDSA, `{"alg":"EdDSA"}`, mustJSON(t, rfc7523Claims(x, "bob", map[string]any{"jti": "3"}))))
		wantError(t, a, http.StatusBadRequest, "invalid_grant")
	})

	t.Run("key revoked", func(t *testing.T) {
		list := filepath.Join(t.TempDir(), "revoked")
		if err := os.WriteFile(list, []byte("# nothing yet\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		x := newExchange(t, nil, WithRevocationFile(list))
		x.addUser("bob", keys.ed)
		rt := begin(t, x, "4")
		if err := os.WriteFile(list, []byte("# bob's laptop was stolen\n"+fp+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		wantError(t, x.refreshWith(rt), http.StatusBadRequest, "invalid_grant")
	})
}
