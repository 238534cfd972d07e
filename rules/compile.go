package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"

	veritrail "github.com/veritrail/veritrail"
)

// compiled is a rule ready to judge events.
type compiled struct {
	rule *veritrail.Rule // nil for rules under test
	spec *Spec
	// version names what the rule's windows depend on: a rule edited in
	// any of these starts again with empty windows.
	version string

	cond    *expr   // nil: every event (sequence without a shared filter)
	steps   []*expr // sequence
	groupBy []*expr
	field   *expr // distinct, new_value
	dedup   *expr // nil: the default key

	types        *typeSet // the event types the rule can match; nil: any
	readsContent bool

	window, lookback, suppress time.Duration
}

// id is the rule's id ("" under test: its name).
func (c *compiled) id() string {
	if c.rule != nil {
		return c.rule.ID
	}
	return c.spec.Name
}

// compile checks and compiles a spec. mayReadContent says whether the
// rule may read content: a rule that reads content without it is refused.
func compile(env *cel.Env, s *Spec, mayReadContent bool) (*compiled, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	c := &compiled{spec: s, window: time.Duration(s.Window), suppress: time.Duration(s.Suppress)}
	if s.Kind == KindNewValue {
		c.lookback = s.lookback()
	}
	var err error
	if strings.TrimSpace(s.Condition) != "" {
		if c.cond, err = compileExpr(env, "condition", s.Condition, cel.BoolType); err != nil {
			return nil, err
		}
	}
	for i, src := range s.Steps {
		x, err := compileExpr(env, fmt.Sprintf("steps[%d]", i), src, cel.BoolType)
		if err != nil {
			return nil, err
		}
		c.steps = append(c.steps, x)
	}
	for i, src := range s.GroupBy {
		x, err := compileExpr(env, fmt.Sprintf("group_by[%d]", i), src, nil)
		if err != nil {
			return nil, err
		}
		c.groupBy = append(c.groupBy, x)
	}
	if s.Field != "" {
		if c.field, err = compileExpr(env, "field", s.Field, nil); err != nil {
			return nil, err
		}
	}
	if s.DedupKey != "" {
		if c.dedup, err = compileExpr(env, "dedup_key", s.DedupKey, cel.StringType); err != nil {
			return nil, err
		}
	}
	// What the rule can match, and whether it reads content.
	all := append(append([]*expr{c.cond}, c.steps...), c.groupBy...)
	all = append(all, c.field, c.dedup)
	for _, x := range all {
		if x != nil && x.readsContent {
			c.readsContent = true
		}
	}
	if c.readsContent && !mayReadContent {
		field := "condition"
		for i, x := range all {
			if x != nil && x.readsContent {
				field = fieldOf(s, i)
				break
			}
		}
		return nil, invalid(field, "reads content, which this rule's author may not read (content:read)")
	}
	switch {
	case s.Kind == KindSequence:
		var sets []*typeSet
		for _, st := range c.steps {
			t := st.types
			if c.cond != nil && c.cond.types != nil && (t == nil || c.cond.types.size() < t.size()) {
				t = c.cond.types
			}
			sets = append(sets, t)
		}
		c.types = sets[0]
		for _, t := range sets[1:] {
			c.types = union(c.types, t)
		}
	case c.cond != nil:
		c.types = c.cond.types
	}
	c.version = versionOf(s)
	return c, nil
}

// fieldOf names the field of the i-th expression of compile's list.
func fieldOf(s *Spec, i int) string {
	switch {
	case i == 0:
		return "condition"
	case i <= len(s.Steps):
		return fmt.Sprintf("steps[%d]", i-1)
	case i <= len(s.Steps)+len(s.GroupBy):
		return fmt.Sprintf("group_by[%d]", i-1-len(s.Steps))
	case i == len(s.Steps)+len(s.GroupBy)+1:
		return "field"
	}
	return "dedup_key"
}

