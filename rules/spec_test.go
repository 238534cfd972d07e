package rules

import (
	"context"
	"errors"
	"strings"
	"testing"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/notify"
)

// TestSpecErrors: a bad rule is refused with the field named (and, for
// CEL, the position), nothing else.
func TestSpecErrors(t *testing.T) {
	env, err := newEnv()
	if err != nil {
		t.Fatal(err)
	}
	const ok = `"name":"r","severity":"high"`
	for _, c := range []struct {
		body, field, says string
	}{
		{`{` + ok + `,"kind":"match","condition":"true","windw":"5m"}`, "windw", "unknown field"},
		{`{` + ok + `,"kind":"threshold","condition":"true","threshold":"5","window":"5m"}`, "threshold", "whole number"},
		{`{` + ok + `,"kind":"threshold","condition":"true","threshold":5,"window":"5 minutes"}`, "window", "duration"},
		{`{` + ok + `,"kind":"threshold","condition":"true","threshold":5}`, "window", "required"},
		{`{` + ok + `,"kind":"match","condition":"true","threshold":5}`, "threshold", "does not apply"},
		{`{` + ok + `,"kind":"match","condition":"true","routes":[{"type":"slack","url":"https://x"},{"type":"webhook","uri":"https://x"}]}`, "routes[1].uri", "unknown field"},
		{`{` + ok + `,"kind":"match","condition":"type == "}`, "condition", "line 1, column 9"},
		{`{` + ok + `,"kind":"match","condition":"actor.idd == \"x\""}`, "condition", "undefined field 'idd'"},
		{`{` + ok + `,"kind":"match","condition":"type"}`, "condition", "must be a bool expression"},
		{`{` + ok + `,"kind":"match","condition":"true","group_by":["actor.idd"]}`, "group_by[0]", "undefined field"},
		{`{` + ok + `,"kind":"match","condition":"true","dedup_key":"status"}`, "dedup_key", "must be a string expression"},
		{`{` + ok + `,"kind":"distinct","condition":"true","threshold":3,"window":"5m"}`, "field", "required"},
		{`{` + ok + `,"kind":"sequence","steps":["true"],"window":"5m"}`, "steps", "2 to 5"},
		{`{` + ok + `,"kind":"sequence","steps":["true","tpe == 1"],"window":"5m"}`, "steps[1]", "undeclared reference"},
		{`{"name":"r","severity":"urgent","kind":"match","condition":"true"}`, "severity", "one of"},
		{`{` + ok + `,"kind":"count","condition":"true"}`, "kind", "one of"},
		{`{` + ok + `,"kind":"match","condition":"true","pack":"builtin"}`, "pack", "set by the server"},
	} {
		s, err := DecodeSpec([]byte(c.body))
		if err == nil {
			if s.Pack != "" {
				err = invalid("pack", "is set by the server")
			} else {
				_, err = compile(env, s, true)
			}
		}
		var ve *veritrail.Error
		if !asError(err, &ve) || ve.Field != c.field || !strings.Contains(ve.Message, c.says) || ve.Code != veritrail.EInvalid {
			t.Errorf("%s:\n got %v (field %q), want field %q saying %q", c.body, err, fieldOfErr(ve), c.field, c.says)
		}
	}
}

func fieldOfErr(e *veritrail.Error) string {
	if e == nil {
		return ""
	}
	return e.Field
}

func TestParseFile(t *testing.T) {
	env := map[string]string{"SLACK_URL": "https://hooks.slack.com/services/T/B/secret"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	file := `
# two documents: a mapping with rules, then a single rule
rules:
  - name: a
    kind: threshold
    condition: type == "auth.login"
    threshold: 5
    window: 5m
    severity: high
    routes:
      - type: slack
        url: ${SLACK_URL}
      - type: webhook
        url: https://siem.example/in
---
name: b
kind: match
condition: "true"
severity: low
enabled: false
`
	rs, err := ParseFile([]byte(file), lookup)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Name != "a" || rs[1].Name != "b" || rs[0].Line != 4 {
		t.Fatalf("rules: %+v", rs)
	}
	s, err := DecodeSpec(rs[0].JSON)
	if err != nil || s.Threshold != 5 || s.Window.String() != "5m" || s.Routes[0].URL != env["SLACK_URL"] {
		t.Fatalf("first rule: %+v %v", s, err)
	}
	if s, err := DecodeSpec(rs[1].JSON); err != nil || s.IsEnabled() {
		t.Fatalf("second rule: %+v %v", s, err)
	}
	if l := rs[0].LineOf("routes[1].url"); l != 14 {
		t.Errorf("line of routes[1].url: %d, want 14", l)
	}
	if l := rs[0].LineOf("window"); l != 8 {
		t.Errorf("line of window: %d, want 8", l)
	}
	if l := rs[0].LineOf("runbook"); l != 4 {
		t.Errorf("line of a field not written: %d, want the rule's (4)", l)
	}
	if _, err := ParseFile([]byte("- name: x\n  url: ${NOPE}\n"), lookup); err == nil || !strings.Contains(err.Error(), "NOPE") {
		t.Fatalf("a missing variable: %v", err)
	}
	if _, err := ParseFile([]byte("- name: x\n  name: y\n"), lookup); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("a duplicate key: %v", err)
	}
	if _, err := ParseFile([]byte("just text"), lookup); err == nil {
		t.Fatal("a scalar file was accepted")
	}
}

