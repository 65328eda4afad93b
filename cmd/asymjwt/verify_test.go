package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asymjwt/asymjwt"
	"github.com/asymjwt/asymjwt/verifytest"
)

// tokenHeader decodes a token's JOSE header.
func tokenHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	seg, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("token header: %v", err)
	}
	return h
}

// signAt makes a token for user with kp's key and a clock off by offset.
func signAt(t *testing.T, kp *verifytest.KeyPair, user string, offset time.Duration) string {
	t.Helper()
	s := kp.Signer(t, user, asymjwt.WithClock(func() time.Time { return time.Now().Add(offset) }))
	tok, err := s.Sign(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerifyFailures(t *testing.T) {
	t.Parallel()
	kp := verifytest.GenerateKey(t, verifytest.Ed25519)
	other := verifytest.GenerateKey(t, verifytest.Ed25519)
	otherEC := verifytest.GenerateKey(t, verifytest.ECDSAP256)
	keys := keysDirWith(t, "alice", kp.PublicFile)
	copyFile(t, other.PublicFile, filepath.Join(keys, "mallory.pub"))
	wrongKeys := keysDirWith(t, "alice", other.PublicFile)
	wrongTypeKeys := keysDirWith(t, "alice", otherEC.PublicFile)

	good := runCLI(t, "header", "-user", "alice", "-key", kp.PrivateFile).want(t, 0).token(t)
	parts := strings.Split(good, ".")
	// A character in the middle of the signature carries six full bits.
	sig := []byte(parts[2])
	if sig[len(sig)/2] == 'A' {
		sig[len(sig)/2] = 'B'
	} else {
		sig[len(sig)/2] = 'A'
	}
	tamperedSig := parts[0] + "." + parts[1] + "." + string(sig)
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tamperedClaims := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(claims), `"alice"`, `"mallory"`, 1))) + "." + parts[2]
	byOther := signAt(t, other, "alice", 0)

	tests := []struct {
		name  string
		keys  string
		token string
		args  []string
		want  string
	}{
		{"wrong key", wrongKeys, good, nil, "invalid_signature"},
		{"key of another type", wrongTypeKeys, good, nil, "bad_algorithm"},
		{"signed by another key", keys, byOther, nil, "invalid_signature"},
		{"tampered signature", keys, tamperedSig, nil, "invalid_signature"},
		{"tampered claims", keys, tamperedClaims, nil, "invalid_signature"},
		{"stale", keys, signAt(t, kp, "alice", -60*time.Second), nil, "stale"},
		{"from the future", keys, signAt(t, kp, "alice", 60*time.Second), nil, "stale"},
		{"stale for a short skew", keys, signAt(t, kp, "alice", -10*time.Second), []string{"-skew", "5s"}, "stale"},
		{"unknown user", keys, signAt(t, kp, "bob", 0), nil, "unknown user"},
		{"escaping username", keys, signAt(t, kp, "../keys/alice", 0), nil, "unknown user"},
		{"garbage", keys, "not-a-token", nil, "malformed"},
		{"empty", keys, "", nil, "malformed"},
		{"scheme only", keys, "JWT ", nil, "malformed"},
		{"two segments", keys, parts[0] + "." + parts[1], nil, "malformed"},
		{"huge", keys, strings.Repeat(".", 100000), nil, "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append(append([]string{"verify", "-keys", tt.keys}, tt.args...), "--", tt.token)
			r := runCLI(t, args...).want(t, 1, "invalid token", tt.want).noSecrets(t, good, tt.token, parts[2])
			if r.stdout != "" {
				t.Fatalf("stdout: %q", r.stdout)
			}
		})
	}

	// A wider -skew accepts what the default refuses.
	late := signAt(t, kp, "alice", -60*time.Second)
	runCLI(t, "verify", "-keys", keys, late).want(t, 1, "stale")
	runCLI(t, "verify", "-keys", keys, "-skew", "90s", late).want(t, 0)
}

func TestVerifyTokenFromStdin(t *testing.T) {
	t.Parallel()
	kp := verifytest.GenerateKey(t, verifytest.ECDSAP384)
	keys := keysDirWith(t, "carol", kp.PublicFile)
	header := func() string {
		return runCLI(t, "header", "-user", "carol", "-key", kp.PrivateFile).want(t, 0).stdout
	}
	for name, input := range map[string]func() string{
		"header output":      header,
		"without JWT":        func() string { return strings.TrimPrefix(header(), "JWT ") },
		"lower-case scheme":  func() string { return "jwt " + strings.TrimPrefix(header(), "JWT ") },
		"CRLF, no newline":   func() string { return strings.TrimSuffix(header(), "\n") + "\r\n" },
		"surrounding spaces": func() string { return "  " + strings.TrimSpace(header()) + "  " },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := cli{stdin: input()}.run(t, "verify", "-keys", keys, "-").want(t, 0).claims(t)
			if c["username"] != "carol" {
				t.Fatalf("claims %v", c)
			}
		})
	}
	// The argument may carry "JWT " too, and flags may follow it.
	tok := strings.TrimSpace(header())
	runCLI(t, "verify", tok, "-keys", keys).want(t, 0)
	cli{stdin: ""}.run(t, "verify", "-keys", keys, "-").want(t, 1, "malformed")
	cli{stdin: "garbage\n"}.run(t, "verify", "-keys", keys, "-").want(t, 1, "malformed")
}

func TestVerifyUsageErrors(t *testing.T) {
	t.Parallel()
	kp := verifytest.GenerateKey(t, verifytest.Ed25519)
	keys := keysDirWith(t, "alice", kp.PublicFile)
	tok := signAt(t, kp, "alice", 0)
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	unreadable := keysDirWith(t, "alice", kp.PublicFile)
	if err := os.Remove(filepath.Join(unreadable, "alice.pub")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(unreadable, "alice.pub"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		usage bool // a usage error; else an input error
		want  []string
	}{
		{"no -keys", []string{tok}, true, []string{"-keys DIR is required"}},
		{"no token", []string{"-keys", keys}, true, []string{"TOKEN is required"}},
		{"two tokens", []string{"-keys", keys, tok, tok}, true, []string{"one TOKEN only"}},
		{"zero skew", []string{"-keys", keys, "-skew", "0s", tok}, true, []string{"-skew"}},
		{"bad skew", []string{"-keys", keys, "-skew", "soon", tok}, true, []string{"-skew"}},
		{"relative url", []string{"-keys", keys, "-url", "/x", tok}, true, []string{"absolute http or https URL"}},
		{"body and token both from stdin", []string{"-keys", keys, "-body", "-", "-"}, true, []string{"standard input"}},
		{"bad flag", []string{"-keys", keys, "-bogus", tok}, true, []string{"-bogus"}},
		{"missing key dir", []string{"-keys", filepath.Join(t.TempDir(), "nope"), tok}, false, []string{"nope", "key directory"}},
		{"key dir is a file", []string{"-keys", notDir, tok}, false, []string{"not a directory"}},
		{"user's key file unreadable", []string{"-keys", unreadable, tok}, false, []string{"alice.pub"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, append([]string{"verify"}, tt.args...)...)
			if tt.usage {
				r.wantUsageError(t, "verify", tt.want...)
			} else {
				r.wantInputError(t, tt.want...)
			}
			r.noSecrets(t, tok)
		})
	}
}
