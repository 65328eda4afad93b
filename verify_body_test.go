package asymjwt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// bodyOutcome is what became of one request at a verifying server.
type bodyOutcome struct {
	status  int
	kind    string // WWW-Authenticate error kind of a refusal before the handler
	body    string // what the handler read
	readErr error  // the handler's read error
	hooked  []error
}

// serveBody sends r through v's Middleware to a handler that reads the
// whole body.
func serveBody(v *Verifier, hooked *[]error, r *http.Request) bodyOutcome {
	var out bodyOutcome
	*hooked = nil
	rec := httptest.NewRecorder()
	v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		out.body, out.readErr = string(b), err
	})).ServeHTTP(rec, r)
	out.status = rec.Code
	if rec.Code != 200 {
		out.kind = rec.Header().Get("WWW-Authenticate")
	}
	out.hooked = append(out.hooked, *hooked...)
	return out
}

func TestVerifyBodyBinding(t *testing.T) {
	k := loadTestKeys(t)
	const target = "http://api.example.com/v1/pay?to=bob"
	body := rfc9530Body
	other := `{"hello": "WORLD"}`
	otherDigest, _ := ContentDigest(strings.NewReader(other))
	sha512Of := func(s string) string {
		h := digestAlgs[1].hash.New()
		h.Write([]byte(s))
		return string(appendDigestMember(nil, 1, h.Sum(nil)))
	}
	// noBody: a token that binds no body (hcd ""), as the Transport
	// signs a request without one.
	const noBody = "none"
	// tokens, by what they bind
	signed := func(h *harness, digest string) string {
		if digest == noBody {
			s, err := NewSigner("alice", k.ed, WithClock(func() time.Time { return h.now }))
			if err != nil {
				t.Fatal(err)
			}
			var d bodyDigest
			d.hashBody(httptest.NewRequest("POST", target, nil))
			auth, err := s.authorization(context.Background(), httptest.NewRequest("POST", target, nil), 0, d.member())
			if err != nil {
				t.Fatal(err)
			}
			return auth
		}
		req := httptest.NewRequest("POST", target, nil)
		if digest != "" {
			req.Header.Set("Content-Digest", digest)
		}
		return "JWT " + h.token("alice", k.ed, h.now, req)
	}
	tests := []struct {
		name     string
		opts     []VerifierOption
		tokenFor string // the Content-Digest the token binds ("" none)
		header   []string
		body     *string // nil: no body
		want     string  // "ok", "refused" (before the handler), "read error"
	}{
		{"matching", nil, rfc9530SHA256, []string{rfc9530SHA256}, &body, "ok"},
		{"matching, sha-512 too", nil, rfc9530SHA256, []string{rfc9530SHA256 + ", " + rfc9530SHA512}, &body, "ok"},
		{"matching, unknown algorithms too", nil, rfc9530SHA256, []string{"md5=:XrY7u+Ae7tCTyyK7j1rNww==:, " + rfc9530SHA256}, &body, "ok"},
		{"sha-512 alone bound and sent", nil, rfc9530SHA512, []string{rfc9530SHA512}, &body, "ok"},
		{"body changed", nil, rfc9530SHA256, []string{rfc9530SHA256}, &other, "read error"},
		{"body changed, header too", nil, rfc9530SHA256, []string{otherDigest}, &other, "refused"},
		{"header missing", nil, rfc9530SHA256, nil, &body, "refused"},
		{"header only unknown algorithms", nil, rfc9530SHA256, []string{"md5=:XrY7u+Ae7tCTyyK7j1rNww==:"}, &body, "refused"},
		{"header malformed", nil, rfc9530SHA256, []string{rfc9530SHA256 + ",,"}, &body, "refused"},
		{"header sha-256 twice", nil, rfc9530SHA256, []string{rfc9530SHA256, rfc9530SHA256}, &body, "refused"},
		{"header sha-512 only, sha-256 bound", nil, rfc9530SHA256, []string{rfc9530SHA512}, &body, "refused"},
		{"sha-512 wrong beside a good sha-256", nil, rfc9530SHA256, []string{rfc9530SHA256 + ", " + sha512Of(other)}, &body, "read error"},
		{"body removed", nil, rfc9530SHA256, []string{rfc9530SHA256}, nil, "refused"},
		{"body and header removed", nil, rfc9530SHA256, nil, nil, "refused"},
		{"no body bound, none sent", nil, noBody, nil, nil, "ok"},
		{"no body bound, empty header sent", nil, noBody, []string{emptySHA256}, nil, "ok"},
		{"no body bound, other header sent", nil, noBody, []string{rfc9530SHA256}, nil, "refused"},
		{"no body bound, malformed header sent", nil, noBody, []string{"sha-256"}, nil, "refused"},
		{"no body bound, one added", nil, noBody, []string{rfc9530SHA256}, &body, "refused"},
		{"no body bound, one added without header", nil, noBody, nil, &body, "refused"},
		{"empty body bound by its digest, none sent", nil, emptySHA256, nil, nil, "ok"},
		{"empty body bound by its digest, one added", nil, emptySHA256, []string{rfc9530SHA256}, &body, "refused"},
		{"body not bound: accepted by default", nil, "", nil, &body, "ok"},
		{"body not bound: WithRequireBodyBinding", []VerifierOption{WithRequireBodyBinding()}, "", nil, &body, "refused"},
		{"no body, not bound: WithRequireBodyBinding", []VerifierOption{WithRequireBodyBinding()}, "", nil, nil, "ok"},
		{"bound: WithRequireBodyBinding", []VerifierOption{WithRequireBodyBinding()}, rfc9530SHA256, []string{rfc9530SHA256}, &body, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hooked []error
			h := newHarness(t, append([]VerifierOption{WithErrorHook(func(_ *http.Request, err error) { hooked = append(hooked, err) })}, tt.opts...)...)
			h.add("alice", k.ed)
			var r *http.Request
			if tt.body != nil {
				r = httptest.NewRequest("POST", target, strings.NewReader(*tt.body))
			} else {
				r = httptest.NewRequest("POST", target, nil)
			}
			r.Header["Content-Digest"] = tt.header
			r.Header.Set("Authorization", signed(h, tt.tokenFor))
			out := serveBody(h.v, &hooked, r)
			switch tt.want {
			case "ok":
				want := ""
				if tt.body != nil {
					want = *tt.body
				}
				if out.status != 200 || out.readErr != nil || out.body != want || len(out.hooked) != 0 {
					t.Fatalf("got %+v, want the body read whole", out)
				}
			case "refused":
				if out.status != 401 || out.kind != `JWT error="binding"` || len(out.hooked) != 1 || !errors.Is(out.hooked[0], ErrBinding) {
					t.Fatalf("got %+v, want a binding refusal before the handler", out)
				}
			case "read error":
				if out.status != 200 || !errors.Is(out.readErr, ErrBinding) || out.body == *tt.body ||
					len(out.hooked) != 1 || !errors.Is(out.hooked[0], ErrBinding) {
					t.Fatalf("got %+v, want ErrBinding from the body's Read, reported once", out)
				}
			}
		})
	}
}

