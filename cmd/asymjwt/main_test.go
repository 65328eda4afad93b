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
// the command and to list its dependencies: the one on PATH, as the go
// command that runs the tests puts its own there in every usual setup.
func goTool() (string, error) {
	p, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the tests need the go tool on PATH: %w", err)
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

// wantUsageError fails the test unless the run was a usage error of the
// subcommand name ("" for none): exit 2, nothing on stdout, and on stderr
// exactly two lines, the problem (holding every one of the fragments) and
// where the usage is, without the usage itself.
func (r result) wantUsageError(t *testing.T, name string, fragments ...string) result {
	t.Helper()
	prefix, hint := "asymjwt: ", "run 'asymjwt -h' for the commands"
	if name != "" {
		prefix = "asymjwt " + name + ": "
		hint = "run 'asymjwt " + name + " -h' for usage"
	}
	r.want(t, 2, fragments...)
	if r.stdout != "" {
		t.Fatalf("a usage error printed to stdout: %q", r.stdout)
	}
	lines := strings.SplitAfter(r.stderr, "\n")
	if len(lines) != 3 || lines[2] != "" {
		t.Fatalf("stderr is %d lines, want 2:\n%s", strings.Count(r.stderr, "\n"), r.stderr)
	}
	if !strings.HasPrefix(lines[0], prefix) {
		t.Fatalf("first line %q does not start with %q", lines[0], prefix)
	}
	if lines[1] != hint+"\n" {
		t.Fatalf("second line %q, want %q", lines[1], hint)
	}
	return r
}

// wantInputError fails the test unless the run was an input error: exit 2,
// nothing on stdout, stderr holding every one of the fragments and neither
// the usage nor the hint a usage error gives.
func (r result) wantInputError(t *testing.T, fragments ...string) result {
	t.Helper()
	r.want(t, 2, fragments...)
	if r.stdout != "" {
		t.Fatalf("an input error printed to stdout: %q", r.stdout)
	}
	if strings.Contains(r.stderr, "Usage:") || strings.Contains(r.stderr, "for usage") {
		t.Fatalf("an input error shows the usage or points to it:\n%s", r.stderr)
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
	r := runCLI(t).want(t, 2, "Usage: asymjwt <command>", "keygen", "header", "verify", "demo", "version")
	if r.stdout != "" {
		t.Fatalf("stdout: %s", r.stdout)
	}
	for _, args := range [][]string{{"-h"}, {"-help"}, {"--help"}, {"help"}} {
		r := runCLI(t, args...).want(t, 0)
		if !strings.Contains(r.stdout, "Usage: asymjwt <command>") {
			t.Fatalf("%v: stdout %q", args, r.stdout)
		}
	}
	for _, sub := range []string{"keygen", "header", "verify", "demo", "version"} {
		for _, args := range [][]string{{sub, "-h"}, {sub, "-help"}, {sub, "--help"}, {"help", sub}} {
			r := runCLI(t, args...).want(t, 0)
			if !strings.HasPrefix(r.stdout, "Usage: asymjwt "+sub) {
				t.Fatalf("%v: stdout %q", args, r.stdout)
			}
			if r.stderr != "" {
				t.Fatalf("%v: stderr %q", args, r.stderr)
			}
		}
	}
	r = runCLI(t, "verify", "-h").want(t, 0)
	if !strings.Contains(r.stdout, "replay") {
		t.Fatalf("verify -h does not say that one run cannot see replays:\n%s", r.stdout)
	}
}

// TestUsageErrors checks that every kind of usage error of every
// subcommand prints one line naming the problem and one line saying where
// the usage is, and exits 2. The subcommands' own tests check the errors
// particular to them.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "id")
	tests := []struct {
		name    string
		args    []string
		command string // whose usage the hint names; "" for the command list
		want    []string
	}{
		{"unknown command", []string{"frobnicate"}, "", []string{`unknown command "frobnicate"`}},
		{"unknown flag before a command", []string{"-x", "keygen"}, "", []string{`unknown command "-x"`}},
		{"help for an unknown command", []string{"help", "frobnicate"}, "", []string{`unknown command "frobnicate"`}},
		{"help for two commands", []string{"help", "keygen", "verify"}, "", []string{`unexpected argument "verify"`}},
		{"unknown command with a line break", []string{"a\nb"}, "", []string{`unknown command "a\nb"`}},

		{"keygen unknown flag", []string{"keygen", "-no-such-flag", "-o", file}, "keygen", []string{"flag provided but not defined: -no-such-flag"}},
		{"keygen flag with a line break", []string{"keygen", "-a\nb"}, "keygen", []string{`not defined: -a\nb`}},
		{"keygen flag without its value", []string{"keygen", "-o"}, "keygen", []string{"flag needs an argument: -o"}},
		{"keygen bad value", []string{"keygen", "-bits", "many", "-o", file}, "keygen", []string{`invalid value "many" for flag -bits`}},
		{"keygen bad boolean", []string{"keygen", "-f=maybe", "-o", file}, "keygen", []string{`invalid boolean value "maybe" for -f`}},
		{"keygen missing flag", []string{"keygen"}, "keygen", []string{"-o FILE is required"}},
		{"keygen extra argument", []string{"keygen", "-o", file, "extra"}, "keygen", []string{`unexpected argument "extra"`}},

		{"header unknown flag", []string{"header", "-bogus"}, "header", []string{"flag provided but not defined: -bogus"}},
		{"header flag without its value", []string{"header", "-user"}, "header", []string{"flag needs an argument: -user"}},
		{"header bad boolean", []string{"header", "-user", "a", "-agent=maybe"}, "header", []string{`invalid boolean value "maybe" for -agent`}},
		{"header missing flag", []string{"header", "-agent"}, "header", []string{"-user NAME is required"}},
		{"header extra argument", []string{"header", "-user", "a", "-agent", "extra"}, "header", []string{`unexpected argument "extra"`}},

		{"verify unknown flag", []string{"verify", "-bogus", "tok"}, "verify", []string{"flag provided but not defined: -bogus"}},
		{"verify flag without its value", []string{"verify", "tok", "-keys"}, "verify", []string{"flag needs an argument: -keys"}},
		{"verify bad value", []string{"verify", "-keys", "d", "-skew", "soon", "tok"}, "verify", []string{`invalid value "soon" for flag -skew`}},
		{"verify missing flag", []string{"verify", "tok"}, "verify", []string{"-keys DIR is required"}},
		{"verify missing argument", []string{"verify", "-keys", "d"}, "verify", []string{"TOKEN is required"}},
		{"verify extra argument", []string{"verify", "-keys", "d", "tok", "extra"}, "verify", []string{"one TOKEN only; got 2 arguments"}},

		{"demo unknown flag", []string{"demo", "-bogus"}, "demo", []string{"flag provided but not defined: -bogus"}},
		{"demo extra argument", []string{"demo", "extra"}, "demo", []string{`unexpected argument "extra"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			runCLI(t, tt.args...).wantUsageError(t, tt.command, tt.want...)
		})
	}
	// After the parallel subtests, before t.TempDir() is removed.
	t.Cleanup(func() {
		if _, err := os.Stat(file); err == nil {
			t.Error("a keygen refused for its usage wrote a key")
		}
	})
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
