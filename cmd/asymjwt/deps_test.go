package main

import (
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// TestNoTestCodeLinked checks that the command links no test code: the
// testing package registers its flags and pulls in test machinery, and
// verifytest is a kit for tests, not for programs.
func TestNoTestCodeLinked(t *testing.T) {
	t.Parallel()
	goCmd, err := goTool()
	if err != nil {
		t.Fatal(err)
	}
	list := exec.Command(goCmd, "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", ".")
	var stderr strings.Builder
	list.Stderr = &stderr
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, stderr.String())
	}
	// importers maps each dependency to the packages that import it.
	importers := make(map[string][]string)
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if _, ok := importers[fields[0]]; !ok {
			importers[fields[0]] = nil
		}
		for _, imp := range fields[1:] {
			importers[imp] = append(importers[imp], fields[0])
		}
	}
	// A listing without these is not the command's.
	for _, pkg := range []string{
		"github.com/asymjwt/asymjwt/cmd/asymjwt",
		"github.com/asymjwt/asymjwt",
		"github.com/asymjwt/asymjwt/internal/agentserver",
	} {
		if _, ok := importers[pkg]; !ok {
			t.Fatalf("go list -deps does not list %s:\n%s", pkg, out)
		}
	}

	tests := []struct {
		pkg, why string
	}{
		{"testing", "the standard test framework"},
		{"github.com/asymjwt/asymjwt/verifytest", "the test kit"},
		{"github.com/asymjwt/asymjwt/internal/testenv", "the tests' tool finder"},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			by, linked := importers[tt.pkg]
			if linked {
				sort.Strings(by)
				t.Errorf("the command links %s (%s), imported by %s", tt.pkg, tt.why, strings.Join(by, ", "))
			}
		})
	}
}

// TestPrometheusOnlyInCommand checks that the metrics dependency stays in
// the command: a program that imports the library (or redisnonce, or
// verifytest) neither compiles nor links client_golang.
func TestPrometheusOnlyInCommand(t *testing.T) {
	t.Parallel()
	goCmd, err := goTool()
	if err != nil {
		t.Fatal(err)
	}
	pkgs := []string{"github.com/asymjwt/asymjwt", "github.com/asymjwt/asymjwt/redisnonce", "github.com/asymjwt/asymjwt/verifytest"}
	out, err := exec.Command(goCmd, append([]string{"list", "-deps"}, pkgs...)...).Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		if strings.HasPrefix(line, "github.com/prometheus/") {
			t.Errorf("a library package depends on %s", strings.TrimSpace(line))
		}
	}
	out, err = exec.Command(goCmd, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	if !strings.Contains(string(out), "github.com/prometheus/client_golang/prometheus\n") {
		t.Error("the command does not link client_golang: is this test still needed?")
	}
}
