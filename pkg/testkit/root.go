package testkit

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FindRepoRoot returns the repository root: the first directory holding
// go.work at or above the working directory (a test runs in its package's
// directory).
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.work not found at or above the working directory")
		}
		dir = parent
	}
}

// RepoRoot is FindRepoRoot for a test: it fails the test when there is none.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}
