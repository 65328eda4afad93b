package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

const versionSynopsis = "asymjwt version"

const versionDescription = `
Prints one line: the version of asymjwt, then the Go release and the
platform it was built with, as in "asymjwt v1.0.0 (go1.26.8, linux/amd64)".
A build from a checkout shows "(devel)" or a pseudo-version, and the commit
it was built from (12 hex digits, "+dirty" when the work tree had changes)
when the go tool recorded it. "asymjwt -version" and "asymjwt --version" do
the same.`

func runVersion(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("version")
	usage := func(w io.Writer) { printUsage(w, fs, versionSynopsis, versionDescription) }
	rest, code := parseArgs(fs, args, stdout, stderr, usage)
	if code >= 0 {
		return code
	}
	if len(rest) > 0 {
		return usageError(stderr, "version", "unexpected argument %q", rest[0])
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprintln(stdout, versionLine(bi))
	return exitOK
}

// versionLine describes the build bi: the main module's version ("(devel)"
// when unknown), the commit when recorded and not already part of the
// version, the Go release and the platform. bi may be nil.
func versionLine(bi *debug.BuildInfo) string {
	version, goVersion := "(devel)", runtime.Version()
	var revision string
	var modified bool
	if bi != nil {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if revision != "" {
		short := revision[:min(12, len(revision))]
		// A pseudo-version (v0.0.0-20260101120000-0123456789ab+dirty) names
		// the commit, and its state, already.
		if !strings.Contains(version, short) {
			if modified {
				short += "+dirty"
			}
			version += " " + short
		}
	}
	return fmt.Sprintf("asymjwt %s (%s, %s/%s)", version, goVersion, runtime.GOOS, runtime.GOARCH)
}