func FuzzDecodeSpec(f *testing.F) {
	for _, s := range []string{
		`{"name":"r","kind":"match","condition":"true","severity":"low"}`,
		`{"name":"r","kind":"threshold","condition":"type == \"a.b\"","group_by":["actor.id"],"threshold":3,"window":"5m","severity":"high","routes":[{"type":"webhook","url":"https://x.example","secret":"0123456789abcdefg"}]}`,
		`{"name":"r","kind":"sequence","steps":["true","false"],"window":"1h","severity":"critical"}`,
		`{"routes":[null]}`, `[]`, `{"window":5}`,
	} {
		f.Add([]byte(s))
	}
	env, err := newEnv()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSpec(b)
		if err != nil {
			if veritrail.ErrorCode(err) == veritrail.EInternal {
				t.Fatalf("an uncoded error: %v", err)
			}
			return
		}
		if _, err := compile(env, s, false); err != nil {
			var ve *veritrail.Error
			if !asError(err, &ve) || ve.Field == "" {
				t.Fatalf("an error without its field: %v", err)
			}
		}
	})
}

func FuzzParseFile(f *testing.F) {
	f.Add([]byte("rules:\n  - name: a\n    kind: match\n"))
	f.Add([]byte("- {name: a, x: &a [1, 2], y: *a}\n---\nname: b\n"))
	f.Add([]byte("name: a\n<<: {kind: match}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := ParseFile(b, func(string) (string, bool) { return "v", true })
		if err != nil {
			return
		}
		for _, r := range rs {
			r.LineOf("routes[0].url")
			DecodeSpec(r.JSON)
		}
	})
}

// fastPathFixture is the CEL environment and events with and without
// the objects conditions read, for comparing the shortcuts with CEL.
func fastPathFixture(t *testing.T) (*cel.Env, []*veritrail.Event) {
	env, err := newEnv()
	if err != nil {
		t.Fatal(err)
	}
	st := int64(403)
	events := []*veritrail.Event{
		{ID: "a", Type: "auth.login", Actor: veritrail.Actor{Type: "user", ID: "u1", Email: "u@x.example"}, Outcome: "failure", Status: &st,
			Target: &veritrail.Target{Type: "board", ID: "b1"}, Context: &veritrail.Context{IP: "10.0.0.1", TeamID: "t"},
			Decision: &veritrail.Decision{Action: "blocked", Policy: "dlp-strict"}, AgentID: "ag", Connector: "notion", Tool: "export_pages"},
		{ID: "b", Type: "board.board_deleted", Actor: veritrail.Actor{Type: "agent", ID: "nobody"}},
		{ID: "c", Type: "agent.tool_call", Actor: veritrail.Actor{Type: "service", ID: "svc"}, Outcome: "success",
			Decision: &veritrail.Decision{Action: "redacted", Policy: "dlp"}, Tool: "search"},
		{ID: "d", Type: "authentication.sso", Outcome: "failure", Context: &veritrail.Context{}},
	}
	return env, events
}

// TestFastPaths: the shortcuts around CEL (type tests read off the
// syntax, plain field paths read directly) say what CEL says.
func TestFastPaths(t *testing.T) {
	env, events := fastPathFixture(t)
	for path := range fieldPaths {
		x, err := compileExpr(env, "f", path, nil)
		if err != nil || x.field == nil {
			t.Fatalf("%s: %v (fast path %v)", path, err, x != nil && x.field != nil)
		}
		slow := &expr{prg: x.prg}
		for _, e := range events {
			a := &activation{e: e}
			got, _ := x.evalString(a)
			want, err := slow.evalString(a)
			if err != nil || got != want {
				t.Errorf("%s on %s: %q, CEL says %q (%v)", path, e.ID, got, want, err)
			}
		}
	}
	for _, c := range []struct {
		src       string
		typesOnly bool
	}{
		{`type == "auth.login"`, true},
		{`"auth.login" == type`, true},
		{`type in ["auth.login", "auth.logout"]`, true},
		{`type.startsWith("board.") || type == "auth.login"`, true},
		{`type.startsWith("board.") && outcome == "failure"`, false},
		{`type.startsWith("auth.") || outcome == "failure"`, false},
		{`type != "auth.login"`, false},
		{`outcome == "failure"`, false},
	} {
		x, err := compileExpr(env, "condition", c.src, nil)
		if err != nil {
			t.Fatal(err)
		}
		if x.typesOnly != c.typesOnly {
			t.Errorf("%s: typesOnly %v, want %v", c.src, x.typesOnly, c.typesOnly)
		}
		slow := &expr{prg: x.prg}
		for _, e := range events {
			a := &activation{e: e}
			got, _ := x.evalBool(a)
			want, _ := slow.evalBool(a)
			if x.types.contains(e.Type) || x.typesOnly {
				if got != want {
					t.Errorf("%s on %s: %v, CEL says %v", c.src, e.ID, got, want)
				}
			} else if want {
				t.Errorf("%s on %s: true, but its types %+v exclude it", c.src, e.ID, x.types)
			}
		}
	}
}

