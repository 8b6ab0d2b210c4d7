// Package npmtest installs a test's small Node project (package.json + package-lock.json + its scripts) with
// `npm ci` into a cache folder outside the work tree, once per lockfile, so tests can run real npm clients.
package npmtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Install copies files from src into <user cache>/iot-center/<name>, runs `npm ci` there when node_modules is
// missing or the lockfile changed, and returns the folder. Failing to install fails the test.
func Install(t testing.TB, src, name string, files ...string) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "iot-center", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := false
	for _, f := range append([]string{"package.json", "package-lock.json"}, files...) {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if old, _ := os.ReadFile(filepath.Join(dir, f)); f == "package-lock.json" && !bytes.Equal(old, data) {
			stale = true
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil || stale {
		npm := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		npm.Dir = dir
		if out, err := npm.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v: %s", dir, err, out)
		}
	}
	return dir
}
