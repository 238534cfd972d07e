package demo

import (
	"math"
	"math/rand/v2"
)

// The planner lays out a month of Acme's activity as episodes — a work
// session, an MCP session, an agent task, an incident — each a few events
// with their offsets, placed on the timeline with business-hours weighting.
// Structure (who, what, which outcome) is decided here with the planner's
// random stream; the writer adds the cosmetic variation when it renders.

const (
	second = int64(1000)
	minute = 60 * second
	hour   = 60 * minute
	day    = 24 * hour
)

type planned struct {
	ms  int64
	ord int32
	f   func(g *gen, e *event)
}

type planner struct {
	r      *rand.Rand
	end    int64 // newest allowed time (unix ms)
	span   int64 // times are in (end-span, end]
	out    []planned
	aiOn   int64                  // AI interaction logs collected from here on
	leftAt [len(people)]int64     // no activity of a person after this
	hires  int                    // next of newHires to invite
	scale  func(perMonth int) int // count of rare events for the window
}

// episode is a run of events with offsets from its start.
type episode struct {
	steps     []planned
	at        int64 // offset of the last step
	who       int   // person index whose activity it is, or -1
	notBefore int64 // earliest start (unix ms), 0 for none
}

func newEpisode(who int) *episode { return &episode{who: who} }

// add appends f gap milliseconds after the previous step.
func (ep *episode) add(gap int64, f func(g *gen, e *event)) {
	if len(ep.steps) > 0 {
		ep.at += max(gap, 1)
	}
	ep.steps = append(ep.steps, planned{ms: ep.at, f: f})
}

// Profiles of when an episode happens.
const (
	officeHours = iota // people: weekdays 9–18 local, tapering off
	anyTime            // services: around the clock
	nightly            // batch jobs: 01–04 local
)