func TestRequireBindingNeedsHTQ(t *testing.T) {
	k := loadTestKeys(t)
	h := newHarness(t, WithRequireBinding())
	h.add("alice", k.ed)
	edHdr := `{"alg":"EdDSA"}`
	claims := fmt.Sprintf(`{"username":"alice","time":%d,"nonce":"n1","htm":"GET","htu":"http://x/"}`, h.now.Unix())
	if _, err := h.verify("GET", "http://x/", "JWT "+craft(t, k.ed, EdDSA, edHdr, claims)); !errors.Is(err, ErrBinding) {
		t.Fatalf("token without htq: err = %v, want ErrBinding", err)
	}
	claims = strings.Replace(claims, `"n1"`, `"n2"`, 1)
	claims = strings.TrimSuffix(claims, "}") + `,"htq":""}`
	if _, err := h.verify("GET", "http://x/", "JWT "+craft(t, k.ed, EdDSA, edHdr, claims)); err != nil {
		t.Fatalf("token with htq: %v", err)
	}
}

func TestVerifyTokenWithBody(t *testing.T) {
	k := loadTestKeys(t)
	const target = "https://api.example.com/v1/pay"
	bound := httptest.NewRequest("POST", target, nil)
	bound.Header.Set("Content-Digest", rfc9530SHA256)
	unbound := httptest.NewRequest("POST", target, nil)
	tests := []struct {
		name string
		req  *http.Request
		body io.Reader
		want error
	}{
		{"matching", bound, strings.NewReader(rfc9530Body), nil},
		{"other body", bound, strings.NewReader(rfc9530Body + " "), ErrBinding},
		{"empty body", bound, strings.NewReader(""), ErrBinding},
		{"no body given: not checked", bound, nil, nil},
		{"token binds no body", unbound, strings.NewReader(rfc9530Body), ErrBinding},
		{"unreadable body", bound, iotest.ErrReader(errors.New("EIO")), ErrUnavailable},
		{"empty hcd, empty body", nil, strings.NewReader(""), nil},
		{"empty hcd, a body", nil, strings.NewReader("x"), ErrBinding},
		{"empty hcd, unreadable body", nil, iotest.ErrReader(errors.New("EIO")), ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.add("alice", k.ed)
			var tok string
			if tt.req != nil {
				tok = h.token("alice", k.ed, h.now, tt.req)
			} else { // hcd "", as the Transport binds a request without a body
				s, err := NewSigner("alice", k.ed, WithClock(func() time.Time { return h.now }))
				if err != nil {
					t.Fatal(err)
				}
				if tok, err = s.authorization(context.Background(), httptest.NewRequest("POST", target, nil), 0, []byte{}); err != nil {
					t.Fatal(err)
				}
			}
			_, err := h.v.VerifyTokenWithBody(context.Background(), tok, "POST", target, tt.body)
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err != nil && strings.Count(err.Error(), "asymjwt: ") != 1 {
				t.Fatalf("error %q names the package more than once", err)
			}
		})
	}
}
