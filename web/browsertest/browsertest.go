// Package browsertest runs the console's browser tests: scripts under
// this directory, run by Node.js, driving Debian's Chromium through
// playwright-core (executablePath, headless) and checking pages with
// axe-core (@axe-core/playwright). The npm packages are pinned in
// internal/npmtest/packages.txt (group "console") and installed once
// (package npmtest). Without node, npm
// or Chromium the tests skip loudly, and fail under CI=true.
//
// Screenshots of every page go to VERITRAIL_TEST_ARTIFACTS, or to a
// temporary directory printed in the test log.
package browsertest

import (
	"bufio"
	"encoding/json"
	"github.com/veritrail/veritrail/internal/testenv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/veritrail/veritrail/internal/npmtest"
)

// Group is the npm group (internal/npmtest/packages.txt) of the test
// tools (playwright-core, @axe-core/playwright, axe-core) and the libraries
// the console vendors (web.Vendored names their files).
const Group = "console"

// Chromium returns the browser to drive: VERITRAIL_CHROMIUM, or Debian's.
func Chromium(t testing.TB) string {
	t.Helper()
	path := os.Getenv("VERITRAIL_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		testenv.SkipOrFail(t, "no Chromium at "+path+" (apt-get install -y chromium, or set VERITRAIL_CHROMIUM)")
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

// Driver runs the scenarios of one script in one browser: node serves them
// one at a time, each in a fresh browser context (no cookie or storage
// shared), so a test starts Chromium once however many scenarios it runs.
type Driver struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	results chan string
	mu      sync.Mutex
	logTo   testing.TB // the subtest the script's output belongs to
	parent  testing.TB // the test that started it, between subtests
}

// Start starts node serving the scenarios of script (a file of this
// directory) until the test ends.
func Start(t testing.TB, script string) *Driver {
	t.Helper()
	chromium := Chromium(t)
	node := npmtest.Node(t)
	modules := npmtest.Prefix(t, Group)
	cmd := exec.Command(node, filepath.Join(dir(), script))
	cmd.Env = append(os.Environ(),
		"VERITRAIL_NPM_MODULES="+modules,
		"VERITRAIL_CHROMIUM="+chromium,
		"VERITRAIL_TEST_ARTIFACTS="+Artifacts(t),
	)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &Driver{cmd: cmd, in: in, results: make(chan string), logTo: t, parent: t}
	go func() {
		defer close(d.results)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if r, ok := strings.CutPrefix(sc.Text(), "@@result "); ok {
				d.results <- r
				continue
			}
			d.mu.Lock()
			d.logTo.Log(sc.Text())
			d.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		in.Close()
		for range d.results {
		}
		cmd.Wait()
	})
	return d
}

// Run runs one scenario with env added to the script's environment; a
// scenario that throws fails t, with the script's output.
func (d *Driver) Run(t testing.TB, scenario string, env map[string]string) {
	t.Helper()
	d.mu.Lock()
	d.logTo = t
	d.mu.Unlock()
	line, err := json.Marshal(map[string]any{"scenario": scenario, "env": env})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.in.Write(append(line, '\n')); err != nil {
		t.Fatalf("the browser script is gone: %v", err)
	}
	r, ok := <-d.results
	d.mu.Lock()
	d.logTo = d.parent
	d.mu.Unlock()
	if !ok {
		t.Fatalf("the browser script exited during scenario %s", scenario)
	}
	if r != scenario+" ok" {
		t.Fatalf("browser scenario %s failed (its output is above)", scenario)
	}
}
