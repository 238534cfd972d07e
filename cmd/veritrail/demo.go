package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/veritrail/veritrail/demo"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	print := fs.Bool("print", false, "print the events as NDJSON instead of sending them")
	server := fs.String("server", env("VERITRAIL_SERVER", "http://127.0.0.1:8080"), "server to send the events to (env VERITRAIL_SERVER)")
	token := fs.String("token", "", "bearer token with events:write (default: env VERITRAIL_TOKEN, then <data>/bootstrap-token)")
	data := fs.String("data", env("VERITRAIL_DATA", "./veritrail-data"), "data directory whose bootstrap-token to use")
	count := fs.Int("count", 20000, "number of events")
	days := fs.Int("days", 30, "days the events span, ending now")
	seed := fs.Int64("seed", 1, "random seed (same seed and anchor: same events)")
	anchor := fs.String("anchor", "", "time of the newest event (RFC 3339; default: now)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	at := time.Now().UTC().Truncate(time.Minute)
	if *anchor != "" {
		t, err := time.Parse(time.RFC3339, *anchor)
		if err != nil {
			return fmt.Errorf("--anchor: %w", err)
		}
		at = t.UTC()
	}
	opts := demo.Options{Seed: *seed, Anchor: at, Days: *days, Count: *count}
	if *print {
		w := bufio.NewWriter(stdout)
		err := demo.Generate(opts, func(line []byte) error {
			w.Write(line)
			return w.WriteByte('\n')
		})
		if err != nil {
			return err
		}
		return w.Flush()
	}
	tok, err := resolveToken(*token, *data)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 60 * time.Second}
	var body bytes.Buffer
	sent, lines := 0, 0
	start := time.Now()
	flush := func() error {
		if lines == 0 {
			return nil
		}
		if err := postNDJSON(ctx, client, *server, tok, body.Bytes()); err != nil {
			return err
		}
		sent += lines
		body.Reset()
		lines = 0
		fmt.Fprintf(stderr, "\rsent %d/%d events", sent, *count)
		return nil
	}
	err = demo.Generate(opts, func(line []byte) error {
		body.Write(line)
		body.WriteByte('\n')
		if lines++; lines >= 1000 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	fmt.Fprintln(stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Sent %d demo events to %s in %s.\n", sent, *server, time.Since(start).Round(time.Millisecond))
	return nil
}

// resolveToken returns the flag, VERITRAIL_TOKEN, or the bootstrap token file.
func resolveToken(flagValue, dataDir string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if t, err := secret("VERITRAIL_TOKEN"); err != nil || t != "" {
		return t, err
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "bootstrap-token"))
	if err != nil {
		return "", fmt.Errorf("no token: pass --token, set VERITRAIL_TOKEN, or point --data at the server's data directory (%v)", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// postNDJSON sends one NDJSON batch and checks the answer.
func postNDJSON(ctx context.Context, client *http.Client, server, token string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(server, "/")+"/api/v1/events", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("is the server running at %s? %w", server, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("server answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}
