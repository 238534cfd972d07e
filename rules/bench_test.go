package rules

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/demo"
	"github.com/veritrail/veritrail/sqlite"
)

// benchSpecs are n rules of the five kinds in turn over the demo's event
// types (as veritrail bench --rules installs).
func benchSpecs(n int) []string {
	kinds := []string{
		`{"name":"m%d","kind":"match","condition":"type == \"board.board_deleted\" && actor.id != \"nobody\"","severity":"low"}`,
		`{"name":"t%d","kind":"threshold","condition":"(type.startsWith(\"authentication.\") || type.startsWith(\"auth.\")) && outcome == \"failure\"","group_by":["actor.id"],"threshold":20,"window":"1m","severity":"medium"}`,
		`{"name":"d%d","kind":"distinct","condition":"type.startsWith(\"board.\")","group_by":["actor.id"],"field":"target.id","threshold":50,"window":"5m","severity":"medium"}`,
		`{"name":"n%d","kind":"new_value","condition":"type == \"agent.tool_call\"","group_by":["agent_id"],"field":"tool","lookback":"1d","severity":"low"}`,
		`{"name":"s%d","kind":"sequence","steps":["type == \"team.member_role_changed\"","type == \"board.board_deleted\""],"group_by":["actor.id"],"window":"10m","severity":"high"}`,
	}
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(kinds[i%len(kinds)], i)
	}
	return out
}

// BenchmarkEvaluate measures the evaluator alone: judging every event
// with 0 or 50 rules of mixed kinds, the events read from the log after
// its cursor (after a restart, or when it falls behind) or handed over by
// the commits (the normal case): events/s judged; nothing raised is
// stored.
func BenchmarkEvaluate(b *testing.B) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	org, _ := s.CreateOrg(ctx, "bench")
	st := veritrail.DefaultSettings()
	st.AIInteractionLogsEnabled = true
	epoch := time.Unix(0, 0).UTC()
	st.AIEnabledAt = &epoch
	s.PutOrgSettings(ctx, org.ID, st)
	const n = 20000
	rnd := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC()
	var body bytes.Buffer
	for i := range n {
		body.Write(demo.Event(nil, rnd, fmt.Sprintf("b%d", i), now.Add(time.Duration(i)*time.Millisecond)))
		body.WriteByte('\n')
	}
	lim := veritrail.DefaultLimits
	lim.MaxBatchEvents, lim.MaxBodyBytes = n, 1<<30
	dec := veritrail.NewDecoder(&body, lim, now.Add(time.Hour))
	var evs []*veritrail.Event
	for {
		e, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		evs = append(evs, e)
	}
	for i := 0; i < len(evs); i += 1000 {
		if _, err := s.Append(ctx, org.ID, evs[i:min(i+1000, len(evs))]); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		rules int
		fed   bool
	}{{0, false}, {50, false}, {0, true}, {50, true}} {
		rules := c.rules
		source := "log"
		if c.fed {
			source = "commits"
		}
		b.Run(fmt.Sprintf("rules=%d/from=%s", rules, source), func(b *testing.B) {
			e, err := New(Options{Store: s, Key: benchKey(b), Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			var compiled []*compiled
			for i, spec := range benchSpecs(rules) {
				sp, err := DecodeSpec([]byte(spec))
				if err != nil {
					b.Fatal(err)
				}
				c, err := compile(e.env, sp, true)
				if err != nil {
					b.Fatal(err)
				}
				c.rule = &veritrail.Rule{ID: fmt.Sprint(i)}
				compiled = append(compiled, c)
			}
			head, _, _ := s.LogHead(ctx, org.ID)
			judged := 0
			for b.Loop() {
				o := newOrgEval(e, org, func() {})
				o.rules, o.states, o.cursor, o.pos = compiled, map[string]*ruleState{}, head, -1
				var types []*typeSet
				for _, c := range compiled {
					o.states[c.rule.ID] = newRuleState(c.version)
					types = append(types, c.types)
				}
				if f, ok := typeFilter(types); ok && len(types) > 0 {
					o.filter = &f
				}
				if c.fed {
					// As the commits hand them over, a thousand at a time.
					for i := 0; i < len(evs); i += 1000 {
						if err := o.consume(ctx, evs[i:min(i+1000, len(evs))]); err != nil {
							b.Fatal(err)
						}
					}
				}
				for o.pos < head-1 {
					if _, err := o.read(ctx, head); err != nil {
						b.Fatal(err)
					}
				}
				judged += int(head)
			}
			b.ReportMetric(float64(judged)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
