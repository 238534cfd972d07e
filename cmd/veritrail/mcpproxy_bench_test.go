package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/veritrail/veritrail/mcp/mcptest"
)

// BenchmarkMCPProxy measures an echo tool call of server-everything made
// by the Go SDK client directly and through `veritrail mcp-proxy` (policy
// evaluated, record built and fsynced to the spool before the answer goes
// back, records sent to a running Veritrail server). The difference of the
// medians is the latency the gateway adds per call.
//
//	go test ./cmd/veritrail -run '^$' -bench MCPProxy -benchtime 2000x
func BenchmarkMCPProxy(b *testing.B) {
	dir := b.TempDir()
	data := filepath.Join(dir, "data")
	addr := freeAddrB(b)
	srv := exec.Command(binary, "serve", "--addr", addr, "--data", data, "--log-level", "warn")
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, err := exec.Command(binary, "token", "create", "--org", "default", "--role", "ingest", "--data", data).Output()
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	token := lines[len(lines)-1]
	policy := filepath.Join(dir, "policy.json")
	os.WriteFile(policy, []byte(testPolicy), 0o600)
	proxyArgs := func(extra ...string) []string {
		return append([]string{"mcp-proxy", "--server", "http://" + addr, "--token", token, "--policy", policy,
			"--spool", filepath.Join(dir, "spool"), "--log-level", "warn"}, extra...)
	}
	stdio := mcptest.StdioCommand(b)

	run := func(b *testing.B, t sdk.Transport) {
		ctx := context.Background()
		cs, err := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, nil).Connect(ctx, t, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer cs.Close()
		params := &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "benchmark payload of a typical size, a sentence or two of text"}}
		for range 50 { // warm up (JIT of the node server, connections)
			if _, err := cs.CallTool(ctx, params); err != nil {
				b.Fatal(err)
			}
		}
		durs := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			if _, err := cs.CallTool(ctx, params); err != nil {
				b.Fatal(err)
			}
			durs = append(durs, time.Since(start))
		}
		b.StopTimer()
		slices.Sort(durs)
		b.ReportMetric(float64(durs[len(durs)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(durs[len(durs)*9/10].Microseconds()), "p90-µs")
		b.ReportMetric(float64(durs[len(durs)*99/100].Microseconds()), "p99-µs")
	}

	b.Run("stdio/direct", func(b *testing.B) {
		run(b, &sdk.CommandTransport{Command: exec.Command(stdio[0], stdio[1:]...)})
	})
	b.Run("stdio/proxy", func(b *testing.B) {
		run(b, &sdk.CommandTransport{Command: exec.Command(binary, append(proxyArgs("--"), stdio...)...)})
	})

	upstream := mcptest.StartHTTP(b)
	listen := freeAddrB(b)
	proxy := exec.Command(binary, proxyArgs("--listen", listen, "--upstream", upstream)...)
	if err := proxy.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { proxy.Process.Kill(); proxy.Wait() })
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err := http.Get("http://" + listen + "/"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("proxy did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Run("http/direct", func(b *testing.B) {
		run(b, &sdk.StreamableClientTransport{Endpoint: upstream, DisableStandaloneSSE: true})
	})
	b.Run("http/proxy", func(b *testing.B) {
		run(b, &sdk.StreamableClientTransport{Endpoint: "http://" + listen + "/mcp", DisableStandaloneSSE: true})
	})
}

func freeAddrB(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
