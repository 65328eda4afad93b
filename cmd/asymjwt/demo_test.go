package main

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	t.Parallel()
	r := runCLI(t, "demo").want(t, 0)
	if r.stderr != "" {
		t.Fatalf("stderr: %s", r.stderr)
	}
	for _, want := range []string{
		"alice GET /hello, signed with her key file",
		"bob GET /hello, signed by the ssh-agent",
		"(replay)",
		"changed in flight to 9",
		"does not match its Content-Digest",
		"sent with ?page=2",
		"(stale)",
		"(binding)",
		"hello alice, by access token",
		"(bad_header)",
		"invalid_grant: refresh token reused: its chain is revoked",
		"hello bob, by access token",
		"Every request went as expected.",
		"server closed",
		"agent stopped",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the account does not mention %q", want)
		}
	}
	if strings.Contains(r.stdout, "eyJ") {
		t.Error("the account shows a token")
	}
	m := regexp.MustCompile(`removed (\S+)\.\n`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("the account does not say which directory it removed:\n%s", r.stdout)
	}
	if _, err := os.Stat(m[1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary directory %s still there: %v", m[1], err)
	}
	if t.Failed() {
		t.Log(r.stdout)
	}
}

// TestDemoInProcess runs the demo through run, so the race detector sees its
// server, agent and clients.
func TestDemoInProcess(t *testing.T) {
	t.Parallel()
	var stdout, stderr strings.Builder
	if code := run([]string{"demo"}, strings.NewReader(""), &stdout, &stderr); code != exitOK {
		t.Fatalf("demo: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "Every request went as expected.") {
		t.Fatalf("demo printed:\n%s", stdout.String())
	}
}
