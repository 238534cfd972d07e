// Package demo generates the audit log of a sample organization, Acme Corp,
// for `veritrail serve --demo` and the load generator: people signing in and
// working on whiteboards, admins changing settings and membership, AI
// interactions, agents running tasks, MCP tool calls through the gateway
// with their policy decisions, and a few incidents to investigate (see
// story.go). Output is deterministic: the same options give the same bytes.
package demo

import (
	"cmp"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/veritrail/veritrail"
)

// Options control generation.
type Options struct {
	Seed     int64     // RNG seed; same seed+anchor+count => byte-identical output
	Anchor   time.Time // the newest event time is at or before Anchor; events span Days before it
	Days     int       // default 30
	Count    int       // default 20000
	IDPrefix string    // event id prefix, default "demo-"; ids are IDPrefix + zero-padded index, e.g. demo-000001
}

// Streams of the PCG generator: one for the plan, one for the writing.
const (
	streamPlan  = 0x76657269_7472_6169 // "veritrai"
	streamWrite = 0x64656d6f_5f777274  // "demo_wrt"
)

// Generate calls emit once per event, in ascending time order, with one
// JSON object (no trailing newline). The slice may be reused after emit
// returns. Times are in (Anchor-Days, Anchor], in milliseconds; ids follow
// time order. Generation stops at the first error emit returns.
func Generate(opts Options, emit func(line []byte) error) error {
	if opts.Days <= 0 {
		opts.Days = 30
	}
	if opts.Count <= 0 {
		opts.Count = 20000
	}
	if opts.IDPrefix == "" {
		opts.IDPrefix = "demo-"
	}
	if opts.Anchor.IsZero() {
		return errors.New("demo: Options.Anchor is required")
	}
	width := max(6, len(strconv.Itoa(opts.Count)))
	if !veritrail.ValidID(opts.IDPrefix + strings.Repeat("0", width)) {
		return errors.New("demo: IDPrefix must be characters from A-Z a-z 0-9 . _ : @ ~ + = - (ids are at most 128)")
	}

	days := opts.Days
	p := &planner{
		r:    rand.New(rand.NewPCG(uint64(opts.Seed), streamPlan)),
		end:  opts.Anchor.UnixMilli(), // rounds down: never after Anchor
		span: int64(days) * day,
		scale: func(perMonth int) int {
			return max(1, (perMonth*days+15)/30)
		},
	}
	p.plan(opts.Count)
	slices.SortFunc(p.out, func(a, b planned) int {
		return cmp.Or(cmp.Compare(a.ms, b.ms), cmp.Compare(a.ord, b.ord))
	})

	g := &gen{r: rand.New(rand.NewPCG(uint64(opts.Seed), streamWrite)), layout: layoutMS}
	g.w.b = make([]byte, 0, 4096)
	idb := make([]byte, 0, len(opts.IDPrefix)+width)
	for i, pe := range p.out {
		idb = append(idb[:0], opts.IDPrefix...)
		n := strconv.Itoa(i + 1)
		for range width - len(n) {
			idb = append(idb, '0')
		}
		idb = append(idb, n...)
		e := newEvent(string(idb), time.UnixMilli(pe.ms))
		g.w.b = g.w.b[:0]
		pe.f(g, &e)
		if err := emit(g.w.b); err != nil {
			return err
		}
	}
	return nil
}

var genPool = sync.Pool{New: func() any { return new(gen) }}

// Event appends to dst one seed-shaped event, a JSON object without a
// newline, with the given id (no "id" member if id is empty) and time t,
// using rnd for variation; the load generator calls it for an endless
// stream. The mix of kinds follows loadKinds; events average about 0.9 KB.
func Event(dst []byte, rnd *rand.Rand, id string, t time.Time) []byte {
	g := genPool.Get().(*gen)
	g.r, g.w.b, g.layout = rnd, dst, layoutNano
	e := newEvent(id, t)
	x := rnd.IntN(loadTotal)
	for i := range loadKinds {
		if x < loadKinds[i].w {
			loadKinds[i].f(g, &e)
			break
		}
		x -= loadKinds[i].w
	}
	out := g.w.b
	g.r, g.w.b = nil, nil
	genPool.Put(g)
	return out
}

