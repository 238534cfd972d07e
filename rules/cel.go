package rules

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	celref "cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"

	veritrail "github.com/veritrail/veritrail"
)

// Conditions are CEL (cel.dev) over the event as the API shows it: each
// top-level JSON field is a variable (type, outcome, tool, …), the objects
// actor, target, context and decision have their JSON fields (actor.id,
// decision.action), and content is the content object, for rules whose
// author may read content. Absent strings are "", absent numbers 0, so
// decision.action == "blocked" is simply false for an event without a
// decision.

// The CEL shapes of the event's objects: field names are the JSON names.
type celActor struct {
	Type  string `cel:"type"`
	ID    string `cel:"id"`
	Email string `cel:"email"`
	Name  string `cel:"name"`
}

type celTarget struct {
	Type string `cel:"type"`
	ID   string `cel:"id"`
	Name string `cel:"name"`
}

type celContext struct {
	TeamID    string `cel:"team_id"`
	IP        string `cel:"ip"`
	UserAgent string `cel:"user_agent"`
	RequestID string `cel:"request_id"`
}

type celDecision struct {
	Action string `cel:"action"`
	Policy string `cel:"policy"`
	Reason string `cel:"reason"`
}

// variables are the event's fields as CEL variables.
var variables = []cel.EnvOption{
	cel.Variable("id", cel.StringType),
	cel.Variable("seq", cel.IntType),
	cel.Variable("time", cel.TimestampType),
	cel.Variable("received_at", cel.TimestampType),
	cel.Variable("type", cel.StringType),
	cel.Variable("actor", cel.ObjectType("rules.celActor")),
	cel.Variable("agent_id", cel.StringType),
	cel.Variable("task_id", cel.StringType),
	cel.Variable("session_id", cel.StringType),
	cel.Variable("connector", cel.StringType),
	cel.Variable("tool", cel.StringType),
	cel.Variable("target", cel.ObjectType("rules.celTarget")),
	cel.Variable("context", cel.ObjectType("rules.celContext")),
	cel.Variable("outcome", cel.StringType),
	cel.Variable("status", cel.IntType),
	cel.Variable("duration_ms", cel.IntType),
	cel.Variable("decision", cel.ObjectType("rules.celDecision")),
	cel.Variable("content_digest", cel.StringType),
	cel.Variable("content", cel.MapType(cel.StringType, cel.DynType)),
}

// newEnv is the one CEL environment of conditions.
func newEnv() (*cel.Env, error) {
	opts := []cel.EnvOption{
		ext.NativeTypes(ext.ParseStructTags(true), reflect.TypeFor[celActor](), reflect.TypeFor[celTarget](),
			reflect.TypeFor[celContext](), reflect.TypeFor[celDecision]()),
		ext.Strings(),
		cel.CrossTypeNumericComparisons(true),
	}
	return cel.NewEnv(append(opts, variables...)...)
}

// costLimit bounds one evaluation (a condition looping over a large
// content list gives up instead of stalling the evaluator).
const costLimit = 100000

// expr is a compiled CEL expression.
type expr struct {
	src          string
	prg          cel.Program
	readsContent bool
	types        *typeSet // the event types it can be true for; nil: any
	// typesOnly: the expression says nothing but what types says (type
	// == "x", type.startsWith("x."), their ||), so it need not run.
	typesOnly bool
	// field reads a plain field path (actor.id) without CEL, when the
	// expression is one.
	field func(e *veritrail.Event) string
	// plain decides a condition without CEL when the parts of it that
	// compare text fields with literals settle it (nil: no such part).
	plain plainCond
}

