// Package testenv finds the real tools some tests need (ssh-agent, openssl,
// redis-server). On a developer's machine a missing tool skips the test with a
// clear message; under CI=true it fails it, so CI never passes by skipping.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// LookPath returns the path of the named program, or skips (fails under
// CI=true) the test when it is not installed.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, name+" is not installed (Debian: apt-get install "+debianPackage(name)+")")
	}
	return path
}

// Unavailable skips the test, or fails it under CI=true, with reason.
func Unavailable(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %s", reason)
	}
	t.Skipf("skipping: %s", reason)
}

func debianPackage(name string) string {
	switch name {
	case "ssh-agent", "ssh-add", "ssh-keygen":
		return "openssh-client"
	case "redis-server":
		return "redis-server"
	}
	return name
}
