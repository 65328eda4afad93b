package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// binary is the asymjwt command, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "asymjwt-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "asymjwt")
	if runtime.GOOS == "windows" {
		binary += ".exe"
	}
	goCmd, err := goTool()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	build := exec.Command(goCmd, "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building asymjwt: %v\n", err)
		return 1
	}
	return m.Run()
}

// goTool returns the path of the go command, which the tests use to build
// the command and to list its dependencies: the one on PATH, else the one
// of the GOROOT the tests run with.
func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if runtime.GOOS == "windows" {
		p += ".exe"
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the tests need the go tool, which is neither on PATH nor in GOROOT: %w", err)
	}
	return p, nil
}

// result is what a run of the command gave.
type result struct {
	stdout, stderr string
	code           int
}

// cli describes one run of the binary.
type cli struct {
	stdin string
	env   []string // added to the environment, which has no SSH_AUTH_SOCK
}

// run runs the binary with args and returns its output and exit code.
func (c cli) run(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(c.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SSH_AUTH_SOCK=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, c.env...)
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running asymjwt %s: %v", strings.Join(args, " "), err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// runCLI runs the binary with no stdin and no agent.
func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	return cli{}.run(t, args...)
}

// want fails the test unless the run exited with code and its stderr holds
// every one of the fragments.
func (r result) want(t *testing.T, code int, stderrHas ...string) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range stderrHas {
		if !strings.Contains(r.stderr, s) {
			t.Fatalf("stderr does not mention %q:\n%s", s, r.stderr)
		}
	}
	return r
}

// noSecrets fails the test if stderr or stdout holds any of secrets.
func (r result) noSecrets(t *testing.T, secrets ...string) result {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(r.stderr, s) {
			t.Fatalf("stderr holds a secret (%d bytes starting %.6q):\n%s", len(s), s, r.stderr)
		}
	}
	return r
}

// claims decodes stdout as exactly one JSON object.
func (r result) claims(t *testing.T) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	var c map[string]any
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, r.stdout)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("stdout holds more than one JSON object:\n%s", r.stdout)
	}
	if strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("stdout is not one line:\n%s", r.stdout)
	}
	return c
}

// token returns the token of a header run's "JWT <token>" line.
func (r result) token(t *testing.T) string {
	t.Helper()
	line, ok := strings.CutSuffix(r.stdout, "\n")
	tok, ok2 := strings.CutPrefix(line, "JWT ")
	if !ok || !ok2 || strings.ContainsAny(tok, " \n") || strings.Count(tok, ".") != 2 {
		t.Fatalf(`header printed %q, want one line "JWT <token>"`, r.stdout)
	}
	return tok
}

// privateKeyLines returns the lines of a private key file that carry key
// material, to check that no message repeats them.
func privateKeyLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if len(l) >= 16 && !strings.HasPrefix(l, "-----") && !strings.Contains(l, ":") {
			lines = append(lines, l)
		}
	}
	return lines
}

func TestUsage(t *testing.T) {
	t.Parallel()
	r := runCLI(t).want(t, 2, "Usage: asymjwt <command>", "keygen", "header", "verify", "demo")
	if r.stdout != "" {
		t.Fatalf("stdout: %s", r.stdout)
	}
	for _, args := range [][]string{{"-h"}, {"help"}, {"--help"}} {
		r := runCLI(t, args...).want(t, 0)
		if !strings.Contains(r.stdout, "Usage: asymjwt <command>") {
			t.Fatalf("%v: stdout %q", args, r.stdout)
		}
	}
	runCLI(t, "frobnicate").want(t, 2, `unknown command "frobnicate"`, "Usage:")
	for _, sub := range []string{"keygen", "header", "verify", "demo"} {
		for _, args := range [][]string{{sub, "-h"}, {"help", sub}} {
			r := runCLI(t, args...).want(t, 0)
			if !strings.HasPrefix(r.stdout, "Usage: asymjwt "+sub) {
				t.Fatalf("%v: stdout %q", args, r.stdout)
			}
		}
		runCLI(t, sub, "-no-such-flag").want(t, 2, "flag provided but not defined: -no-such-flag", "Usage: asymjwt "+sub)
	}
	r = runCLI(t, "verify", "-h").want(t, 0)
	if !strings.Contains(r.stdout, "replay") {
		t.Fatalf("verify -h does not say that one run cannot see replays:\n%s", r.stdout)
	}
}

// TestRunInProcess drives run directly, as main does.
func TestRunInProcess(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if code := run(nil, strings.NewReader(""), &stdout, &stderr); code != exitUsage {
		t.Fatalf("no arguments: exit %d", code)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "id")
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"keygen", "-type", "ecdsa", "-o", key}, strings.NewReader(""), &stdout, &stderr); code != exitOK {
		t.Fatalf("keygen: exit %d: %s", code, stderr.String())
	}
	stdout.Reset()
	if code := run([]string{"header", "-user", "alice", "-key", key}, strings.NewReader(""), &stdout, &stderr); code != exitOK {
		t.Fatalf("header: exit %d: %s", code, stderr.String())
	}
	tok := stdout.String()
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	copyFile(t, key+".pub", filepath.Join(keys, "alice.pub"))
	stdout.Reset()
	if code := run([]string{"verify", "-keys", keys, "-"}, strings.NewReader(tok), &stdout, &stderr); code != exitOK {
		t.Fatalf("verify: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"username":"alice"`) {
		t.Fatalf("verify printed %s", stdout.String())
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
