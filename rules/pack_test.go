package rules

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/sqlite"
)

// TestPackCompiles: every rule of the built-in pack compiles, and all but
// the DLP rule (any event type can carry a DLP finding) say which event
// types they watch, so the evaluator reads only those.
func TestPackCompiles(t *testing.T) {
	env, err := newEnv()
	if err != nil {
		t.Fatal(err)
	}
	specs, err := PackSpecs()
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) < 10 {
		t.Fatalf("%d pack rules", len(specs))
	}
	for _, s := range specs {
		c, err := compile(env, s, true)
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
			continue
		}
		if c.types == nil && s.Name != "builtin: repeated DLP violations by one person" {
			t.Errorf("%s: no event type constraint found", s.Name)
		}
	}
}

// TestPackFires: each rule of the built-in pack, installed as an
// administrator turns it on, raises one alert for the events it exists
// for, and none for a near miss; no other pack rule fires on them.
func TestPackFires(t *testing.T) {
	const (
		oneAccount = "builtin: failed sign-ins for one account"
		oneAddress = "builtin: failed sign-ins from one address"
		bulkExport = "builtin: bulk export by one actor"
		mcpSpike   = "builtin: blocked or redacted MCP tool calls spiking"
		dlpRepeat  = "builtin: repeated DLP violations by one person"
		adminRole  = "builtin: admin role change"
		adminToken = "builtin: new token with admin scope"
		aiOff      = "builtin: AI interaction logging switched off"
		retention  = "builtin: retention shortened"
		verifyFail = "builtin: failed verification"
		offExport  = "builtin: AI logging off, then a bulk export"
	)
	m := time.Minute
	ip := func(addr string) func(*veritrail.Event) {
		return func(e *veritrail.Event) { e.Context = &veritrail.Context{IP: addr} }
	}
	decided := func(action, policy string) func(*veritrail.Event) {
		return func(e *veritrail.Event) { e.Decision = &veritrail.Decision{Action: action, Policy: policy} }
	}
	settings := func(before, after map[string]any) func(*veritrail.Event) {
		return content(map[string]any{"before": before, "after": after})
	}
	retentionOf := func(contentDays, metadataDays int) []any {
		return []any{map[string]any{"category": "*", "content_days": contentDays, "metadata_days": metadataDays},
			map[string]any{"category": "ai", "content_days": 30, "metadata_days": 365}}
	}
	n := func(count int, make func(i int) *veritrail.Event) (out []*veritrail.Event) {
		for i := range count {
			out = append(out, make(i))
		}
		return out
	}
	cases := []struct {
		name   string
		events func(h *harness) []*veritrail.Event
		want   []string
	}{
		{"failed sign-ins for one account", func(h *harness) []*veritrail.Event {
			return n(5, func(i int) *veritrail.Event { return h.ev("auth.login", "u1", time.Duration(i)*50*time.Second, failed) })
		}, []string{oneAccount}},
		{"failed sign-ins for one account/four", func(h *harness) []*veritrail.Event {
			return n(4, func(i int) *veritrail.Event { return h.ev("auth.login", "u1", time.Duration(i)*50*time.Second, failed) })
		}, nil},
		{"password spraying", func(h *harness) []*veritrail.Event {
			return n(20, func(i int) *veritrail.Event {
				return h.ev("auth.login", fmt.Sprintf("u%d", i), time.Duration(i)*20*time.Second, failed, ip("203.0.113.9"))
			})
		}, []string{oneAddress}},
		{"password spraying/nineteen", func(h *harness) []*veritrail.Event {
			return n(19, func(i int) *veritrail.Event {
				return h.ev("auth.login", fmt.Sprintf("u%d", i), time.Duration(i)*20*time.Second, failed, ip("203.0.113.9"))
			})
		}, nil},
		{"bulk export", func(h *harness) []*veritrail.Event {
			return n(3, func(i int) *veritrail.Event { return h.ev("audit.export", "u1", time.Duration(i)*4*m) })
		}, []string{bulkExport}},
		{"bulk export/three actors", func(h *harness) []*veritrail.Event {
			return n(3, func(i int) *veritrail.Event { return h.ev("audit.export", fmt.Sprintf("u%d", i), time.Duration(i)*4*m) })
		}, nil},
		{"MCP calls blocked", func(h *harness) []*veritrail.Event {
			return n(10, func(i int) *veritrail.Event {
				action := []string{"blocked", "redacted"}[i%2]
				return h.ev("agent.tool_call", "svc", time.Duration(i)*30*time.Second, agent("a1", "github"), decided(action, "mcp"))
			})
		}, []string{mcpSpike}},
		{"MCP calls blocked/one allowed", func(h *harness) []*veritrail.Event {
			return n(10, func(i int) *veritrail.Event {
				action := map[bool]string{true: "allowed", false: "blocked"}[i == 9]
				return h.ev("agent.tool_call", "svc", time.Duration(i)*30*time.Second, agent("a1", "github"), decided(action, "mcp"))
			})
		}, nil},
		{"DLP violations", func(h *harness) []*veritrail.Event {
			return n(3, func(i int) *veritrail.Event {
				return h.ev("ai.interaction", "u1", time.Duration(i)*10*m, decided("redacted", []string{"dlp", "dlp-pii", "dlp"}[i]))
			})
		}, []string{dlpRepeat}},
		{"DLP violations/two", func(h *harness) []*veritrail.Event {
			return n(3, func(i int) *veritrail.Event {
				return h.ev("ai.interaction", "u1", time.Duration(i)*10*m, decided("redacted", []string{"dlp", "content-filter", "dlp"}[i]))
			})
		}, nil},
		{"admin created", func(h *harness) []*veritrail.Event {
			return []*veritrail.Event{h.ev("audit.user_created", "u1", 0, content(map[string]any{"role": "admin"}))}
		}, []string{adminRole}},
		{"admin created/auditor", func(h *harness) []*veritrail.Event {
			return []*veritrail.Event{h.ev("audit.user_created", "u1", 0, content(map[string]any{"role": "auditor"}))}
		}, nil},
		{"admin token", func(h *harness) []*veritrail.Event {
			return []*veritrail.Event{h.ev("audit.token_created", "u1", 0,
				content(map[string]any{"role": "admin", "scopes": []string{"auditlogs:read", "admin"}}))}
		}, []string{adminToken}},
		{"admin token/ingest", func(h *harness) []*veritrail.Event {
			return []*veritrail.Event{h.ev("audit.token_created", "u1", 0, content(map[string]any{"role": "ingest", "scopes": []string{"events:write"}}))}
		}, nil},
		{"AI logging off", func(h *harness) []*veritrail.Event {
			return []*veritrail.Event{h.ev("settings.changed", "u1", 0,
				settings(map[string]any{"ai_interaction_logs_enabled": true}, map[string]any{"ai_interaction_logs_enabled": false}))}
		}, []string{aiOff}},
		{"AI logging off/turned on", func(h *harness) []*veritrail.Event {
			return []*veritrail.Event{h.ev("settings.changed", "u1", 0,
				settings(map[string]any{"ai_interaction_logs_enabled": false}, map[string]any{"ai_interaction_logs_enabled": true}))}
		}, nil},
		{"retention shortened", func(h *harness) []*veritrail.Event {
			return []*veritrail.Event{h.ev("settings.changed", "u1", 0,
				settings(map[string]any{"retention": retentionOf(90, 730)}, map[string]any{"retention": retentionOf(30, 730)}))}
		}, []string{retention}},
		{"retention shortened/lengthened", func(h *harness) []*veritrail.Event {
			return []*veritrail.Event{h.ev("settings.changed", "u1", 0,
				settings(map[string]any{"retention": retentionOf(90, 730)}, map[string]any{"retention": retentionOf(180, 1000)}))}
		}, nil},
		{"failed verification", func(h *harness) []*veritrail.Event {
			return []*veritrail.Event{h.ev("integrity.verification", "svc", 0, failed)}
		}, []string{verifyFail}},
		{"failed verification/passed", func(h *harness) []*veritrail.Event {
			return []*veritrail.Event{h.ev("integrity.verification", "svc", 0)}
		}, nil},
		{"AI logging off, then an export", func(h *harness) []*veritrail.Event {
			return []*veritrail.Event{h.ev("settings.changed", "u1", 0,
				settings(map[string]any{"ai_interaction_logs_enabled": true}, map[string]any{"ai_interaction_logs_enabled": false})),
				h.ev("audit.export", "u1", 20*m)}
		}, []string{aiOff, offExport}},
		{"AI logging off, then an export/by another", func(h *harness) []*veritrail.Event {
			return []*veritrail.Event{h.ev("settings.changed", "u1", 0,
				settings(map[string]any{"ai_interaction_logs_enabled": true}, map[string]any{"ai_interaction_logs_enabled": false})),
				h.ev("audit.export", "u2", 20*m)}
		}, []string{aiOff}},
	}
	s, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	covered := map[string]bool{}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, s, fmt.Sprintf("pack-%d", i), nil)
			created, _, err := h.e.BuildPack(context.Background(), h.org.ID, &PackRequest{Enabled: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range created {
				if err := s.CreateRule(context.Background(), r); err != nil {
					t.Fatal(err)
				}
			}
			h.append(c.events(h)...)
			h.sync()
			var got []string
			for _, a := range h.alerts() {
				got = append(got, a.Rule)
			}
			slices.Sort(got)
			want := slices.Clone(c.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("alerts of %v, want %v", got, want)
			}
			for _, w := range want {
				covered[w] = true
			}
		})
	}
	specs, err := PackSpecs()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if !covered[s.Name] {
			t.Errorf("no case shows %q firing", s.Name)
		}
	}
}
