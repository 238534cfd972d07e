package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veritrail/veritrail/internal/npmtest"
	"github.com/veritrail/veritrail/mcp/mcptest"
)

// The MCP gateway must change nothing for its clients. The protocol's own
// conformance suite (@modelcontextprotocol/conformance, from npm) runs its
// server scenarios against the reference server (server-everything)
// directly and through `veritrail mcp-proxy`, and the results must be the
// same, check for check.
//
// The suite's CLI tests servers over Streamable HTTP only (`server --url`;
// it has no stdio mode). So for stdio, both arms are bridged to
// Streamable HTTP by the same bridge, supergateway (npm), in stateful mode
// (one stdio process per session): the suite talks to supergateway, which
// runs `server-everything stdio` in one arm and `veritrail mcp-proxy --
// server-everything stdio` in the other. Whatever the bridge changes, it
// changes in both arms; a difference can only come from the gateway.

// check is one conformance check's outcome.
type check struct {
	ID, Name, Status string
	ErrorMessage     string `json:"errorMessage"`
}

var resultDir = regexp.MustCompile(`^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$`)

// runConformance runs every active server scenario against url and
// returns each scenario's checks.
func runConformance(node, suite, url, out string) (map[string][]check, error) {
	cmd := exec.Command(node, suite, "server", "--url", url, "-o", out)
	cmd.Dir = out
	log, err := cmd.CombinedOutput()
	if _, exit := err.(*exec.ExitError); err != nil && !exit {
		return nil, fmt.Errorf("conformance suite: %v\n%s", err, log)
	}
	// It exits 1 when checks fail: the reference server is not the
	// suite's own test server and fails some; what matters is the same
	// outcome both ways.
	entries, err := os.ReadDir(out)
	if err != nil {
		return nil, err
	}
	res := map[string][]check{}
	for _, e := range entries {
		m := resultDir.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(out, e.Name(), "checks.json"))
		if err != nil {
			return nil, err
		}
		var cs []check
		if err := json.Unmarshal(b, &cs); err != nil {
			return nil, fmt.Errorf("%s: %v", e.Name(), err)
		}
		res[m[1]] = cs
	}
	if len(res) < 20 {
		return nil, fmt.Errorf("the suite ran %d scenarios against %s:\n%s", len(res), url, log)
	}
	return res, nil
}

// compareConformance runs the suite against both endpoints at once (each
// run spends most of its time starting processes) and compares.
func compareConformance(t *testing.T, what, node, suite, direct, gateway string) {
	t.Helper()
	var res [2]map[string][]check
	var errs [2]error
	var wg sync.WaitGroup
	for i, url := range []string{direct, gateway} {
		out := t.TempDir()
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = runConformance(node, suite, url, out)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	sameResults(t, what, res[0], res[1])
}

// sameResults compares two runs scenario by scenario, check by check
// (id, name, status), and logs the table.
func sameResults(t *testing.T, what string, direct, gateway map[string][]check) {
	t.Helper()
	var names []string
	for s := range direct {
		names = append(names, s)
	}
	for s := range gateway {
		if _, ok := direct[s]; !ok {
			names = append(names, s)
		}
	}
	sort.Strings(names)
	var table strings.Builder
	passed, failed := 0, 0
	for _, s := range names {
		d, g := direct[s], gateway[s]
		key := func(cs []check) []string {
			var k []string
			for _, c := range cs {
				k = append(k, c.ID+"/"+c.Name+"="+c.Status)
			}
			return k
		}
		if !slices.Equal(key(d), key(g)) {
			t.Errorf("%s, scenario %s differs:\n direct:  %v\n gateway: %v\n gateway errors: %v", what, s, key(d), key(g), messages(g))
		}
		status := "pass"
		for _, c := range d {
			if c.Status == "FAILURE" {
				status = "FAIL (" + c.ErrorMessage + ")"
			}
		}
		if status == "pass" {
			passed++
		} else {
			failed++
		}
		fmt.Fprintf(&table, "  %-32s %d checks  %s\n", s, len(d), status)
	}
	t.Logf("%s: %d scenarios, the same %d passed and %d failed with and without the gateway:\n%s", what, len(names), passed, failed, table.String())
}

func messages(cs []check) []string {
	var m []string
	for _, c := range cs {
		if c.ErrorMessage != "" {
			m = append(m, c.ID+": "+c.ErrorMessage)
		}
	}
	return m
}

func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// startProcess starts cmd, kills it when the test ends, and then shows
// its output if the test failed.
func startProcess(t *testing.T, cmd *exec.Cmd, name string) {
	t.Helper()
	var out syncBuffer
	if cmd.Stdout == nil {
		cmd.Stdout = &out
	}
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
}

// bridge serves the stdio command over Streamable HTTP with supergateway
// (a process per session) and returns its MCP endpoint.
func bridge(t *testing.T, node, gateway string, command []string, env []string) string {
	t.Helper()
	addr := freeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command(node, gateway, "--stdio", shellQuote(command), "--outputTransport", "streamableHttp",
		"--stateful", "--port", port, "--logLevel", "info")
	cmd.Env = append(os.Environ(), env...)
	startProcess(t, cmd, "supergateway ("+shellQuote(command)+")")
	// Node.js loads some 200 modules first: on a busy machine that takes
	// longer than waitListening's bound.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("supergateway does not listen on %s", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://127.0.0.1:" + port + "/mcp"
}

func TestMCPConformanceThroughGateway(t *testing.T) {
	everything := mcptest.StdioCommand(t)
	node := npmtest.Node(t)
	suite := filepath.Join(npmtest.Module(t, "conformance", "@modelcontextprotocol/conformance"), "dist", "index.js")
	gateway := filepath.Join(npmtest.Module(t, "conformance", "supergateway"), "dist", "index.js")

	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	srv := startServer(t, data, nil)
	owner, ingest := ownerToken(t, data), ingestToken(t, data)
	policy := filepath.Join(dir, "policy.json")
	os.WriteFile(policy, []byte(testPolicy), 0o600)
	proxyArgs := []string{"mcp-proxy", "--server", srv.url, "--policy", policy, "--spool", filepath.Join(dir, "spool")}
	tokenEnv := []string{"VERITRAIL_TOKEN=" + ingest}

	t.Run("transports", func(t *testing.T) {
		t.Run("streamable-http", func(t *testing.T) {
			t.Parallel()
			upstream := mcptest.StartHTTP(t)
			listen := freeAddr(t)
			cmd := exec.Command(binary, append(proxyArgs, "--connector", "everything-http", "--listen", listen, "--upstream", upstream)...)
			cmd.Env = append(os.Environ(), tokenEnv...)
			startProcess(t, cmd, "proxy")
			waitListening(t, listen)
			compareConformance(t, "Streamable HTTP", node, suite, upstream, "http://"+listen+"/mcp")
		})
		t.Run("stdio", func(t *testing.T) {
			t.Parallel()
			proxied := append([]string{binary}, append(proxyArgs, "--connector", "everything-stdio", "--")...)
			compareConformance(t, "stdio", node, suite, bridge(t, node, gateway, everything, nil),
				bridge(t, node, gateway, append(proxied, everything...), tokenEnv))
		})
	})

	// The gateway was in the path: it recorded the suite's tool calls
	// through both transports.
	recs, _ := toolCalls(t, srv, owner)
	seen := map[string]int{}
	for _, r := range recs {
		seen[r.Connector]++
	}
	if seen["everything-http"] == 0 || seen["everything-stdio"] == 0 {
		t.Fatalf("records by connector: %v", seen)
	}
}