// compileExpr compiles src, which must yield want (cel.BoolType,
// cel.StringType, or nil for any), and reports errors on field with the
// position of the first problem.
func compileExpr(env *cel.Env, field, src string, want *cel.Type) (*expr, error) {
	checked, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		e := iss.Errors()[0]
		loc := e.Location
		return nil, invalid(field, "line %d, column %d: %s", loc.Line(), loc.Column()+1, e.Message)
	}
	if want != nil && !checked.OutputType().IsExactType(want) && !checked.OutputType().IsExactType(cel.DynType) {
		return nil, invalid(field, "must be a %s expression, this one is %s", want, checked.OutputType())
	}
	// Only a comprehension (exists, all, map, filter) can loop: only those
	// expressions pay for counting their cost.
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if len(ast.MatchDescendants(ast.NavigateAST(checked.NativeRep()), ast.KindMatcher(ast.ComprehensionKind))) > 0 {
		opts = append(opts, cel.CostLimit(costLimit))
	}
	prg, err := env.Program(checked, opts...)
	if err != nil {
		return nil, invalid(field, "%v", err)
	}
	x := &expr{src: src, prg: prg, field: fieldPaths[strings.TrimSpace(src)]}
	for _, r := range checked.NativeRep().ReferenceMap() {
		if r.Name == "content" {
			x.readsContent = true
		}
	}
	x.types = typeConstraint(checked.NativeRep().Expr())
	x.typesOnly = x.types != nil && onlyTypeTests(checked.NativeRep().Expr())
	if want == cel.BoolType {
		x.plain = plainOf(checked.NativeRep().Expr())
	}
	return x, nil
}

// evalBool runs a condition; an error (a missing content key, a cost
// limit) is not a match.
func (x *expr) evalBool(a *activation) (bool, error) {
	if x.typesOnly {
		return x.types.contains(a.e.Type), nil
	}
	if x.plain != nil {
		switch x.plain(a.e) {
		case isTrue:
			return true, nil
		case isFalse:
			return false, nil
		}
	}
	out, _, err := x.prg.Eval(a)
	if err != nil {
		return false, err
	}
	return out == types.True, nil
}

// evalString runs a value expression (group_by, field, dedup_key) and
// renders its result as text.
func (x *expr) evalString(a *activation) (string, error) {
	if x.field != nil {
		return x.field(a.e), nil
	}
	out, _, err := x.prg.Eval(a)
	if err != nil {
		return "", err
	}
	return valueText(out), nil
}

