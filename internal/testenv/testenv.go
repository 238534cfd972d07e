// Package testenv holds what the tests that start real peers (npm
// packages, Chromium, built Go tools, an S3 server) share: how a missing
// peer is reported, and where built or installed peers are cached.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// SkipOrFail skips t loudly, or fails it when CI is set: CI installs
// every peer the tests need, so nothing may skip there.
func SkipOrFail(t testing.TB, msg string) {
	t.Helper()
	fmt.Fprintln(os.Stderr, "\n*** SKIPPING: "+msg+" ***")
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// CacheDir is the directory the environment variable env names, or else
// veritrail/sub under the user's cache directory (the temporary directory
// when there is none). .ci/run fills the same directories.
func CacheDir(env, sub string) string {
	if d := os.Getenv(env); d != "" {
		return d
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	return filepath.Join(cache, "veritrail", sub)
}