// versionOf hashes what a rule's windows depend on.
func versionOf(s *Spec) string {
	b, _ := json.Marshal([]any{s.Kind, s.Condition, s.Steps, s.GroupBy, s.Field, s.Threshold, s.Window, s.Lookback})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// observe judges one event against the rule, updating st, and returns
// the hits. errs counts expressions that failed on the event (they do not
// match).
func (c *compiled) observe(st *ruleState, a *activation, e ref) (hits []hit, err error) {
	if !c.types.contains(a.e.Type) {
		return nil, nil
	}
	return c.observeMatching(st, a, e)
}

// observeMatching is observe for an event whose type the rule's types
// allow (the evaluator picks the rules by type beforehand).
func (c *compiled) observeMatching(st *ruleState, a *activation, e ref) (hits []hit, err error) {
	if c.spec.Kind == KindSequence {
		return c.observeSequence(st, a, e)
	}
	ok, err := c.cond.evalBool(a)
	if !ok {
		return nil, err
	}
	var buf [maxGroupBy]string // most events fire nothing: their group stays here
	group, err := c.groupValues(a, buf[:0])
	if err != nil {
		return nil, err
	}
	gk := strings.Join(group, "\x1f")
	st.Newest = max(st.Newest, e.T)
	w := int64(c.window)
	h := hit{rule: c, at: e}
	switch c.spec.Kind {
	case KindMatch:
		h.window = []ref{e}
	case KindThreshold:
		g := st.Threshold[gk]
		if g == nil {
			g = &thresholdGroup{}
			st.Threshold[gk] = g
			capGroups(st.Threshold, (*thresholdGroup).latest, maxGroups)
		}
		win, fire := g.add(e, c.spec.Threshold, w)
		if !fire {
			return nil, nil
		}
		h.window = win
	case KindDistinct:
		v, err := c.field.evalString(a)
		if err != nil {
			return nil, err
		}
		g := st.Distinct[gk]
		if g == nil {
			g = &distinctGroup{}
			st.Distinct[gk] = g
			capGroups(st.Distinct, func(g *distinctGroup) int64 { return g.Newest }, maxGroups)
		}
		if !g.add(v, e, c.spec.Threshold, w) {
			return nil, nil
		}
		h.distinct = g
	case KindNewValue:
		v, err := c.field.evalString(a)
		if err != nil {
			return nil, err
		}
		k := gk + "\x1e" + v
		last, seen := st.Seen[k]
		st.Seen[k] = max(last, e.T)
		if len(st.Seen) > maxSeen {
			capGroups(st.Seen, func(t int64) int64 { return t }, maxSeen)
		}
		if seen && e.T-last <= int64(c.lookback) {
			return nil, nil
		}
		if seen && last > e.T { // seen after this (late) event already
			return nil, nil
		}
		h.window = []ref{e}
		h.group = append(slices.Clone(group), v)
		return []hit{c.keyed(h, a)}, nil
	}
	h.group = slices.Clone(group)
	return []hit{c.keyed(h, a)}, nil
}

func (c *compiled) observeSequence(st *ruleState, a *activation, e ref) ([]hit, error) {
	if c.cond != nil {
		if ok, err := c.cond.evalBool(a); !ok {
			return nil, err
		}
	}
	matches := make([]bool, len(c.steps))
	any := false
	var firstErr error
	for i, s := range c.steps {
		if !s.types.contains(a.e.Type) {
			continue
		}
		ok, err := s.evalBool(a)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		matches[i] = ok
		any = any || ok
	}
	if !any {
		return nil, firstErr
	}
	var buf [maxGroupBy]string
	group, err := c.groupValues(a, buf[:0])
	if err != nil {
		return nil, err
	}
	gk := strings.Join(group, "\x1f")
	st.Newest = max(st.Newest, e.T)
	g := st.Sequence[gk]
	if g == nil {
		g = &sequenceGroup{}
		st.Sequence[gk] = g
		capGroups(st.Sequence, func(g *sequenceGroup) int64 { return g.Newest }, maxGroups)
	}
	chain, fire := g.add(matches, e, int64(c.window))
	if !fire {
		return nil, nil
	}
	return []hit{c.keyed(hit{rule: c, group: slices.Clone(group), at: e, window: chain}, a)}, nil
}

// groupValues appends the event's group_by values to vals.
func (c *compiled) groupValues(a *activation, vals []string) ([]string, error) {
	for _, g := range c.groupBy {
		v, err := g.evalString(a)
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
	}
	return vals, nil
}

// keyed sets the hit's dedup key: the rule's expression, or the group's
// values (and a new value) joined by "/".
func (c *compiled) keyed(h hit, a *activation) hit {
	if c.dedup != nil {
		if k, err := c.dedup.evalString(a); err == nil {
			h.key = k
			return h
		}
	}
	h.key = strings.Join(h.group, "/")
	return h
}

// groupJSON is the alert's group: {"actor.id": "u1", …}, with a new
// value under "value".
func (c *compiled) groupJSON(vals []string) []byte {
	if len(vals) == 0 {
		return nil
	}
	m := map[string]string{}
	for i, g := range c.spec.GroupBy {
		if i < len(vals) {
			m[g] = vals[i]
		}
	}
	if c.spec.Kind == KindNewValue && len(vals) == len(c.spec.GroupBy)+1 {
		m[c.spec.Field] = vals[len(vals)-1]
	}
	b, _ := json.Marshal(m)
	return b
}
