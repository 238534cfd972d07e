package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/veritrail/veritrail/mcp"
)

// serverPolicy is mcp-proxy's --policy server: the organization's MCP
// policy, held by the Veritrail server (settings.mcp_policy), fetched at
// start and every refresh interval. The last policy fetched is kept in the
// spool directory, so a proxy started while the server is unreachable
// enforces it too.
type serverPolicy struct {
	server, token, cache string
	log                  *slog.Logger
	last                 []byte // the policy JSON in force ("null": none)
}

// unavailablePolicy blocks every call: a fail-closed proxy with no policy
// from the server yet and none kept.
func unavailablePolicy() *mcp.Policy {
	p, err := mcp.ParsePolicy([]byte(`{"name": "server-policy-unavailable", "default": "block", "rules": [{"name": "server-policy-unavailable",
		"action": "block", "reason": "the organization's MCP policy could not be fetched from the Veritrail server and none was kept (--fail closed)"}]}`))
	if err != nil {
		panic(err) // a constant
	}
	return p
}

// fetch asks the server for the policy: its JSON ("null" when none is held).
func (sp *serverPolicy) fetch(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(sp.server, "/")+"/api/v1/mcp/policy", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+sp.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v1/mcp/policy: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	var out struct {
		Policy json.RawMessage `json:"policy"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("GET /api/v1/mcp/policy: %w", err)
	}
	if len(out.Policy) == 0 {
		out.Policy = json.RawMessage("null")
	}
	return out.Policy, nil
}

// parseServerPolicy reads a policy fetched from the server; nil for none.
func parseServerPolicy(raw []byte) (*mcp.Policy, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	p, err := mcp.ParsePolicy(raw)
	if err != nil {
		return nil, err
	}
	var named struct{ Name string }
	if json.Unmarshal(raw, &named); named.Name == "" {
		p.Name = "org-policy"
	}
	return p, nil
}

// initial returns the policy to start with: the server's, else the one
// kept from an earlier run, else (fail-closed) one that blocks every call
// or (fail-open) none.
func (sp *serverPolicy) initial(ctx context.Context, failClosed bool) *mcp.Policy {
	raw, err := sp.fetch(ctx)
	var p *mcp.Policy
	if err == nil {
		if p, err = parseServerPolicy(raw); err == nil {
			sp.keep(raw)
			sp.log.Info("policy from the server", slog.String("policy", policyName(p)))
			return p
		}
	}
	sp.log.Warn("could not fetch the organization's MCP policy; retrying in the background", slog.Any("err", err))
	if raw, rerr := os.ReadFile(sp.cache); rerr == nil {
		if p, perr := parseServerPolicy(raw); perr == nil {
			sp.last = raw
			sp.log.Warn("enforcing the policy kept from an earlier fetch", slog.String("policy", policyName(p)), slog.String("file", sp.cache))
			return p
		}
	}
	if failClosed {
		sp.log.Warn("no policy yet and --fail closed: every call is blocked until the server answers")
		return unavailablePolicy()
	}
	sp.log.Warn("no policy yet and --fail open: calls are allowed (and recorded) until the server answers")
	return nil
}

// refresh fetches the policy every interval and swaps it in when it
// changed; a failed fetch keeps the policy in force.
func (sp *serverPolicy) refresh(ctx context.Context, g *mcp.Gateway, every time.Duration) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		raw, err := sp.fetch(ctx)
		if err != nil {
			if ctx.Err() == nil {
				sp.log.Warn("MCP policy not refreshed; the current one stays in force", slog.Any("err", err))
			}
			continue
		}
		if bytes.Equal(raw, sp.last) {
			continue
		}
		p, err := parseServerPolicy(raw)
		if err != nil {
			sp.log.Warn("the server's MCP policy does not parse; the current one stays in force", slog.Any("err", err))
			continue
		}
		g.SetPolicy(p)
		sp.keep(raw)
		sp.log.Info("MCP policy changed on the server; now enforcing it", slog.String("policy", policyName(p)))
	}
}

// keep remembers raw as the policy in force, on disk too.
func (sp *serverPolicy) keep(raw []byte) {
	sp.last = raw
	if err := os.MkdirAll(filepath.Dir(sp.cache), 0o700); err == nil {
		tmp := sp.cache + ".tmp"
		if err = os.WriteFile(tmp, raw, 0o600); err == nil {
			err = os.Rename(tmp, sp.cache)
		}
		if err != nil {
			sp.log.Warn("could not keep the MCP policy on disk", slog.Any("err", err))
		}
	}
}

func policyName(p *mcp.Policy) string {
	if p == nil {
		return "(none: every call allowed, no decision recorded)"
	}
	return p.Name
}
