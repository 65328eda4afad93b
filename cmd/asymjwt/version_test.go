package main

import (
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionLine(t *testing.T) {
	t.Parallel()
	platform := runtime.GOOS + "/" + runtime.GOARCH
	const rev = "0123456789abcdef0123456789abcdef01234567"
	vcs := func(revision, modified string) []debug.BuildSetting {
		s := []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: revision}}
		if modified != "" {
			s = append(s, debug.BuildSetting{Key: "vcs.modified", Value: modified})
		}
		return s
	}
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build information", nil, "asymjwt (devel) (" + runtime.Version() + ", " + platform + ")"},
		{"release", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.0.0"}},
			"asymjwt v1.0.0 (go1.26.8, " + platform + ")"},
		{"no version, no Go version", &debug.BuildInfo{},
			"asymjwt (devel) (" + runtime.Version() + ", " + platform + ")"},
		{"checkout without VCS stamp", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"asymjwt (devel) (go1.26.8, " + platform + ")"},
		{"checkout, clean", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "false")},
			"asymjwt (devel) 0123456789ab (go1.26.8, " + platform + ")"},
		{"checkout, modified", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "true")},
			"asymjwt (devel) 0123456789ab+dirty (go1.26.8, " + platform + ")"},
		{"checkout, state unknown", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "")},
			"asymjwt (devel) 0123456789ab (go1.26.8, " + platform + ")"},
		{"pseudo-version names the commit", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20260101120000-0123456789ab+dirty"}, Settings: vcs(rev, "true")},
			"asymjwt v0.0.0-20260101120000-0123456789ab+dirty (go1.26.8, " + platform + ")"},
		{"tagged checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}, Settings: vcs(rev, "false")},
			"asymjwt v1.2.0 0123456789ab (go1.26.8, " + platform + ")"},
		{"short revision", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs("abc123", "true")},
			"asymjwt (devel) abc123+dirty (go1.26.8, " + platform + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := versionLine(tt.bi); got != tt.want {
				t.Fatalf("versionLine = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestVersion checks the built binary's version line against what the go
// tool reads from the same binary.
func TestVersion(t *testing.T) {
	t.Parallel()
	goCmd, err := goTool()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goCmd, "version", "-m", binary).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	var bi debug.BuildInfo
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimSpace(line), "\t")
		switch {
		case strings.HasPrefix(line, binary+": "):
			bi.GoVersion = strings.TrimPrefix(strings.TrimSpace(line), binary+": ")
		case f[0] == "mod" && len(f) >= 3 && f[1] == "github.com/asymjwt/asymjwt":
			bi.Main.Version = f[2]
		case f[0] == "build" && len(f) == 2:
			if k, v, ok := strings.Cut(f[1], "="); ok {
				bi.Settings = append(bi.Settings, debug.BuildSetting{Key: k, Value: v})
			}
		}
	}
	if bi.GoVersion == "" || bi.Main.Version == "" {
		t.Fatalf("go version -m printed no Go version or no main module version:\n%s", out)
	}
	want := versionLine(&bi) + "\n"
	if !strings.HasPrefix(want, "asymjwt "+bi.Main.Version+" ") || !strings.HasSuffix(want, " ("+bi.GoVersion+", "+runtime.GOOS+"/"+runtime.GOARCH+")\n") {
		t.Fatalf("expected line %q does not show %s, %s and the platform", want, bi.Main.Version, bi.GoVersion)
	}
	for _, args := range [][]string{{"version"}, {"-version"}, {"--version"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, args...).want(t, 0)
			if r.stdout != want {
				t.Fatalf("stdout %q, want %q", r.stdout, want)
			}
			if r.stderr != "" {
				t.Fatalf("stderr %q", r.stderr)
			}
		})
	}
}

func TestVersionUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"extra argument", []string{"version", "extra"}, `unexpected argument "extra"`},
		{"alias with an extra argument", []string{"--version", "extra"}, `unexpected argument "extra"`},
		{"unknown flag", []string{"version", "-short"}, "flag provided but not defined: -short"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			runCLI(t, tt.args...).wantUsageError(t, "version", tt.want)
		})
	}
	for _, args := range [][]string{{"version", "-h"}, {"help", "version"}} {
		r := runCLI(t, args...).want(t, 0)
		if !strings.HasPrefix(r.stdout, "Usage: asymjwt version\n") || !strings.Contains(r.stdout, "-version") {
			t.Fatalf("%v: stdout %q", args, r.stdout)
		}
	}
	r := runCLI(t, "-h").want(t, 0)
	if !strings.Contains(r.stdout, "\n  version ") {
		t.Fatalf("the command list does not name version:\n%s", r.stdout)
	}
}