// valueText renders a CEL value: strings as they are, others as JSON.
func valueText(v celref.Val) string {
	switch x := v.Value().(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	if n, err := v.ConvertToNative(reflect.TypeFor[any]()); err == nil {
		if b, err := json.Marshal(n); err == nil {
			return string(b)
		}
	}
	return fmt.Sprint(v.Value())
}

// fieldPaths read the event's fields as CEL does (absent: "" or 0), for
// expressions that are nothing but a field: group_by and field are
// usually one.
var fieldPaths = map[string]func(e *veritrail.Event) string{
	"id": func(e *veritrail.Event) string { return e.ID }, "type": func(e *veritrail.Event) string { return e.Type },
	"actor.type": func(e *veritrail.Event) string { return e.Actor.Type }, "actor.id": func(e *veritrail.Event) string { return e.Actor.ID },
	"actor.email": func(e *veritrail.Event) string { return e.Actor.Email }, "actor.name": func(e *veritrail.Event) string { return e.Actor.Name },
	"agent_id": func(e *veritrail.Event) string { return e.AgentID }, "task_id": func(e *veritrail.Event) string { return e.TaskID },
	"session_id": func(e *veritrail.Event) string { return e.SessionID }, "connector": func(e *veritrail.Event) string { return e.Connector },
	"tool": func(e *veritrail.Event) string { return e.Tool }, "outcome": func(e *veritrail.Event) string { return e.Outcome },
	"content_digest": func(e *veritrail.Event) string { return e.ContentDigest },
	"target.type": func(e *veritrail.Event) string {
		return orEmpty(e.Target, func(t *veritrail.Target) string { return t.Type })
	},
	"target.id": func(e *veritrail.Event) string {
		return orEmpty(e.Target, func(t *veritrail.Target) string { return t.ID })
	},
	"target.name": func(e *veritrail.Event) string {
		return orEmpty(e.Target, func(t *veritrail.Target) string { return t.Name })
	},
	"context.team_id": func(e *veritrail.Event) string {
		return orEmpty(e.Context, func(c *veritrail.Context) string { return c.TeamID })
	},
	"context.ip": func(e *veritrail.Event) string {
		return orEmpty(e.Context, func(c *veritrail.Context) string { return c.IP })
	},
	"context.user_agent": func(e *veritrail.Event) string {
		return orEmpty(e.Context, func(c *veritrail.Context) string { return c.UserAgent })
	},
	"context.request_id": func(e *veritrail.Event) string {
		return orEmpty(e.Context, func(c *veritrail.Context) string { return c.RequestID })
	},
	"decision.action": func(e *veritrail.Event) string {
		return orEmpty(e.Decision, func(d *veritrail.Decision) string { return d.Action })
	},
	"decision.policy": func(e *veritrail.Event) string {
		return orEmpty(e.Decision, func(d *veritrail.Decision) string { return d.Policy })
	},
	"decision.reason": func(e *veritrail.Event) string {
		return orEmpty(e.Decision, func(d *veritrail.Decision) string { return d.Reason })
	},
}

func orEmpty[T any](p *T, f func(*T) string) string {
	if p == nil {
		return ""
	}
	return f(p)
}

// activation resolves the CEL variables from one event, lazily: content
// is decoded only when a rule reads it.
type activation struct {
	e       *veritrail.Event
	content []byte // nil: none, or not readable by the rule
	decoded map[string]any
	actor   *celActor
}

func (a *activation) Parent() interpreter.Activation { return nil }

func (a *activation) ResolveName(name string) (any, bool) {
	e := a.e
	switch name {
	case "id":
		return e.ID, true
	case "seq":
		return e.Seq, true
	case "time":
		return e.Time, true
	case "received_at":
		return e.ReceivedAt, true
	case "type":
		return e.Type, true
	case "actor":
		if a.actor == nil {
			a.actor = &celActor{Type: e.Actor.Type, ID: e.Actor.ID, Email: e.Actor.Email, Name: e.Actor.Name}
		}
		return *a.actor, true
	case "agent_id":
		return e.AgentID, true
	case "task_id":
		return e.TaskID, true
	case "session_id":
		return e.SessionID, true
	case "connector":
		return e.Connector, true
	case "tool":
		return e.Tool, true
	case "target":
		if e.Target == nil {
			return celTarget{}, true
		}
		return celTarget{Type: e.Target.Type, ID: e.Target.ID, Name: e.Target.Name}, true
	case "context":
		if e.Context == nil {
			return celContext{}, true
		}
		return celContext{TeamID: e.Context.TeamID, IP: e.Context.IP, UserAgent: e.Context.UserAgent, RequestID: e.Context.RequestID}, true
	case "outcome":
		return e.Outcome, true
	case "status":
		if e.Status == nil {
			return int64(0), true
		}
		return *e.Status, true
	case "duration_ms":
		if e.DurationMS == nil {
			return int64(0), true
		}
		return *e.DurationMS, true
	case "decision":
		if e.Decision == nil {
			return celDecision{}, true
		}
		return celDecision{Action: e.Decision.Action, Policy: e.Decision.Policy, Reason: e.Decision.Reason}, true
	case "content_digest":
		return e.ContentDigest, true
	case "content":
		if a.decoded == nil {
			a.decoded = map[string]any{}
			if len(a.content) > 0 {
				json.Unmarshal(a.content, &a.decoded)
			}
		}
		return a.decoded, true
	}
	return nil, false
}

// typeSet is the set of event types an expression can be true for:
// exact types and prefixes.
type typeSet struct {
	exact    []string
	prefixes []string
}

func (t *typeSet) contains(typ string) bool {
	if t == nil {
		return true
	}
	if slices.Contains(t.exact, typ) {
		return true
	}
	for _, p := range t.prefixes {
		if strings.HasPrefix(typ, p) {
			return true
		}
	}
	return false
}

func (t *typeSet) size() int { return len(t.exact) + len(t.prefixes) }

// union is the set of types either allows; nil (any) if either is.
func union(a, b *typeSet) *typeSet {
	if a == nil || b == nil {
		return nil
	}
	return &typeSet{exact: append(slices.Clone(a.exact), b.exact...), prefixes: append(slices.Clone(a.prefixes), b.prefixes...)}
}

// typeConstraint finds what an expression says about the event's type,
// when it says it in a form that can be read off the syntax: type == "x",
// type in ["x", "y"], type.startsWith("x."), and these combined with &&
// and ||. The result may allow more than the expression does, never
// less: it only spares evaluating rules (and reading events) that cannot
// match.
func typeConstraint(e ast.Expr) *typeSet {
	if e.Kind() != ast.CallKind {
		return nil
	}
	c := e.AsCall()
	args := c.Args()
	isType := func(x ast.Expr) bool { return x.Kind() == ast.IdentKind && x.AsIdent() == "type" }
	str := func(x ast.Expr) (string, bool) {
		if x.Kind() != ast.LiteralKind {
			return "", false
		}
		s, ok := x.AsLiteral().Value().(string)
		return s, ok
	}
	switch c.FunctionName() {
	case "_&&_":
		l, r := typeConstraint(args[0]), typeConstraint(args[1])
		switch {
		case l == nil:
			return r
		case r == nil:
			return l
		case r.size() < l.size():
			return r
		}
		return l
	case "_||_":
		return union(typeConstraint(args[0]), typeConstraint(args[1]))
	case "_==_":
		for i := range 2 {
			if s, ok := str(args[1-i]); ok && isType(args[i]) {
				return &typeSet{exact: []string{s}}
			}
		}
	case "@in":
		if isType(args[0]) && args[1].Kind() == ast.ListKind {
			t := &typeSet{}
			for _, el := range args[1].AsList().Elements() {
				s, ok := str(el)
				if !ok {
					return nil
				}
				t.exact = append(t.exact, s)
			}
			return t
		}
	case "startsWith":
		if c.IsMemberFunction() && isType(c.Target()) && len(args) == 1 {
			if s, ok := str(args[0]); ok {
				return &typeSet{prefixes: []string{s}}
			}
		}
	}
	return nil
}

// onlyTypeTests reports whether e is made of type tests alone, joined by
// ||: then typeConstraint says exactly when it is true.
func onlyTypeTests(e ast.Expr) bool {
	if e.Kind() != ast.CallKind {
		return false
	}
	c := e.AsCall()
	switch c.FunctionName() {
	case "_||_":
		return onlyTypeTests(c.Args()[0]) && onlyTypeTests(c.Args()[1])
	case "_==_", "@in", "startsWith":
		return typeConstraint(e) != nil
	}
	return false
}

// typeFilter is the store filter selecting the events of the sets; ok is
// false when some set allows any type.
func typeFilter(sets []*typeSet) (veritrail.Filter, bool) {
	f := veritrail.Filter{Field: veritrail.FieldType}
	for _, t := range sets {
		if t == nil {
			return f, false
		}
		for _, x := range t.exact {
			f.Ranges = append(f.Ranges, veritrail.Exact(x))
		}
		for _, p := range t.prefixes {
			if p == "" {
				return f, false
			}
			f.Ranges = append(f.Ranges, veritrail.KeyRange{Lo: p, Hi: prefixEnd(p)})
		}
	}
	return f, true
}

// prefixEnd is the first key after every key starting with p.
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// tri is what a condition's plain parts say of an event: true, false, or
// unknown (CEL must decide).
type tri int8

const (
	unknown tri = iota
	isFalse
	isTrue
)

// plainCond reads a condition's plain parts on an event.
type plainCond func(e *veritrail.Event) tri

// plainOf compiles the parts of a condition that compare a text field
// (fieldPaths) with literals — ==, !=, in [...], startsWith, endsWith,
// contains — joined by &&, || and !, into a function that decides the
// condition without CEL whenever they settle it: a false operand of &&
// makes it false, a true operand of || true, whatever the others (CEL's
// && and || absorb the others' errors the same way). These parts never
// fail, since a text field is never absent for CEL (""). Anything else
// (content, numbers, macros, matches) is unknown and left to CEL. Nil
// when e has no plain part.
func plainOf(e ast.Expr) plainCond {
	if e.Kind() != ast.CallKind {
		return nil
	}
	c := e.AsCall()
	args := c.Args()
	switch fn := c.FunctionName(); fn {
	case "_&&_", "_||_":
		l, r := plainOf(args[0]), plainOf(args[1])
		if l == nil && r == nil {
			return nil
		}
		settles, other := isFalse, isTrue // &&: false settles it
		if fn == "_||_" {
			settles, other = isTrue, isFalse
		}
		read := func(p plainCond, ev *veritrail.Event) tri {
			if p == nil {
				return unknown
			}
			return p(ev)
		}
		return func(ev *veritrail.Event) tri {
			lv := read(l, ev)
			if lv == settles {
				return settles
			}
			rv := read(r, ev)
			if rv == settles {
				return settles
			}
			if lv == other && rv == other {
				return other
			}
			return unknown
		}
	case "!_":
		x := plainOf(args[0])
		if x == nil {
			return nil
		}
		return func(ev *veritrail.Event) tri {
			switch x(ev) {
			case isTrue:
				return isFalse
			case isFalse:
				return isTrue
			}
			return unknown
		}
	case "_==_", "_!=_":
		for i := range 2 {
			f, lit, ok := fieldAndLiteral(args[i], args[1-i])
			if !ok {
				continue
			}
			eq := fn == "_==_"
			return func(ev *veritrail.Event) tri { return triOf((f(ev) == lit) == eq) }
		}
	case "@in":
		f := fieldOfPath(args[0])
		if f == nil || args[1].Kind() != ast.ListKind {
			return nil
		}
		var set []string
		for _, el := range args[1].AsList().Elements() {
			s, ok := stringLiteral(el)
			if !ok {
				return nil
			}
			set = append(set, s)
		}
		return func(ev *veritrail.Event) tri { return triOf(slices.Contains(set, f(ev))) }
	case "startsWith", "endsWith", "contains":
		if !c.IsMemberFunction() || len(args) != 1 {
			return nil
		}
		f, lit, ok := fieldAndLiteral(c.Target(), args[0])
		if !ok {
			return nil
		}
		test := map[string]func(string, string) bool{"startsWith": strings.HasPrefix, "endsWith": strings.HasSuffix, "contains": strings.Contains}[fn]
		return func(ev *veritrail.Event) tri { return triOf(test(f(ev), lit)) }
	}
	return nil
}

func triOf(b bool) tri {
	if b {
		return isTrue
	}
	return isFalse
}

// fieldAndLiteral reads f as a text field and lit as a string literal.
func fieldAndLiteral(f, lit ast.Expr) (func(*veritrail.Event) string, string, bool) {
	read := fieldOfPath(f)
	s, ok := stringLiteral(lit)
	return read, s, read != nil && ok
}

// fieldOfPath returns the reader of a text field named by e (type,
// actor.id), or nil.
func fieldOfPath(e ast.Expr) func(*veritrail.Event) string {
	switch e.Kind() {
	case ast.IdentKind:
		return fieldPaths[e.AsIdent()]
	case ast.SelectKind:
		sel := e.AsSelect()
		if sel.IsTestOnly() || sel.Operand().Kind() != ast.IdentKind {
			return nil
		}
		return fieldPaths[sel.Operand().AsIdent()+"."+sel.FieldName()]
	}
	return nil
}

func stringLiteral(e ast.Expr) (string, bool) {
	if e.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().Value().(string)
	return s, ok
}
