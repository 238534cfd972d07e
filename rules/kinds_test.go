package rules

import (
	"fmt"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// TestKinds: each kind of rule raises exactly one alert for its scenario
// and none for near misses; judging the log again, in this engine or in a
// new one, raises nothing more.
func TestKinds(t *testing.T) {
	const (
		match     = `{"name":"role change","kind":"match","condition":"type == \"team.member_role_changed\"","severity":"high"}`
		threshold = `{"name":"failed sign-ins","kind":"threshold","condition":"type == \"auth.login\" && outcome == \"failure\"",
			"group_by":["actor.id"],"threshold":5,"window":"5m","severity":"high"}`
		distinct = `{"name":"boards","kind":"distinct","condition":"type == \"board.board_opened\"","group_by":["actor.id"],
			"field":"target.id","threshold":3,"window":"10m","severity":"medium"}`
		newValue = `{"name":"new connector","kind":"new_value","condition":"type == \"agent.tool_call\"","group_by":["agent_id"],
			"field":"connector","lookback":"30d","severity":"low"}`
		sequence = `{"name":"off then export","kind":"sequence","steps":["type == \"settings.changed\"","type == \"audit.export\""],
			"group_by":["actor.id"],"window":"1h","severity":"critical"}`
	)
	m := time.Minute
	type events func(h *harness) (before, after []*veritrail.Event)
	cases := []struct {
		name   string
		rule   string
		events events
		want   int   // alerts
		count  int64 // matched events of the first alert
	}{
		{"match", match, func(h *harness) (b, a []*veritrail.Event) {
			return nil, []*veritrail.Event{h.ev("team.member_role_changed", "u1", 0), h.ev("board.board_opened", "u1", m),
				h.ev("team.member_role_changed", "u2", 2*m)}
		}, 1, 2},
		{"match/near miss", match, func(h *harness) (b, a []*veritrail.Event) {
			return []*veritrail.Event{h.ev("team.member_role_changed", "u1", -m)}, // before the rule
				[]*veritrail.Event{h.ev("team.member_removed", "u1", 0), h.ev("team.member_invited", "u1", m)}
		}, 0, 0},

		{"threshold", threshold, func(h *harness) (b, a []*veritrail.Event) {
			for i := range 6 {
				a = append(a, h.ev("auth.login", "u1", time.Duration(i)*50*time.Second, failed))
			}
			return nil, a
		}, 1, 6},
		{"threshold/other groups", threshold, func(h *harness) (b, a []*veritrail.Event) {
			for i := range 4 {
				a = append(a, h.ev("auth.login", "u1", time.Duration(i)*m, failed))
			}
			return nil, append(a, h.ev("auth.login", "u2", 4*m, failed))
		}, 0, 0},
		{"threshold/too slow", threshold, func(h *harness) (b, a []*veritrail.Event) {
			for i := range 5 {
				a = append(a, h.ev("auth.login", "u1", time.Duration(i)*90*time.Second, failed))
			}
			return nil, a
		}, 0, 0},
		{"threshold/one success", threshold, func(h *harness) (b, a []*veritrail.Event) {
			for i := range 4 {
				a = append(a, h.ev("auth.login", "u1", time.Duration(i)*m, failed))
			}
			return nil, append(a, h.ev("auth.login", "u1", 4*m))
		}, 0, 0},

		{"distinct", distinct, func(h *harness) (b, a []*veritrail.Event) {
			return nil, []*veritrail.Event{h.ev("board.board_opened", "u1", 0, target("b1")), h.ev("board.board_opened", "u1", m, target("b2")),
				h.ev("board.board_opened", "u1", 2*m, target("b1")), h.ev("board.board_opened", "u1", 3*m, target("b3"))}
		}, 1, 3},
		{"distinct/repeats", distinct, func(h *harness) (b, a []*veritrail.Event) {
			return nil, []*veritrail.Event{h.ev("board.board_opened", "u1", 0, target("b1")), h.ev("board.board_opened", "u1", m, target("b2")),
				h.ev("board.board_opened", "u1", 2*m, target("b1")), h.ev("board.board_opened", "u1", 3*m, target("b2")),
				h.ev("board.board_opened", "u2", 3*m, target("b3"))}
		}, 0, 0},
		{"distinct/outside the window", distinct, func(h *harness) (b, a []*veritrail.Event) {
			return nil, []*veritrail.Event{h.ev("board.board_opened", "u1", 0, target("b1")), h.ev("board.board_opened", "u1", m, target("b2")),
				h.ev("board.board_opened", "u1", 12*m, target("b3"))}
		}, 0, 0},

		{"new_value", newValue, func(h *harness) (b, a []*veritrail.Event) {
			return []*veritrail.Event{h.ev("agent.tool_call", "svc", -24*time.Hour, agent("a1", "notion"))},
				[]*veritrail.Event{h.ev("agent.tool_call", "svc", 0, agent("a1", "notion")), h.ev("agent.tool_call", "svc", m, agent("a1", "slack")),
					h.ev("agent.tool_call", "svc", 2*m, agent("a1", "slack")), h.ev("agent.tool_call", "svc", 3*m, agent("a2", "notion"))}
		}, 2, 1},
		{"new_value/seen before", newValue, func(h *harness) (b, a []*veritrail.Event) {
			return []*veritrail.Event{h.ev("agent.tool_call", "svc", -24*time.Hour, agent("a1", "notion"))},
				[]*veritrail.Event{h.ev("agent.tool_call", "svc", 0, agent("a1", "notion")), h.ev("agent.tool_call", "svc", m, agent("a1", "notion"))}
		}, 0, 0},

		{"sequence", sequence, func(h *harness) (b, a []*veritrail.Event) {
			return nil, []*veritrail.Event{h.ev("settings.changed", "u1", 0), h.ev("board.board_opened", "u1", m), h.ev("audit.export", "u1", 10*m)}
		}, 1, 2},
		{"sequence/wrong order", sequence, func(h *harness) (b, a []*veritrail.Event) {
			return nil, []*veritrail.Event{h.ev("audit.export", "u1", 0), h.ev("settings.changed", "u1", 10*m)}
		}, 0, 0},
		{"sequence/another actor", sequence, func(h *harness) (b, a []*veritrail.Event) {
			return nil, []*veritrail.Event{h.ev("settings.changed", "u1", 0), h.ev("audit.export", "u2", 10*m)}
		}, 0, 0},
		{"sequence/too late", sequence, func(h *harness) (b, a []*veritrail.Event) {
			return nil, []*veritrail.Event{h.ev("settings.changed", "u1", 0), h.ev("audit.export", "u1", 61*m)}
		}, 0, 0},
	}
	stores(t, func(t *testing.T, open opener) {
		s := open(t)
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				h := newHarness(t, s, fmt.Sprintf("kinds-%d", i), nil)
				before, after := c.events(h)
				if len(before) > 0 {
					h.append(before...)
				}
				h.rule(c.rule)
				// In two commits, judged in between: windows span them.
				h.append(after[:len(after)/2]...)
				h.sync()
				h.append(after[len(after)/2:]...)
				h.sync()
				as := h.alerts()
				if len(as) != c.want {
					t.Fatalf("%d alerts, want %d: %+v", len(as), c.want, as)
				}
				if c.want > 0 {
					first := as[len(as)-1]
					if first.Count != c.count || first.State != veritrail.AlertOpen || len(first.EventIDs) != int(c.count) {
						t.Errorf("first alert: count %d, %d event ids, state %s; want count %d", first.Count, len(first.EventIDs), first.State, c.count)
					}
				}
				// Judged again, by this engine and by a new one: nothing more.
				h.sync()
				h.restart()
				h.sync()
				if n := len(h.alerts()); n != c.want {
					t.Fatalf("after judging again: %d alerts, want %d", n, c.want)
				}
			})
		}
	})
}