func weight(prof int, ms int64, tz int) float64 {
	local := ms + int64(tz)*hour
	d := floorDiv(local, day)
	h := (local - d*day) / hour
	weekend := (d+4)%7 == 0 || (d+4)%7 == 6 // 1970-01-01 was a Thursday
	switch prof {
	case anyTime:
		return 1
	case nightly:
		if h >= 1 && h < 4 {
			return 1
		}
		return 0
	}
	w := 0.03
	switch {
	case h >= 9 && h < 17:
		w = 1
	case h == 8 || h == 17:
		w = 0.6
	case h == 7 || h >= 18 && h < 21:
		w = 0.2
	}
	if weekend {
		w *= 0.08
	}
	return w
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// bounds returns the earliest and latest start for ep.
func (p *planner) bounds(ep *episode) (lo, hi int64) {
	lo = max(p.end-p.span+1, ep.notBefore)
	hi = p.end - ep.at
	if ep.who >= 0 {
		hi = min(hi, p.leftAt[ep.who]-ep.at)
	}
	return lo, hi
}

// place puts ep at a random start weighted by prof in time zone tz. It
// reports false, placing nothing, when ep cannot fit.
func (p *planner) place(ep *episode, prof, tz int) bool {
	lo, hi := p.bounds(ep)
	if hi < lo {
		if ep.who >= 0 && p.leftAt[ep.who] != math.MaxInt64 {
			return false // after the person left
		}
		hi = lo // longer than the window: put clamps it
	}
	var s int64
	for try := 0; ; try++ {
		s = lo + p.r.Int64N(hi-lo+1)
		if try >= 60 || p.r.Float64() < weight(prof, s, tz) {
			break
		}
	}
	p.put(ep, s)
	return true
}

// placeAt puts ep so that its step main falls on a weekday near the
// fraction frac of the window; the episode starts at local hour h
// (fractional) in time zone tz, give or take a few minutes. It stays
// inside the window.
func (p *planner) placeAt(ep *episode, frac, h float64, tz, main int) {
	start := p.end - p.span
	t := start + int64(frac*float64(p.span))
	local := t + int64(tz)*hour
	midnight := floorDiv(local, day)*day - int64(tz)*hour
	s := midnight + int64(h*float64(hour)) + p.r.Int64N(10*minute)
	for range 2 { // move off the weekend when the window allows
		m := s + ep.steps[main].ms
		if wd := (floorDiv(m+int64(tz)*hour, day) + 4) % 7; wd == 0 || wd == 6 {
			if s+day+ep.at <= p.end {
				s += day
			} else {
				s -= day
			}
		}
	}
	lo, hi := p.end-p.span+1, p.end-ep.at
	s = min(max(s, lo), max(hi, lo))
	p.put(ep, s)
}

func (p *planner) put(ep *episode, s int64) {
	lo := p.end - p.span + 1
	for _, st := range ep.steps {
		ms := min(max(s+st.ms, lo), p.end)
		p.out = append(p.out, planned{ms: ms, ord: int32(len(p.out)), f: st.f})
	}
}

func (p *planner) between(lo, hi int64) int64 { return lo + p.r.Int64N(hi-lo+1) }
func (p *planner) chance(x float64) bool      { return p.r.Float64() < x }
func tzOf(u *person) int                      { return offices[u.office].utc }

// idx returns u's index in people.
func idx(u *person) int {
	for i := range people {
		if &people[i] == u {
			return i
		}
	}
	panic("demo: not one of people")
}

// plan lays out count events: the storylines first (up to half the
// budget), then everyday activity.
func (p *planner) plan(count int) {
	for i := range p.leftAt {
		p.leftAt[i] = math.MaxInt64
	}
	p.aiOn = p.end - p.span + 1
	budget := count / 2
	for _, story := range []func(){
		p.storyAILogsOn, p.storyBulkExport, p.storyPasswordSpray, p.storyLeakedKey,
		p.storyFailedRollback, p.storyFailedReconcile, p.storySalesforceOutage, p.storyBilling,
		p.storyAdmin,
	} {
		before, left, aiOn := len(p.out), p.leftAt, p.aiOn
		story()
		if len(p.out) > budget {
			p.out, p.leftAt, p.aiOn = p.out[:before], left, aiOn
		}
	}
	for len(p.out) < count {
		ep, prof, tz := p.background()
		if n := count - len(p.out); len(ep.steps) > n {
			ep.steps = ep.steps[:n]
			ep.at = ep.steps[n-1].ms
		}
		p.place(ep, prof, tz)
	}
}

// Everyday activity.

var backgroundKinds = []struct {
	w int
	f func(p *planner) (*episode, int, int)
}{
	{34, (*planner).workSession},
	{20, (*planner).mcpSession},
	{16, (*planner).taskRun},
	{13, (*planner).aiSession},
	{6, (*planner).credentialRefresh},
	{2, (*planner).nightlyBackup},
	{2, (*planner).strayExternal},
	{2, (*planner).ssoRetry},
}

var backgroundTotal = func() int {
	n := 0
	for _, k := range backgroundKinds {
		n += k.w
	}
	return n
}()

func (p *planner) background() (*episode, int, int) {
	x := p.r.IntN(backgroundTotal)
	for _, k := range backgroundKinds {
		if x < k.w {
			return k.f(p)
		}
		x -= k.w
	}
	panic("unreachable")
}

var newBoardNames = []string{"Untitled", "Brainstorm", "Weekly sync", "Interview notes", "Customer call notes", "Team offsite ideas", "Architecture sketch", "Hiring loop debrief"}

// workSession: a sign-in on the whiteboard, a few boards, sometimes AI, a
// sign-out.
func (p *planner) workSession() (*episode, int, int) {
	u := randPerson(p.r)
	ep := newEpisode(idx(u))
	if p.chance(0.06) {
		ep.add(0, func(g *gen, e *event) { g.signIn(e, u, false, "PASSWORD", "invalid_credentials") })
		ep.add(p.between(15, 90)*second, func(g *gen, e *event) { g.signIn(e, u, true, "PASSWORD", "") })
	} else {
		ep.add(0, func(g *gen, e *event) { g.signIn(e, u, true, "", "") })
	}
	var last *board
	for range 1 + p.r.IntN(6) {
		b := randBoard(p.r, u)
		gap := p.between(20, 1500) * second
		kind := ""
		switch x := p.r.IntN(100); {
		case x < 72:
			kind = "board_opened"
		case x < 81:
			kind = "board_created"
			b = &board{id: randID(p.r, "uXjVK", 6) + "=", name: newBoardNames[p.r.IntN(len(newBoardNames))], team: u.team}
		case x < 85:
			kind = "board_shared_for_editing"
		case x < 88:
			kind = "board_shared_for_viewing"
		case x < 89:
			kind = "board_shared_for_commenting"
		case x < 97:
			ep.add(gap, func(g *gen, e *event) { g.templateOpened(e, u) })
			continue
		case x < 99:
			kind = "board_deleted"
		default:
			kind = "board_public_link_enabled"
		}
		ep.add(gap, func(g *gen, e *event) { g.boardEvent(e, u, kind, b) })
		last = b
	}
	if last != nil && p.chance(0.25) {
		p.aiTurns(ep, u, last)
	}
	if p.chance(0.35) {
		ep.add(p.between(5, 120)*minute, func(g *gen, e *event) { g.signOut(e, u) })
	}
	return ep, officeHours, tzOf(u)
}

// aiTurns adds a session of AI interactions on board b.
func (p *planner) aiTurns(ep *episode, u *person, b *board) {
	ep.notBefore = p.aiOn
	sess := randID(p.r, "ai-sess-", 10)
	for range 1 + p.r.IntN(4) {
		mode := ""
		switch x := p.r.Float64(); {
		case x < 0.03:
			mode = "redacted"
		case x < 0.045:
			mode = "prompt_blocked"
		case x < 0.052:
			mode = "moderation_blocked"
		}
		ep.add(p.between(20, 400)*second, func(g *gen, e *event) { g.aiInteraction(e, u, sess, b, mode) })
	}
}

func (p *planner) aiSession() (*episode, int, int) {
	u := randPerson(p.r)
	ep := newEpisode(idx(u))
	p.aiTurns(ep, u, randBoard(p.r, u))
	return ep, officeHours, tzOf(u)
}

// mcpSession: someone works through Claude Desktop or Cursor.
func (p *planner) mcpSession() (*episode, int, int) {
	u := randPerson(p.r)
	client := randClient(p.r, u)
	ep := newEpisode(idx(u))
	if p.chance(0.4) {
		ok := !p.chance(0.03)
		ep.add(0, func(g *gen, e *event) { g.authSSO(e, u, ok) })
		if !ok {
			ep.add(p.between(20, 120)*second, func(g *gen, e *event) { g.authSSO(e, u, true) })
		}
		ep.add(p.between(1, 3)*second, func(g *gen, e *event) { g.authLogin(e, u, client) })
	}
	sess := randID(p.r, "mcp-sess-", 10)
	for range 2 + p.r.IntN(9) {
		c := &call{user: u, agent: client, session: sess, tool: randToolFor(p.r, u, client)}
		ep.add(p.between(5, 240)*second, func(g *gen, e *event) { g.toolCall(e, c) })
	}
	if p.chance(0.15) {
		ep.add(p.between(10, 90)*minute, func(g *gen, e *event) { g.authLogout(e, u) })
	}
	return ep, officeHours, tzOf(u)
}

// taskRun: an agent task from creation to its end, with its actions, tool
// calls and sometimes an approval.
func (p *planner) taskRun() (*episode, int, int) {
	a := randTaskAgent(p.r)
	t := &taskRun{id: randID(p.r, "task_", 12), agent: a, title: a.tasks[p.r.IntN(len(a.tasks))]}
	if p.chance(0.75) {
		t.user = &people[a.owner]
		if p.chance(0.5) {
			t.user = randTeammate(p.r, a.team)
		}
	}
	who := -1
	if t.user != nil {
		who = idx(t.user)
	}
	ep := newEpisode(who)
	ep.add(0, func(g *gen, e *event) { g.taskEvent(e, "created", t) })
	ep.add(p.between(1, 30)*second, func(g *gen, e *event) { g.taskEvent(e, "started", t) })
	steps := 2 + p.r.IntN(7)
	failAt := -1
	if p.chance(0.07) {
		failAt = p.r.IntN(steps)
	}
	for i := range steps {
		t.steps = i + 1
		fail := i == failAt
		if len(a.actions) > 0 && p.chance(0.5) {
			tool := a.actions[p.r.IntN(len(a.actions))]
			if fail {
				t.failAt = actionErrors[tool]
			}
			ep.add(p.between(3, 90)*second, func(g *gen, e *event) { g.agentAction(e, t, tool, !fail, "") })
		} else {
			c := &call{user: t.user, agent: a, task: t, tool: randToolOf(p.r, a.connectors[p.r.IntN(len(a.connectors))])}
			if fail {
				c.mode = "error"
				t.failAt = c.tool.connector + "." + c.tool.name + " returned an error"
			}
			ep.add(p.between(3, 90)*second, func(g *gen, e *event) { g.toolCall(e, c) })
		}
		if fail {
			break
		}
	}
	end := "completed"
	switch {
	case failAt >= 0:
		end = "failed"
	case p.chance(0.15):
		action, ask := randAsk(p.r, a)
		apr := randID(p.r, "apr_", 8)
		by := &people[a.owner]
		ep.add(p.between(2, 30)*second, func(g *gen, e *event) { g.approvalEvent(e, "requested", t, apr, nil, action, ask) })
		if p.chance(0.75) {
			ep.add(p.between(2, 40)*minute, func(g *gen, e *event) { g.approvalEvent(e, "approved", t, apr, by, action, "") })
		} else {
			why := denyReasons[p.r.IntN(len(denyReasons))]
			ep.add(p.between(2, 40)*minute, func(g *gen, e *event) { g.approvalEvent(e, "denied", t, apr, by, action, why) })
			end = "cancelled"
			if p.chance(0.5) {
				end, t.failAt = "failed", "approval "+apr+" denied: "+why
			}
		}
	case p.chance(0.06):
		end = "cancelled"
	}
	ep.add(p.between(5, 300)*second, func(g *gen, e *event) { g.taskEvent(e, end, t) })
	tz := offices[people[a.owner].office].utc
	return ep, officeHours, tz
}

func (p *planner) credentialRefresh() (*episode, int, int) {
	c := &connectors[p.r.IntN(len(connectors))]
	ok := !p.chance(0.02)
	ep := newEpisode(-1)
	ep.add(0, func(g *gen, e *event) { g.integrationEvent(e, "credential_refresh", c, nil, ok, "") })
	return ep, anyTime, 0
}

// nightlyBackup: the backup job reads a handful of boards.
func (p *planner) nightlyBackup() (*episode, int, int) {
	ep := newEpisode(-1)
	for range 3 + p.r.IntN(6) {
		b := &boards[p.r.IntN(len(boards))]
		ep.add(p.between(5, 90)*second, func(g *gen, e *event) {
			g.asService(e, &svcBackup)
			g.boardEvent(e, nil, "board_opened", b)
		})
	}
	return ep, nightly, offices[oSF].utc
}

// strayExternal: credential stuffing noise from a Tor exit.
func (p *planner) strayExternal() (*episode, int, int) {
	ep := newEpisode(-1)
	for range 1 + p.r.IntN(3) {
		u := randPerson(p.r)
		ep.add(p.between(3, 60)*second, func(g *gen, e *event) {
			e.ctx.ip, e.ctx.ua = ipTor, "curl/8.4.0"
			g.signIn(e, u, false, "PASSWORD", "invalid_credentials")
		})
	}
	return ep, anyTime, 0
}

func (p *planner) ssoRetry() (*episode, int, int) {
	u := randPerson(p.r)
	ep := newEpisode(idx(u))
	ep.add(0, func(g *gen, e *event) { g.authSSO(e, u, false) })
	ep.add(p.between(30, 300)*second, func(g *gen, e *event) { g.authSSO(e, u, true) })
	ep.add(p.between(1, 3)*second, func(g *gen, e *event) { g.authLogin(e, u, nil) })
	return ep, officeHours, tzOf(u)
}