// loadKinds is the mix of the load generator's stream: every kind of the
// demo, in about the proportions of a working day.
var loadKinds = [...]struct {
	w int
	f func(g *gen, e *event)
}{
	{90, func(g *gen, e *event) { g.signIn(e, randPerson(g.r), true, "", "") }},
	{12, func(g *gen, e *event) { g.signIn(e, randPerson(g.r), false, "", "") }},
	{25, func(g *gen, e *event) { g.signOut(e, randPerson(g.r)) }},
	{25, func(g *gen, e *event) { u := randPerson(g.r); g.authLogin(e, u, randClient(g.r, u)) }},
	{10, func(g *gen, e *event) { g.authLogout(e, randPerson(g.r)) }},
	{15, func(g *gen, e *event) { g.authSSO(e, randPerson(g.r), !g.chance(0.04)) }},
	{2, func(g *gen, e *event) { g.apiKeyEvent(e, randPerson(g.r), g.randAPIKey(), true, "") }},
	{2, func(g *gen, e *event) { g.apiKeyEvent(e, randPerson(g.r), g.randAPIKey(), false, "") }},
	{120, func(g *gen, e *event) { u := randPerson(g.r); g.boardEvent(e, u, "board_opened", randBoard(g.r, u)) }},
	{15, func(g *gen, e *event) { u := randPerson(g.r); g.boardEvent(e, u, "board_created", randBoard(g.r, u)) }},
	{10, func(g *gen, e *event) {
		u := randPerson(g.r)
		g.boardEvent(e, u, pick(g, []string{"board_shared_for_editing", "board_shared_for_viewing", "board_shared_for_commenting"}), randBoard(g.r, u))
	}},
	{3, func(g *gen, e *event) { u := randPerson(g.r); g.boardEvent(e, u, "board_deleted", randBoard(g.r, u)) }},
	{10, func(g *gen, e *event) { g.templateOpened(e, randPerson(g.r)) }},
	{1, func(g *gen, e *event) {
		h := pick(g, newHires)
		g.memberInvited(e, randAdmin(g.r), h.name, h.title, g.r.IntN(len(teams)))
	}},
	{1, func(g *gen, e *event) {
		g.memberRoleChanged(e, randAdmin(g.r), randPerson(g.r), "member", "team_admin")
	}},
	{1, func(g *gen, e *event) { g.memberRemoved(e, randAdmin(g.r), randPerson(g.r), "moved to another team") }},
	{1, func(g *gen, e *event) { g.planChanged(e, &people[pRobert], g.chance(0.5)) }},
	{1, func(g *gen, e *event) { g.usageAlert(e, 80+10*g.between(0, 2)) }},
	{12, func(g *gen, e *event) {
		g.integrationEvent(e, "credential_refresh", &connectors[g.r.IntN(len(connectors))], nil, !g.chance(0.03), "")
	}},
	{1, func(g *gen, e *event) {
		g.integrationEvent(e, "connected", &connectors[g.r.IntN(len(connectors))], randAdmin(g.r), true, "")
	}},
	{1, func(g *gen, e *event) {
		g.integrationEvent(e, "disconnected", &connectors[g.r.IntN(len(connectors))], randAdmin(g.r), true, "re-authorizing with new scopes")
	}},
	{8, func(g *gen, e *event) {
		t := g.randTask()
		action, why := randAsk(g.r, t.agent)
		g.approvalEvent(e, "requested", t, g.id("apr_", 8), nil, action, why)
	}},
	{6, func(g *gen, e *event) {
		t := g.randTask()
		action, _ := randAsk(g.r, t.agent)
		g.approvalEvent(e, "approved", t, g.id("apr_", 8), &people[t.agent.owner], action, "")
	}},
	{2, func(g *gen, e *event) {
		t := g.randTask()
		action, _ := randAsk(g.r, t.agent)
		g.approvalEvent(e, "denied", t, g.id("apr_", 8), &people[t.agent.owner], action, pick(g, denyReasons))
	}},
	{25, func(g *gen, e *event) { g.taskEvent(e, "created", g.randTask()) }},
	{25, func(g *gen, e *event) { g.taskEvent(e, "started", g.randTask()) }},
	{20, func(g *gen, e *event) { g.taskEvent(e, "completed", g.randTask()) }},
	{3, func(g *gen, e *event) { g.taskEvent(e, "failed", g.randTask()) }},
	{2, func(g *gen, e *event) { g.taskEvent(e, "cancelled", g.randTask()) }},
	{90, func(g *gen, e *event) {
		t := g.randTask()
		acts := t.agent.actions
		g.agentAction(e, t, acts[g.r.IntN(len(acts))], !g.chance(0.05), "")
	}},
	{230, func(g *gen, e *event) {
		var c call
		if g.chance(0.6) {
			c.user = randPerson(g.r)
			c.agent = randClient(g.r, c.user)
			c.session = g.id("mcp-sess-", 10)
		} else {
			c.task = g.randTask()
			c.user, c.agent = c.task.user, c.task.agent
		}
		if c.user != nil {
			c.tool = randToolFor(g.r, c.user, c.agent)
		} else {
			c.tool = randToolOf(g.r, pick(g, c.agent.connectors))
		}
		g.toolCall(e, &c)
	}},
	{110, func(g *gen, e *event) { g.randAI(e, "") }},
	{4, func(g *gen, e *event) { g.randAI(e, "redacted") }},
	{3, func(g *gen, e *event) { g.randAI(e, "prompt_blocked") }},
	{2, func(g *gen, e *event) { g.randAI(e, "moderation_blocked") }},
	{2, func(g *gen, e *event) {
		s := pick(g, settingChanges)
		g.settingChanged(e, randAdmin(g.r), s.key, s.label, s.from, s.to)
	}},
	{1, func(g *gen, e *event) { g.orgChanged(e, randAdmin(g.r), g.r.IntN(len(orgChanges))) }},
	{1, func(g *gen, e *event) { g.userLocked(e, randPerson(g.r), true, nil, 6, ipTor) }},
}

var loadTotal = func() int {
	n := 0
	for _, k := range loadKinds {
		n += k.w
	}
	return n
}()

// randTask returns a task of a random hosted agent, mostly asked for by
// its owner or a teammate.
func (g *gen) randTask() *taskRun {
	a := randTaskAgent(g.r)
	t := &taskRun{id: g.id("task_", 12), agent: a, title: pick(g, a.tasks), steps: 2 + g.r.IntN(7)}
	if g.chance(0.75) {
		t.user = randTeammate(g.r, a.team)
	}
	return t
}

func (g *gen) randAI(e *event, mode string) {
	u := randPerson(g.r)
	g.aiInteraction(e, u, g.id("ai-sess-", 10), randBoard(g.r, u), mode)
}
