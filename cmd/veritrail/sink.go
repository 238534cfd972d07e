package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/metrics"
	"github.com/veritrail/veritrail/sink"
	"github.com/veritrail/veritrail/sink/all"
)

// newSinkEngine builds the forwarding engine of a server: the master key
// seals sink secrets; on a store shared by several nodes a lease per sink
// picks the node that delivers it.
func newSinkEngine(store veritrail.Store, dataDir string, keys keyFiles, log *slog.Logger, m *metrics.Metrics, opts sink.Options) (*sink.Engine, error) {
	key, err := masterKey(dataDir, keys)
	if err != nil {
		return nil, err
	}
	opts.Store, opts.Key, opts.Types, opts.Logger, opts.Observer = store, key, all.Types(), log, m
	opts.MayDeliver = sinkLeases(store, log)
	return sink.New(opts)
}

// sinkLeases returns the engine's MayDeliver for a store shared by several
// nodes (nil otherwise): this node delivers a sink while it holds the
// sink's lease.
func sinkLeases(store veritrail.Store, log *slog.Logger) func(context.Context, int64, string) bool {
	held := leases(store, "sink", log)
	if held == nil {
		return nil
	}
	return func(ctx context.Context, org int64, id string) bool {
		return held(ctx, fmt.Sprintf("sink/%d/%s", org, id))
	}
}

// veritrail sink: manage an organization's sinks through the HTTP API.

const sinkUsage = `Usage:
  veritrail sink create (--json '{…}' | --file spec.json) [--secret-file FILE]
  veritrail sink list
  veritrail sink show ID
  veritrail sink update ID (--json '{…}' | --file patch.json) [--secret-file FILE]
  veritrail sink pause ID | resume ID | delete ID

Every command takes --server URL (env VERITRAIL_SERVER) and --token T (env
VERITRAIL_TOKEN), an owner's or admin's token. A sink's settings are in
docs/FORWARDING.md. --secret-file reads the sink's secret (HEC token, API
key, HMAC key) from a file so it appears in no command line; it is sent
once and stored sealed.
`

func runSink(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, sinkUsage)
		if len(args) == 0 {
			return errors.New("a subcommand is required")
		}
		return nil
	}
	sub := args[0]
	switch sub {
	case "create", "list", "show", "update", "pause", "resume", "delete":
	default:
		fmt.Fprint(stderr, sinkUsage)
		return fmt.Errorf("unknown subcommand %q", sub)
	}
	var cfg sinkConfig
	// Flags may come before or after the id.
	pos, err := cfg.settings(sub).ParseInterspersed(args[1:])
	if err != nil {
		return err
	}
	c, err := cfg.client.api("an owner's or admin's token")
	if err != nil {
		return err
	}
	body := func() ([]byte, error) {
		var b []byte
		switch {
		case cfg.json != "":
			b = []byte(cfg.json)
		case cfg.file != "":
			var err error
			if b, err = os.ReadFile(cfg.file); err != nil {
				return nil, err
			}
		default:
			b = []byte("{}")
		}
		// Raw values: the settings go to the server as written (numbers
		// are not rounded through float64).
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("the settings are not a JSON object: %w", err)
		}
		if m == nil { // null: no object to add the secret to
			return nil, errors.New("the settings are not a JSON object: null")
		}
		if cfg.secretFile != "" {
			s, err := os.ReadFile(cfg.secretFile)
			if err != nil {
				return nil, err
			}
			m["secret"], _ = json.Marshal(strings.TrimSpace(string(s)))
		}
		return json.Marshal(m)
	}
	id := func() (string, error) {
		if len(pos) != 1 {
			return "", fmt.Errorf("sink %s takes one sink id (ids are in `veritrail sink list`)", sub)
		}
		return pos[0], nil
	}
	if (sub == "create" || sub == "list") && len(pos) > 0 {
		return fmt.Errorf("sink %s takes no argument %q; its settings go in --json or --file", sub, pos[0])
	}
	switch sub {
	case "create":
		b, err := body()
		if err != nil {
			return err
		}
		return c.print(ctx, stdout, "POST", "/api/v1/sinks", b)
	case "list":
		var out struct {
			Data []sink.View `json:"data"`
		}
		if err := c.call(ctx, "GET", "/api/v1/sinks", nil, &out); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tTYPE\tSTATE\tLAST SEQ\tLAG EVENTS\tLAG SECONDS\tLAST ERROR")
		for _, v := range out.Data {
			last := "-"
			if v.Delivered != nil {
				last = fmt.Sprint(*v.Delivered)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%.1f\t%s\n", v.ID, v.Name, v.Type, v.State, last, v.LagEvents, v.LagSeconds, v.LastError)
		}
		return tw.Flush()
	case "show":
		i, err := id()
		if err != nil {
			return err
		}
		return c.print(ctx, stdout, "GET", "/api/v1/sinks/"+i, nil)
	case "update", "pause", "resume":
		i, err := id()
		if err != nil {
			return err
		}
		b := []byte(`{"paused":true}`)
		if sub == "resume" {
			b = []byte(`{"paused":false}`)
		}
		if sub == "update" {
			if b, err = body(); err != nil {
				return err
			}
		}
		return c.print(ctx, stdout, "PATCH", "/api/v1/sinks/"+i, b)
	case "delete":
		i, err := id()
		if err != nil {
			return err
		}
		if err := c.call(ctx, "DELETE", "/api/v1/sinks/"+i, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted %s\n", i)
		return nil
	}
	return nil
}

// apiClient calls the native API with a bearer token.
type apiClient struct {
	base, token string
}

func (c *apiClient) call(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message, Field string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return &apiError{status: resp.StatusCode, code: e.Error.Code, message: e.Error.Message, field: e.Error.Field}
		}
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// apiError is the API's error answer: its message, code, and the field
// it names, if any.
type apiError struct {
	status               int
	code, message, field string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d, %s)", e.message, e.status, e.code)
}

// print calls and writes the answer as indented JSON.
func (c *apiClient) print(ctx context.Context, w io.Writer, method, path string, body []byte) error {
	var raw json.RawMessage
	if err := c.call(ctx, method, path, body, &raw); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}
