// Package npmtest gives tests pinned npm packages (the reference MCP
// server, Playwright, axe-core, the console's vendored libraries),
// installed once per machine into a cache directory: VERITRAIL_NPM_CACHE,
// or <user cache>/veritrail/npm. Without node or npm a test skips loudly,
// and fails under CI=true (CI installs them: .ci/run).
package npmtest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Package is an npm package at a pinned version.
type Package struct {
	Name, Version string
}

func (p Package) String() string { return p.Name + "@" + p.Version }

// SkipOrFail skips the test with msg printed where a person sees it, or
// fails it when CI is set: in CI nothing may skip.
func SkipOrFail(t testing.TB, msg string) {
	t.Helper()
	fmt.Fprintln(os.Stderr, "\n*** SKIPPING: "+msg+" ***")
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Dir is where packages are installed (its node_modules).
func Dir() string {
	if d := os.Getenv("VERITRAIL_NPM_CACHE"); d != "" {
		return d
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	return filepath.Join(cache, "veritrail", "npm")
}

// PackageDir is where package name is installed.
func PackageDir(name string) string {
	return filepath.Join(Dir(), "node_modules", filepath.FromSlash(name))
}

// installed reports whether p is installed at its pinned version.
func installed(p Package) bool {
	b, err := os.ReadFile(filepath.Join(PackageDir(p.Name), "package.json"))
	if err != nil {
		return false
	}
	var m struct{ Version string }
	return json.Unmarshal(b, &m) == nil && m.Version == p.Version
}

// Node returns the node binary, skipping (or failing, in CI) without it.
func Node(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		SkipOrFail(t, "node is not installed (apt-get install -y nodejs npm)")
	}
	return node
}

// Install makes sure every package is installed at its pinned version and
// returns the node binary. Concurrent test processes wait for each other.
func Install(t testing.TB, pkgs ...Package) (node string) {
	t.Helper()
	node = Node(t)
	missing := func() []string {
		var out []string
		for _, p := range pkgs {
			if !installed(p) {
				out = append(out, p.String())
			}
		}
		return out
	}
	if len(missing()) == 0 {
		return node
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		SkipOrFail(t, "npm is not installed (apt-get install -y npm)")
	}
	dir := Dir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	todo := missing()
	if len(todo) == 0 {
		return node
	}
	args := append([]string{"install", "--no-audit", "--no-fund", "--save-exact", "--prefix", dir}, todo...)
	out, err := exec.Command(npm, args...).CombinedOutput()
	if err != nil || len(missing()) > 0 {
		SkipOrFail(t, fmt.Sprintf("npm install %v into %s failed: %v\n%s", todo, dir, err, out))
	}
	return node
}