// TestPlainConditions: what a condition's plain parts settle without CEL
// is what CEL says, on events with and without the objects they read;
// and the usual conditions are settled on the events they cover.
func TestPlainConditions(t *testing.T) {
	env, events := fastPathFixture(t)
	for _, c := range []struct {
		src     string
		settled int // events settled without CEL, of the four
	}{
		{`type == "board.board_deleted" && actor.id != "nobody"`, 4},
		{`(type.startsWith("authentication.") || type.startsWith("auth.")) && outcome == "failure"`, 4},
		{`type == "agent.tool_call" && decision.action in ["blocked", "redacted"]`, 4},
		{`decision.policy == "dlp" || decision.policy.startsWith("dlp-")`, 4},
		{`!(outcome == "success") && context.ip.endsWith(".1")`, 4},
		{`tool.contains("export") || target.id == "b1"`, 4},
		{`"b1" == target.id && "" != context.team_id`, 4},
		{`type == "agent.tool_call" && duration_ms > 100`, 3},
		{`type == "agent.tool_call" || duration_ms > 100`, 1},
		{`outcome == "failure" && type.matches("login|sso")`, 2},
		{`(type == "auth.login" && has(content.role)) || actor.type == "agent"`, 3},
		{`content.scopes.exists(type, type == "admin")`, 0},
		{`type.matches("^auth")`, 0},
	} {
		x, err := compileExpr(env, "condition", c.src, cel.BoolType)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		settled := 0
		for _, e := range events {
			a := &activation{e: e, content: []byte(`{"role":"admin","scopes":["read"]}`)}
			out, _, err := x.prg.Eval(a)
			want := err == nil && out == types.True
			if x.plain == nil {
				continue
			}
			switch x.plain(e) {
			case isTrue, isFalse:
				settled++
				if got := x.plain(e) == isTrue; got != want || err != nil {
					t.Errorf("%s on %s: %v without CEL, CEL says %v (%v)", c.src, e.ID, got, want, err)
				}
			}
			if got, _ := x.evalBool(a); got != want {
				t.Errorf("%s on %s: evalBool %v, CEL says %v", c.src, e.ID, got, want)
			}
		}
		if settled != c.settled {
			t.Errorf("%s: %d of %d events settled without CEL, want %d", c.src, settled, len(events), c.settled)
		}
	}
}

// TestKeepSecrets: routes written back as the API shows them keep their own
// stored secrets, never a neighbour's, and a placeholder nobody matches is
// refused with the field named instead of stored as a secret.
func TestKeepSecrets(t *testing.T) {
	stored := []notify.Route{
		{Type: notify.Webhook, URL: "https://a.example/hook", Secret: "secret-of-route-a-0123"},
		{Type: notify.Webhook, URL: "https://b.example/hook", Secret: "secret-of-route-b-0123"},
		{Type: notify.Slack, URL: "https://hooks.slack.com/services/T0/B0/xyz"},
	}
	shown := func(i int) notify.Route { return stored[i].Masked() }

	// Written back whole, with a severity changed: every secret kept.
	all := []notify.Route{shown(0), shown(1), shown(2)}
	all[1].MinSeverity = "high"
	keepSecrets(all, stored)
	for i := range stored {
		if all[i].Secret != stored[i].Secret || all[i].URL != stored[i].URL {
			t.Errorf("route %d: %+v, want the stored secrets of %+v", i, all[i], stored[i])
		}
	}

	// The first webhook removed: the second keeps its own secret, not the
	// secret of the route that stood at its new place.
	moved := []notify.Route{shown(1)}
	keepSecrets(moved, stored)
	if moved[0].Secret != stored[1].Secret {
		t.Errorf("moved route got secret %q, want route b's", moved[0].Secret)
	}

	// A Slack route where a webhook stood: its placeholder stays, and the
	// route's check refuses it by name.
	changed := []notify.Route{shown(2)}
	keepSecrets(changed, stored[:1])
	err := changed[0].Check(context.Background(), netguard.Guard{AllowLoopback: true})
	var fe *notify.FieldError
	if !errors.As(err, &fe) || fe.Field != "url" || !strings.Contains(fe.Message, "type the secret again") {
		t.Errorf("an unmatched placeholder: %v, want a refusal of url saying to type the secret again", err)
	}
}
