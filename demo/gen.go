package demo

import (
	"cmp"
	"math/rand/v2"
	"time"

	"github.com/veritrail/veritrail/internal/canonjson"
)

// event is the envelope of one event being written. Generators fill what
// the caller left empty, write the envelope with begin, the content, then
// finish.
type event struct {
	id        string
	t         time.Time
	typ       string
	actor     actor
	agentID   string
	taskID    string
	sessionID string
	connector string
	tool      string
	target    target
	ctx       evctx
	outcome   string
	status    int64 // 0: absent
	dur       int64 // negative: absent
	decision  decision
}

type actor struct{ typ, id, email, name string }
type target struct{ typ, id, name string }
type evctx struct{ team, ip, ua, req string }
type decision struct{ action, policy, reason string }

const maxVars = 64

// gen writes events with the randomness of r.
type gen struct {
	r      *rand.Rand
	w      enc
	layout string // time layout

	// Template variables of the event being written, picked on first use.
	vals     [maxVars]string
	have     [maxVars]bool
	peerIdx  int // person named by $person/$email/$handle, -1 if not yet picked
	prospIdx int
}

const (
	layoutMS   = "2006-01-02T15:04:05.000Z07:00"
	layoutNano = time.RFC3339Nano
)

func newEvent(id string, t time.Time) event { return event{id: id, t: t, dur: -1} }

func userActor(p *person) actor { return actor{"user", p.id, p.email, p.name} }
func agentActor(a *agent) actor { return actor{typ: "agent", id: a.id, name: a.name} }
func svcActor(s *service) actor { return actor{typ: "service", id: s.id, name: s.name} }

var (
	sysAuthGuard = actor{typ: "system", id: "sys_signin_protection", name: "Sign-in protection"}
	sysBilling   = actor{typ: "system", id: "sys_billing", name: "Billing usage monitor"}
	orgTarget    = target{"organization", orgID, orgName}
	workspace    = target{"application", "app_agents", "Acme Agent Workspace"}
)

// agentIPs are the egress addresses of the hosted agent runtime.
var agentIPs = []string{"192.0.2.60", "192.0.2.61"}

// begin writes the envelope and opens content.
func (g *gen) begin(e *event) {
	w := &g.w
	w.depth = 0
	w.more[0] = false
	w.open('{')
	w.strNE("id", e.id)
	w.key("time")
	w.b = append(w.b, '"')
	w.b = e.t.UTC().AppendFormat(w.b, g.layout)
	w.b = append(w.b, '"')
	w.str("type", e.typ)
	w.obj("actor")
	w.str("type", e.actor.typ)
	w.strNE("id", e.actor.id)
	w.strNE("email", e.actor.email)
	w.strNE("name", e.actor.name)
	w.end()
	w.strNE("agent_id", e.agentID)
	w.strNE("task_id", e.taskID)
	w.strNE("session_id", e.sessionID)
	w.strNE("connector", e.connector)
	w.strNE("tool", e.tool)
	if t := e.target; t != (target{}) {
		w.obj("target")
		w.strNE("type", t.typ)
		w.strNE("id", t.id)
		w.strNE("name", t.name)
		w.end()
	}
	if c := e.ctx; c != (evctx{}) {
		w.obj("context")
		w.strNE("team_id", c.team)
		w.strNE("ip", c.ip)
		w.strNE("user_agent", c.ua)
		w.strNE("request_id", c.req)
		w.end()
	}
	w.strNE("outcome", e.outcome)
	if e.status != 0 {
		w.int("status", e.status)
	}
	if e.dur >= 0 {
		w.int("duration_ms", e.dur)
	}
	if d := e.decision; d.action != "" {
		w.obj("decision")
		w.str("action", d.action)
		w.strNE("policy", d.policy)
		w.strNE("reason", d.reason)
		w.end()
	}
	w.obj("content")
}

// finish closes content and the event.
func (g *gen) finish() {
	g.w.end()
	g.w.end()
}

// as makes p the actor unless the caller set one, and fills the context
// from p's usual whereabouts.
func (g *gen) as(e *event, p *person) {
	if e.actor.typ == "" {
		e.actor = userActor(p)
	}
	if e.ctx.team == "" {
		e.ctx.team = teams[p.team].id
	}
	if e.ctx.ip == "" {
		e.ctx.ip = ipOf(p, e.t)
	}
	if e.ctx.ua == "" {
		e.ctx.ua = browsers[p.browser]
	}
	g.req(e)
}

func (g *gen) asService(e *event, s *service) {
	e.actor = svcActor(s)
	e.ctx.ip, e.ctx.ua = s.ip, s.ua
	g.req(e)
}

func (g *gen) req(e *event) {
	if e.ctx.req == "" {
		e.ctx.req = g.id("req_", 16)
	}
}

// ipOf tells where p works from at t: mostly an office, sometimes the VPN
// or home. It is a hash of the person and the 3-hour block of t, so a
// session keeps its address and the random streams are untouched.
func ipOf(p *person, t time.Time) string {
	h := uint64(t.Unix()/(3*3600))*0x9e3779b97f4a7c15 ^ uint64(len(p.id))<<56
	for i := 0; i < len(p.id); i++ {
		h = (h ^ uint64(p.id[i])) * 0x100000001b3
	}
	h ^= h >> 29
	x := int(h % 100)
	h /= 100
	switch {
	case p.remote && x < 78, !p.remote && x >= 90:
		return p.home
	case p.remote || x >= 74:
		return vpnIPs[h%uint64(len(vpnIPs))]
	}
	ips := offices[p.office].ips
	return ips[h%uint64(len(ips))]
}

