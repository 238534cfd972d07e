package main

import (
	"bufio"
	"bytes"
	"context"
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
	var c demoConfig
	if err := c.settings().ParseFlagsOnly(args); err != nil {
		return err
	}
	at := time.Now().UTC().Truncate(time.Minute)
	if !c.anchor.IsZero() {
		at = c.anchor.UTC()
	}
	opts := demo.Options{Seed: c.seed, Anchor: at, Days: c.days, Count: c.count}
	if c.print {
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
	tok, err := bootstrapTokenIfNone(c.client.token, c.data)
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
		if err := postNDJSON(ctx, client, c.client.server, tok, body.Bytes()); err != nil {
			return err
		}
		sent += lines
		body.Reset()
		lines = 0
		fmt.Fprintf(stderr, "\rsent %d/%d events", sent, c.count)
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
	fmt.Fprintf(stdout, "Sent %d demo events to %s in %s.\n", sent, c.client.server, time.Since(start).Round(time.Millisecond))
	return nil
}

// bootstrapTokenIfNone returns the token given (--token, VERITRAIL_TOKEN),
// else the one in the data directory's bootstrap-token file.
func bootstrapTokenIfNone(given, dataDir string) (string, error) {
	if given != "" {
		return given, nil
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
