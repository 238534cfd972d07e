// Command veritrail is the Veritrail server, CLI and tools in one binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands []command

func init() {
	commands = []command{
		{"serve", "run the server (default store: ./veritrail-data)", runServe},
		{"org", "create or list organizations (org create NAME | org list)", runOrg},
		{"token", "create, list or revoke API tokens", runToken},
		{"demo", "generate the sample organization's events (print or send to a server)", runDemo},
		{"bench", "load-test ingest over HTTP and report events/s and latency", runBench},
		{"db", "place a PostgreSQL store's tables on a Citus cluster (db distribute --db URL)", runDB},
		{"key", "print the verifier key of an organization's log", runKey},
		{"verify", "verify logs (--data DIR, --db URL, --server URL, --bundle FILE) or one event (--event FILE)", runVerify},
		{"sink", "manage forwarding sinks over the API (create, list, show, update, pause, resume, delete)", runSink},
		{"monitor", "follow logs from outside (tiles, witnesses) and alert on a fork, a rollback or a stall", runMonitor},
		{"mcp-proxy", "MCP gateway: record, allow, block or redact an agent's tool calls (stdio or HTTP)", runMCPProxy},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: veritrail COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'veritrail COMMAND -h' for the flags of a command.\n")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			if err != nil {
				fmt.Fprintf(stderr, "veritrail %s: %v\n", c.name, err)
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(stderr, "veritrail: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}