const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// id returns prefix followed by n random base-32 characters.
func (g *gen) id(prefix string, n int) string { return randID(g.r, prefix, n) }

func randID(r *rand.Rand, prefix string, n int) string {
	var buf [64]byte
	b := append(buf[:0], prefix...)
	var u uint64
	for i := range n {
		if i%12 == 0 {
			u = r.Uint64()
		}
		b = append(b, alphabet[u&31])
		u >>= 5
	}
	return string(b)
}

func (g *gen) token(n int) string { return g.id("", n) }

// hex returns n random hex digits.
func (g *gen) hex(n int) string {
	const digits = "0123456789abcdef"
	var buf [64]byte
	var u uint64
	for i := range n {
		if i%16 == 0 {
			u = g.r.Uint64()
		}
		buf[i] = digits[u&15]
		u >>= 4
	}
	return string(buf[:n])
}

// between returns a random integer in [lo, hi].
func (g *gen) between(lo, hi int) int64 { return int64(lo + g.r.IntN(hi-lo+1)) }

// chance reports true with probability p.
func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

// Template variables.

func (g *gen) resetVars() {
	g.have = [maxVars]bool{}
	g.peerIdx, g.prospIdx = -1, -1
}

func (g *gen) setVar(i int, v string) { g.vals[i], g.have[i] = v, true }

func (g *gen) val(i int) string {
	if !g.have[i] {
		g.setVar(i, varTable[i].pick(g))
	}
	return g.vals[i]
}

func (g *gen) peer() *person {
	if g.peerIdx < 0 {
		g.peerIdx = g.r.IntN(len(people))
	}
	return &people[g.peerIdx]
}

func (g *gen) prospect() int {
	if g.prospIdx < 0 {
		g.prospIdx = g.r.IntN(len(prospects))
	}
	return g.prospIdx
}

// fill appends t with its variables; literal text is escaped too when the
// template is plain text written inside a JSON string.
func (g *gen) fill(t tmpl, text bool) {
	for _, s := range t {
		if text {
			g.w.b = canonjson.AppendEscaped(g.w.b, s.lit)
		} else {
			g.w.b = append(g.w.b, s.lit...)
		}
		if s.v >= 0 {
			g.w.b = canonjson.AppendEscaped(g.w.b, g.val(s.v))
		}
	}
}

// text writes k as the string template t.
func (g *gen) text(k string, t tmpl) {
	g.w.key(k)
	g.w.b = append(g.w.b, '"')
	g.fill(t, true)
	g.w.b = append(g.w.b, '"')
}

// json writes k as the JSON template t.
func (g *gen) json(k string, t tmpl) {
	g.w.key(k)
	g.fill(t, false)
}

// raw writes k with a JSON literal value.
func (w *enc) raw(k, v string) {
	w.key(k)
	w.b = append(w.b, v...)
}

// Pickers usable with any *rand.Rand (the planner's and the writer's).

func randPerson(r *rand.Rand) *person { return &people[r.IntN(len(people))] }

// randTeammate picks someone in team t.
func randTeammate(r *rand.Rand, t int) *person {
	for {
		p := randPerson(r)
		if p.team == t {
			return p
		}
	}
}

func randBoard(r *rand.Rand, p *person) *board {
	for range 3 { // mostly the person's own team's boards
		b := &boards[r.IntN(len(boards))]
		if b.team == p.team {
			return b
		}
	}
	return &boards[r.IntN(len(boards))]
}

func randAdmin(r *rand.Rand) *person { return &people[admins[r.IntN(len(admins))]] }

// randTaskAgent picks an agent that runs tasks.
func randTaskAgent(r *rand.Rand) *agent { return &agents[2+r.IntN(len(agents)-2)] }

// randClient picks the MCP client p uses interactively.
func randClient(r *rand.Rand, p *person) *agent {
	if p.team == tEng && r.IntN(2) == 0 {
		return &agents[aCursor]
	}
	return &agents[aClaude]
}

// teamConnectors are the connectors each team mostly uses from a client.
var teamConnectors = [len(teams)][]string{
	tEng:       {"github", "github", "jira", "slack", "notion"},
	tProduct:   {"jira", "notion", "slack", "google_drive"},
	tSales:     {"salesforce", "salesforce", "slack", "google_drive"},
	tMarketing: {"google_drive", "notion", "slack"},
	tFinance:   {"google_drive", "google_drive", "slack"},
	tSecurity:  {"github", "jira", "slack", "google_drive"},
}

// randToolFor picks a tool p would call through client a.
func randToolFor(r *rand.Rand, p *person, a *agent) *tool {
	conns := teamConnectors[p.team]
	for {
		c := conns[r.IntN(len(conns))]
		if a != nil && !a.client {
			c = a.connectors[r.IntN(len(a.connectors))]
		}
		if a == nil || hasConnector(a, c) {
			return randToolOf(r, c)
		}
	}
}

func hasConnector(a *agent, c string) bool {
	for _, x := range a.connectors {
		if x == c {
			return true
		}
	}
	return false
}

// randToolOf picks a tool of connector by the tools' weights.
func randToolOf(r *rand.Rand, connector string) *tool {
	for {
		t := &tools[r.IntN(len(tools))]
		if t.connector == connector && r.IntN(10) < cmp.Or(t.weight, 10) {
			return t
		}
	}
}
