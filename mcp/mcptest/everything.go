// Package mcptest gives tests a real MCP server: the reference
// @modelcontextprotocol/server-everything from npm, installed once into a
// cache directory (package npmtest) and run with Node.js over stdio or
// Streamable HTTP.
package mcptest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/veritrail/veritrail/internal/npmtest"
)

// Version is the server-everything release the tests run against.
const Version = "2026.8.31"

const pkg = "@modelcontextprotocol/server-everything"

// Dir is where the package is installed.
func Dir() string { return npmtest.Dir() }

// Everything returns the node binary and the server's script, installing
// the package first if needed (once per machine).
func Everything(t testing.TB) (node, script string) {
	t.Helper()
	node = npmtest.Install(t, npmtest.Package{Name: pkg, Version: Version})
	return node, filepath.Join(npmtest.PackageDir(pkg), "dist", "index.js")
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
