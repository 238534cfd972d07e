// Package mcptest gives tests a real MCP server: the reference
// @modelcontextprotocol/server-everything from npm, installed once into a
// cache directory (VERITRAIL_NPM_CACHE, or <user cache>/veritrail/npm) and
// run with Node.js over stdio or Streamable HTTP.
package mcptest

import (
	"bufio"
	"fmt"
	"github.com/veritrail/veritrail/internal/testenv"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Version is the server-everything release the tests run against.
const Version = "2026.8.31"

const pkg = "@modelcontextprotocol/server-everything"

// Dir is where the package is installed.
func Dir() string { return testenv.CacheDir("VERITRAIL_NPM_CACHE", "npm") }

// Everything returns the node binary and the server's script, installing
// the package first if needed (once per machine; concurrent test processes
// wait for each other).
func Everything(t testing.TB) (node, script string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.SkipOrFail(t, "no MCP test server: node is not installed (apt-get install -y nodejs npm)")
	}
	dir := Dir()
	script = filepath.Join(dir, "node_modules", pkg, "dist", "index.js")
	manifest := filepath.Join(dir, "node_modules", pkg, "package.json")
	installed := func() bool {
		b, err := os.ReadFile(manifest)
		return err == nil && strings.Contains(string(b), `"version": "`+Version+`"`)
	}
	if installed() {
		return node, script
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		testenv.SkipOrFail(t, "no MCP test server: npm is not installed (apt-get install -y npm)")
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
		return node, script
	}
	out, err := exec.Command(npm, "install", "--no-audit", "--no-fund", "--prefix", dir, pkg+"@"+Version).CombinedOutput()
	if err != nil || !installed() {
		testenv.SkipOrFail(t, fmt.Sprintf("npm install %s@%s into %s failed: %v\n%s", pkg, Version, dir, err, out))
	}
	return node, script
}

// StdioCommand returns the argv that runs the server over stdio.
func StdioCommand(t testing.TB) []string {
	node, script := Everything(t)
	return []string{node, script, "stdio"}
}

// StartHTTP runs the server's Streamable HTTP transport on a free port and
// returns its MCP endpoint URL. It is stopped at cleanup.
func StartHTTP(t testing.TB) string {
	t.Helper()
	node, script := Everything(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(node, script, "streamableHttp")
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	stderr, _ := cmd.StderrPipe()
	cmd.Stdout = nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	ready, scanned := make(chan struct{}), make(chan struct{})
	var log strings.Builder
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "listening on port") {
				close(ready)
				break
			}
		}
		for sc.Scan() {
		}
	}()
	select {
	case <-ready:
	case <-exited:
		<-scanned
		t.Fatalf("server-everything exited:\n%s", log.String())
	case <-time.After(30 * time.Second):
		t.Fatal("server-everything did not start")
	}
	return fmt.Sprintf("http://127.0.0.1:%d/mcp", port)
}
