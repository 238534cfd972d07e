// Package browsertest runs the console's browser tests: scripts under
// this directory, run by Node.js, driving Debian's Chromium through
// playwright-core (executablePath, headless) and checking pages with
// axe-core (@axe-core/playwright). The npm packages are pinned in
// npm-packages.txt and installed once (package npmtest). Without node, npm
// or Chromium the tests skip loudly, and fail under CI=true.
//
// Screenshots of every page go to VERITRAIL_TEST_ARTIFACTS, or to a
// temporary directory printed in the test log.
package browsertest

import (
	"bufio"
	_ "embed"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/veritrail/veritrail/internal/npmtest"
)

//go:embed npm-packages.txt
var pins string

// Packages are the pinned npm packages: the test tools, and the libraries
// the console vendors (web.Vendored names their files).
func Packages() []npmtest.Package {
	var out []npmtest.Package
	for _, line := range strings.Split(pins, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		at := strings.LastIndexByte(line, '@')
		out = append(out, npmtest.Package{Name: line[:at], Version: line[at+1:]})
	}
	return out
}

// Version is the pinned version of an npm package, or "".
func Version(name string) string {
	for _, p := range Packages() {
		if p.Name == name {
			return p.Version
		}
	}
	return ""
}

// Chromium returns the browser to drive: VERITRAIL_CHROMIUM, or Debian's.
func Chromium(t testing.TB) string {
	t.Helper()
	path := os.Getenv("VERITRAIL_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		npmtest.SkipOrFail(t, "no Chromium at "+path+" (apt-get install -y chromium, or set VERITRAIL_CHROMIUM)")
	}
	return path
}

var (
	artifactsOnce sync.Once
	artifacts     string
)

// Artifacts is the directory screenshots are kept in, made once per test
// process and printed.
func Artifacts(t testing.TB) string {
	t.Helper()
	artifactsOnce.Do(func() {
		artifacts = os.Getenv("VERITRAIL_TEST_ARTIFACTS")
		if artifacts == "" {
			d, err := os.MkdirTemp("", "veritrail-console-artifacts-")
			if err != nil {
				t.Fatal(err)
			}
			artifacts = d
		}
		os.MkdirAll(artifacts, 0o755)
	})
	t.Logf("browser test screenshots: %s", artifacts)
	return artifacts
}

// dir is this package's directory, where the scripts are.
func dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Run runs one scenario of script (a file of this directory) in a fresh
// browser, with env added to the script's environment; a scenario that
// throws fails the test, with the script's output.
func Run(t testing.TB, script, scenario string, env map[string]string) {
	t.Helper()
	chromium := Chromium(t)
	node := npmtest.Install(t, Packages()...)
	cmd := exec.Command(node, filepath.Join(dir(), script), scenario)
	cmd.Env = append(os.Environ(),
		"VERITRAIL_NPM_CACHE="+npmtest.Dir(),
		"VERITRAIL_CHROMIUM="+chromium,
		"VERITRAIL_TEST_ARTIFACTS="+Artifacts(t),
	)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		t.Log(sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("browser scenario %s failed: %v", scenario, err)
	}
}
