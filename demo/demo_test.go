package demo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/veritrail/veritrail"
)

var anchor = time.Date(2026, 6, 20, 15, 4, 5, 123456789, time.UTC)

func generate(t testing.TB, opts Options) [][]byte {
	t.Helper()
	var out [][]byte
	err := Generate(opts, func(line []byte) error {
		out = append(out, bytes.Clone(line))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// decode validates lines through the ingest decoder, in batches under its
// per-request limit, and returns the normalized events.
func decode(t testing.TB, lines [][]byte, now time.Time) []*veritrail.Event {
	t.Helper()
	var out []*veritrail.Event
	for start := 0; start < len(lines); start += 5000 {
		batch := lines[start:min(start+5000, len(lines))]
		var ndjson strings.Builder
		for i, l := range batch {
			if !json.Valid(l) {
				t.Fatalf("line %d is not valid JSON: %s", start+i, l)
			}
			if bytes.IndexByte(l, '\n') >= 0 {
				t.Fatalf("line %d holds a newline: %s", start+i, l)
			}
			ndjson.Write(l)
			ndjson.WriteByte('\n')
		}
		d := veritrail.NewDecoder(strings.NewReader(ndjson.String()), veritrail.DefaultLimits, now)
		for {
			e, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				var ve *veritrail.Error
				if errors.As(err, &ve) && ve.Index >= 0 && ve.Index < len(batch) {
					t.Fatalf("event %d: %v\n%s", start+ve.Index, err, batch[ve.Index])
				}
				t.Fatalf("batch at %d: %v", start, err)
			}
			out = append(out, e)
		}
	}
	if len(out) != len(lines) {
		t.Fatalf("decoded %d events from %d lines", len(out), len(lines))
	}
	return out
}

func TestDeterministic(t *testing.T) {
	opts := Options{Seed: 7, Anchor: anchor, Count: 3000}
	a := bytes.Join(generate(t, opts), []byte("\n"))
	b := bytes.Join(generate(t, opts), []byte("\n"))
	if !bytes.Equal(a, b) {
		t.Fatal("two runs with the same options differ")
	}
	opts.Seed = 8
	if c := bytes.Join(generate(t, opts), []byte("\n")); bytes.Equal(a, c) {
		t.Fatal("a different seed gives the same output")
	}
}

func TestGenerateValidates(t *testing.T) {
	lines := generate(t, Options{Seed: 1, Anchor: anchor})
	if len(lines) != 20000 {
		t.Fatalf("got %d events, want the default 20000", len(lines))
	}
	decode(t, lines, anchor)
}

func TestCountOrderIDs(t *testing.T) {
	for _, opts := range []Options{
		{Seed: 3, Anchor: anchor, Count: 5000, Days: 30},
		{Seed: 4, Anchor: anchor, Count: 700, Days: 1, IDPrefix: "acme:"},
		{Seed: 5, Anchor: anchor.Truncate(time.Second), Count: 20, Days: 90},
	} {
		t.Run(fmt.Sprintf("%d/%dd", opts.Count, opts.Days), func(t *testing.T) {
			events := decode(t, generate(t, opts), anchor)
			if len(events) != opts.Count {
				t.Fatalf("got %d events, want %d", len(events), opts.Count)
			}
			prefix := opts.IDPrefix
			if prefix == "" {
				prefix = "demo-"
			}
			oldest := opts.Anchor.Add(-time.Duration(opts.Days) * 24 * time.Hour)
			seen := map[string]bool{}
			for i, e := range events {
				if want := fmt.Sprintf("%s%06d", prefix, i+1); e.ID != want {
					t.Fatalf("event %d has id %q, want %q", i, e.ID, want)
				}
				if seen[e.ID] {
					t.Fatalf("duplicate id %q", e.ID)
				}
				seen[e.ID] = true
				if !e.Time.After(oldest) || e.Time.After(opts.Anchor) {
					t.Fatalf("event %s at %s is outside (%s, %s]", e.ID, e.Time, oldest, opts.Anchor)
				}
				if i > 0 && e.Time.Before(events[i-1].Time) {
					t.Fatalf("event %s at %s is before the previous one at %s", e.ID, e.Time, events[i-1].Time)
				}
			}
		})
	}
}

func TestCoverage(t *testing.T) {
	lines := generate(t, Options{Seed: 1, Anchor: anchor})
	events := decode(t, lines, anchor)
	types, cats := map[string]int{}, map[string]int{}
	decisions, outcomes, actors := map[string]int{}, map[string]int{}, map[string]int{}
	var toolCalls, blocked, redacted int
	for i, e := range events {
		types[e.Type]++
		cats[e.Category()]++
		outcomes[e.Outcome]++
		actors[e.Actor.Type]++
		if e.Decision != nil {
			decisions[e.Decision.Action]++
		}
		if e.Type == "agent.tool_call" {
			toolCalls++
			if e.Connector == "" || e.Tool == "" || e.Status == nil || e.DurationMS == nil || e.Decision == nil {
				t.Fatalf("tool call without connector, tool, status, duration or decision: %s", lines[i])
			}
			switch e.Decision.Action {
			case "blocked":
				blocked++
			case "redacted":
				redacted++
				if !bytes.Contains(e.Content, []byte("[REDACTED:")) {
					t.Fatalf("redacted tool call without a [REDACTED:…] marker: %s", lines[i])
				}
			}
		}
		if strings.HasPrefix(e.Type, "task.") || e.Type == "agent.action" {
			if e.TaskID == "" || e.AgentID == "" {
				t.Fatalf("%s without task_id or agent_id: %s", e.Type, lines[i])
			}
		}
		if e.Type == "ai.interaction" && e.SessionID == "" {
			t.Fatalf("AI interaction without a session: %s", lines[i])
		}
	}
	for _, c := range []string{"authentication", "auth", "board", "template", "team", "billing", "integration",
		"approval", "task", "agent", "ai", "settings", "organization"} {
		if cats[c] == 0 {
			t.Errorf("no event of category %s", c)
		}
	}
	for _, typ := range []string{
		"authentication.sign_in_succeeded", "authentication.sign_in_failed", "authentication.sign_out_succeeded",
		"auth.login", "auth.logout", "auth.sso", "auth.api_key_created", "auth.api_key_deleted",
		"board.board_created", "board.board_opened", "board.board_shared_for_editing", "board.board_deleted",
		"template.template_opened",
		"team.member_invited", "team.member_role_changed", "team.member_removed",
		"billing.plan_upgraded", "billing.plan_downgraded", "billing.usage_alert_triggered",
		"integration.connected", "integration.disconnected", "integration.credential_refresh",
		"approval.requested", "approval.approved", "approval.denied",
		"task.created", "task.started", "task.completed", "task.failed", "task.cancelled",
		"agent.action", "agent.tool_call", "ai.interaction", "ai.moderation_blocked", "ai.prompt_blocked",
		"settings.changed", "organization.organization_sso_settings_changed", "user.user_locked",
	} {
		if types[typ] == 0 {
			t.Errorf("no event of type %s", typ)
		}
	}
	for _, d := range []string{"allowed", "blocked", "redacted"} {
		if decisions[d] == 0 {
			t.Errorf("no decision %s", d)
		}
	}
	for _, o := range []string{"success", "failure"} {
		if outcomes[o] == 0 {
			t.Errorf("no outcome %s", o)
		}
	}
	for _, a := range []string{"user", "agent", "service", "api_key", "system"} {
		if actors[a] == 0 {
			t.Errorf("no actor of type %s", a)
		}
	}
	if b := float64(blocked) / float64(toolCalls); b < 0.03 || b > 0.08 {
		t.Errorf("%.1f%% of tool calls blocked, want about 5%%", 100*b)
	}
	if r := float64(redacted) / float64(toolCalls); r < 0.015 || r > 0.05 {
		t.Errorf("%.1f%% of tool calls redacted, want about 3%%", 100*r)
	}
	t.Logf("%d types, %d tool calls (%d blocked, %d redacted), outcomes %v", len(types), toolCalls, blocked, redacted, outcomes)
}

// TestStorylines checks that the incidents an investigator is meant to find
// are there.
func TestStorylines(t *testing.T) {
	events := decode(t, generate(t, Options{Seed: 11, Anchor: anchor}), anchor)
	var exportBlocked, sprayFailures, leakedKeyCalls, failedTasks, contentMissing int
	var aiOn time.Time
	for _, e := range events {
		ip := ""
		if e.Context != nil {
			ip = e.Context.IP
		}
		switch {
		case e.Type == "settings.changed" && e.Target != nil && e.Target.ID == "ai_interaction_logs.collect":
			aiOn = e.Time
		case strings.HasPrefix(e.Type, "ai.") && (aiOn.IsZero() || e.Time.Before(aiOn)):
			t.Errorf("%s %s at %s before AI interaction logs were switched on", e.Type, e.ID, e.Time)
		case e.Tool == "export_contacts" && e.Actor.Email == "derek.olsen@acme.example" && e.Decision.Action == "blocked":
			exportBlocked++
		case e.Type == "authentication.sign_in_failed" && ip == ipSpray:
			sprayFailures++
		case e.Actor.Type == "api_key" && ip == ipLeakedKey:
			leakedKeyCalls++
		case e.Type == "task.failed":
			failedTasks++
		}
		if e.Content == nil {
			contentMissing++
		}
	}
	if aiOn.IsZero() {
		t.Error("AI interaction logs are never switched on")
	}
	if exportBlocked < 3 || sprayFailures < 50 || leakedKeyCalls < 5 || failedTasks < 3 {
		t.Errorf("storylines missing: %d blocked exports by Derek, %d sign-in failures from %s, %d calls with the leaked key, %d failed tasks",
			exportBlocked, sprayFailures, ipSpray, leakedKeyCalls, failedTasks)
	}
	if contentMissing > 0 {
		t.Errorf("%d events without content", contentMissing)
	}
}

func TestGenerateOptions(t *testing.T) {
	if err := Generate(Options{Seed: 1}, func([]byte) error { return nil }); err == nil {
		t.Error("no error without an anchor")
	}
	if err := Generate(Options{Anchor: anchor, IDPrefix: "bad prefix "}, func([]byte) error { return nil }); err == nil {
		t.Error("no error for an id prefix with spaces")
	}
	stop := errors.New("stop")
	n := 0
	err := Generate(Options{Anchor: anchor, Count: 100}, func([]byte) error {
		n++
		if n == 10 {
			return stop
		}
		return nil
	})
	if err != stop || n != 10 {
		t.Errorf("emit error: got %v after %d events, want %v after 10", err, n, stop)
	}
}

// TestEveryToolAndMode renders every MCP tool in every mode, so a broken
// template cannot hide behind the dice.
func TestEveryToolAndMode(t *testing.T) {
	g := &gen{r: rand.New(rand.NewPCG(1, 2)), layout: layoutNano}
	var lines [][]byte
	for i := range tools {
		for _, mode := range []string{"allowed", "blocked", "redacted", "error"} {
			if mode == "redacted" && tools[i].pii == "" {
				continue
			}
			for _, c := range []call{
				{user: &people[i%len(people)], agent: &agents[aClaude], session: "s1", tool: &tools[i], mode: mode},
				{agent: &agents[aOncall], task: &taskRun{id: "task_1", agent: &agents[aOncall]}, tool: &tools[i], mode: mode},
			} {
				e := newEvent(fmt.Sprintf("t-%d-%s-%d", i, mode, len(lines)), anchor)
				g.w.b = nil
				g.toolCall(&e, &c)
				lines = append(lines, g.w.b)
			}
		}
	}
	for _, e := range decode(t, lines, anchor) {
		if e.Type != "agent.tool_call" {
			t.Fatalf("type %q", e.Type)
		}
	}
}

func TestEvent(t *testing.T) {
	rnd := rand.New(rand.NewPCG(42, 1))
	base := anchor.Add(-time.Hour)
	var lines [][]byte
	var total int
	var buf []byte
	for i := range 10000 {
		id := fmt.Sprintf("load-%d", i)
		if i%100 == 0 {
			id = ""
		}
		buf = Event(buf[:0], rnd, id, base.Add(time.Duration(i)*time.Millisecond))
		total += len(buf)
		lines = append(lines, bytes.Clone(buf))
	}
	events := decode(t, lines, anchor)
	types := map[string]bool{}
	for i, e := range events {
		types[e.Type] = true
		if i%100 == 0 && bytes.HasPrefix(lines[i], []byte(`{"id":`)) {
			t.Fatalf("event without id has an id field: %s", lines[i])
		}
		if want := base.Add(time.Duration(i) * time.Millisecond); !e.Time.Equal(want) {
			t.Fatalf("event %d at %s, want %s", i, e.Time, want)
		}
	}
	avg := total / len(lines)
	if avg < 500 || avg > 1600 {
		t.Errorf("average event is %d bytes, want 500–1600", avg)
	}
	t.Logf("average %d bytes, %d types", avg, len(types))
}

func BenchmarkEvent(b *testing.B) {
	rnd := rand.New(rand.NewPCG(1, 1))
	t0 := anchor
	var buf []byte
	var n int
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = Event(buf[:0], rnd, "bench-1", t0.Add(time.Duration(i)*time.Millisecond))
		n += len(buf)
	}
	b.SetBytes(int64(n / max(b.N, 1)))
}

func BenchmarkGenerate(b *testing.B) {
	for b.Loop() {
		Generate(Options{Seed: 1, Anchor: anchor}, func([]byte) error { return nil })
	}
}
