package verifytest

import (
	"os"
	"testing"
)

// shortTempDir makes a directory under os.TempDir() with a short name, so a
// unix socket path inside it fits the 108-byte limit, and removes it when
// the test ends.
func shortTempDir(t testing.TB) (string, error) {
	dir, err := os.MkdirTemp("", "vt")
	if err != nil {
		return "", err
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir, nil
}
