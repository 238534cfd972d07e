package rules

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// feedDepth is how many commits' events wait for an evaluator before
// further ones are dropped (and read from the log instead).
const feedDepth = 256

// orgEval follows one organization's log.
type orgEval struct {
	e       *Engine
	org     int64
	orgName string
	log     *slog.Logger
	cancel  context.CancelFunc
	wake    chan struct{}
	// feed brings the events of this organization's commits (Commits).
	feed chan []*veritrail.Event

	rulesChanged atomic.Bool
	// alertsChanged is set when a person changed an alert of this
	// organization on this node: open is forgotten.
	alertsChanged atomic.Bool

	loaded   bool
	rules    []*compiled
	sig      string // the rules' ids and update times, to see changes
	states   map[string]*ruleState
	needText bool              // some rule reads content
	filter   *veritrail.Filter // the types every rule can match; nil: all
	access   map[string]bool   // author → may read content, as of the last reload

	cursor  int64 // durable: everything up to it judged and stored
	pos     int64 // in memory: everything up to it judged
	pending []hit // found after the cursor, not stored yet
	// pendingAt finds the pending hit of a rule and dedup key, so that a
	// rule firing on every event of a full window adds only the new
	// events to one hit instead of a copy of the window per event.
	pendingAt map[string]int
	// open holds the rules and dedup keys (rule id + "\x00" + key) that had
	// an alert neither resolved nor deleted when last stored: matches of
	// them only add to that alert, so storing them may wait
	// (AdvanceInterval); a match of any other key may open an alert and
	// is stored within ApplyInterval. urgent says a pending hit is such.
	open   map[string]bool
	urgent bool
	// byType memoizes, per event type, the rules whose conditions can
	// match it, with their windows, so an event runs only those (none
	// for alert records).
	byType map[string][]ruleRun
	judged int64 // events judged since the last sweep

	lastApply, lastAdvance, lastSnapshot, lastRules time.Time
}

func newOrgEval(e *Engine, o *veritrail.Org, cancel context.CancelFunc) *orgEval {
	return &orgEval{e: e, org: o.ID, orgName: o.Name, cancel: cancel, wake: make(chan struct{}, 1),
		feed: make(chan []*veritrail.Event, feedDepth), log: e.log.With(slog.String("org", o.Name))}
}

func (o *orgEval) poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *orgEval) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-o.wake:
	}
}

func (o *orgEval) run(ctx context.Context) {
	e := o.e
	failures := 0
	defer func() {
		if o.loaded {
			// Store what was found and where we are, so that a restart
			// replays little.
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			o.flush(sctx, true, true)
			cancel()
		}
	}()
	for ctx.Err() == nil {
		if !e.mayEvaluate(ctx, o.org) {
			o.loaded = false
			o.dropPending()
			o.drainFeed()
			o.sleep(ctx, e.cfg.PollInterval)
			continue
		}
		var err error
		switch {
		case !o.loaded:
			err = o.load(ctx)
		case o.rulesChanged.Load() || e.now().Sub(o.lastRules) >= e.cfg.RefreshInterval:
			err = o.reloadRules(ctx, false)
		}
		progressed := false
		if err == nil {
			progressed, err = o.step(ctx)
		}
		if err == nil {
			err = o.flush(ctx, false, false)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if veritrail.ErrorCode(err) == veritrail.EConflict {
				// Another evaluator moved the cursor: start again from it.
				o.log.Warn("rules: the cursor moved under this evaluator; reloading")
				o.loaded = false
				o.dropPending()
				continue
			}
			failures++
			o.log.Error("rules: evaluation failed; will retry", slog.Any("err", err), slog.Int("failures", failures))
			o.sleep(ctx, min(time.Duration(failures)*time.Second, 30*time.Second))
			continue
		}
		failures = 0
		if !progressed {
			wait := e.cfg.PollInterval
			if len(o.pending) > 0 {
				wait = min(wait, e.cfg.ApplyInterval)
			}
			o.sleep(ctx, wait)
		}
	}
}

// load rebuilds the evaluator from the store: rules, cursor, windows from
// the snapshot, then a replay of the events between the snapshot and the
// cursor (which raise nothing: what they raised is stored).
func (o *orgEval) load(ctx context.Context) error {
	st, err := o.e.store.RuleState(ctx, o.org)
	if err != nil {
		return err
	}
	o.cursor = st.Cursor
	o.dropPending()
	o.states = map[string]*ruleState{}
	from := st.SnapshotSeq
	if st.Snapshot != nil {
		var snap savedWindows
		if err := json.Unmarshal(st.Snapshot, &snap); err != nil {
			o.log.Error("rules: the saved windows do not decode; rebuilding them from the log", slog.Any("err", err))
			from = -1
		} else {
			for id, s := range snap.Rules {
				s.fixMaps()
				o.states[id] = s
			}
		}
	}
	if from < 0 || st.Snapshot == nil {
		from = max(-1, o.cursor-o.e.cfg.MaxReplay)
		o.states = map[string]*ruleState{}
	}
	o.pos = from
	if err := o.reloadRules(ctx, true); err != nil {
		return err
	}
	// Replay up to the cursor: windows only.
	if len(o.rules) == 0 {
		o.pos = max(o.pos, o.cursor)
	}
	for o.pos < o.cursor {
		if _, err := o.read(ctx, o.cursor+1); err != nil {
			return err
		}
	}
	o.dropPending()
	o.loaded = true
	now := o.e.now()
	o.lastApply, o.lastAdvance, o.lastSnapshot = now, now, now
	o.log.Debug("rules: evaluator loaded", slog.Int64("cursor", o.cursor), slog.Int64("replayed_from", from))
	return nil
}

// reloadRules compiles the organization's enabled rules (again), keeping
// the windows of rules whose version did not change. Unchanged rules are
// not recompiled unless force or their author's access changed.
func (o *orgEval) reloadRules(ctx context.Context, force bool) error {
	e := o.e
	o.rulesChanged.Store(false)
	o.lastRules = e.now()
	rs, err := e.store.ListRules(ctx, o.org)
	if err != nil {
		return err
	}
	access, err := o.contentAccess(ctx, rs)
	if err != nil {
		return err
	}
	var sig strings.Builder
	for _, r := range rs {
		sig.WriteString(r.ID + r.UpdatedAt.String() + "\n")
	}
	if !force && sig.String() == o.sig && maps_equal(access, o.access) {
		return nil
	}
	// Rules unchanged since they were compiled, whose author's access did
	// not change either, are kept as they are: writing one rule does not
	// recompile the others.
	kept := map[string]*compiled{}
	if !force {
		for _, c := range o.rules {
			if w, ok := access[c.rule.Author]; ok && w == o.access[c.rule.Author] {
				kept[c.rule.ID] = c
			}
		}
	}
	o.sig, o.access = sig.String(), access
	var rules []*compiled
	var types []*typeSet
	needText := false
	for _, r := range rs {
		s, err := decodeStoredSpec(r.Spec)
		if err != nil {
			e.setStatus(r.ID, func(st *ruleStatus) { st.Err = "the stored rule does not decode: " + errString(err) })
			continue
		}
		if !s.IsEnabled() {
			e.setStatus(r.ID, func(st *ruleStatus) { st.Err = "" })
			continue
		}
		if c := kept[r.ID]; c != nil && c.rule.UpdatedAt.Equal(r.UpdatedAt) && c.rule.Author == r.Author {
			c.rule = r
			rules = append(rules, c)
			types = append(types, c.types)
			needText = needText || c.readsContent
			continue
		}
		c, err := compile(e.env, s, access[r.Author])
		if err != nil {
			msg := errString(err)
			if !access[r.Author] && strings.Contains(msg, "content") {
				msg = "not running: " + msg + "; the author (" + r.Author + ") lost content access: write the rule again with a token that has content:read"
			}
			e.setStatus(r.ID, func(st *ruleStatus) { st.Err = msg })
			o.log.Warn("rules: a rule does not compile; it is not running", slog.String("rule", r.Name), slog.String("err", msg))
			continue
		}
		e.setStatus(r.ID, func(st *ruleStatus) { st.Err = "" })
		c.rule = r
		rules = append(rules, c)
		types = append(types, c.types)
		needText = needText || c.readsContent
	}
	states := map[string]*ruleState{}
	for _, c := range rules {
		st := o.states[c.rule.ID]
		if st == nil || st.Version != c.version {
			st = newRuleState(c.version)
		}
		states[c.rule.ID] = st
		if c.spec.Kind == KindNewValue && !st.Primed {
			if err := o.prime(ctx, c, st, o.pos); err != nil {
				return err
			}
		}
	}
	o.rules, o.states, o.needText = rules, states, needText
	o.byType, o.open = nil, nil
	o.filter = nil
	if f, ok := typeFilter(types); ok && len(types) > 0 {
		o.filter = &f
	}
	return nil
}

func maps_equal(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// contentAccess says, for each author of rs, whether it may read content
// now: a token neither revoked nor expired whose scopes hold content:read,
// a user not disabled whose role does, or the built-in pack.
func (o *orgEval) contentAccess(ctx context.Context, rs []*veritrail.Rule) (map[string]bool, error) {
	return authorsAccess(ctx, o.e.store, o.org, o.e.now(), rs)
}

func authorsAccess(ctx context.Context, s veritrail.Store, org int64, now time.Time, rs []*veritrail.Rule) (map[string]bool, error) {
	out := map[string]bool{}
	var toks []*veritrail.Token
	var users []*veritrail.User
	var err error
	for _, r := range rs {
		a := r.Author
		if _, done := out[a]; done {
			continue
		}
		switch {
		case a == authorBuiltin:
			out[a] = true
		case strings.HasPrefix(a, "tok_"):
			if toks == nil {
				if toks, err = s.ListTokens(ctx, org); err != nil {
					return nil, err
				}
			}
			out[a] = false
			for _, t := range toks {
				if t.ID == a && t.RevokedAt == nil && (t.ExpiresAt == nil || t.ExpiresAt.After(now)) {
					out[a] = slices.Contains(veritrail.EffectiveScopes(t.Role, t.Scopes), veritrail.ScopeContentRead)
				}
			}
		case strings.HasPrefix(a, "usr_"):
			if users == nil {
				if users, err = s.ListUsers(ctx, org); err != nil {
					return nil, err
				}
			}
			out[a] = false
			for _, u := range users {
				if u.ID == a && u.DisabledAt == nil {
					out[a] = slices.Contains(veritrail.EffectiveScopes(u.Role, nil), veritrail.ScopeContentRead)
				}
			}
		default:
			out[a] = false
		}
	}
	return out, nil
}

// step judges what the commits fed, or else the next page of the log, if
// any; it reports whether there was something.
func (o *orgEval) step(ctx context.Context) (bool, error) {
	fed := false
	for {
		select {
		case evs := <-o.feed:
			if err := o.consume(ctx, evs); err != nil {
				return fed, err
			}
			fed = true
			continue
		default:
		}
		break
	}
	if fed {
		return true, nil
	}
	head, _, err := o.e.store.LogHead(ctx, o.org)
	if err != nil {
		return false, err
	}
	if head-1 <= o.pos {
		return false, nil
	}
	if len(o.rules) == 0 { // all disabled: nothing to read the log for
		o.pos = head - 1
		return true, nil
	}
	return o.read(ctx, head)
}

// consume judges the events of a commit, as they were committed. Events
// missed before them (dropped feeds, other nodes' commits) are read from
// the log first; events judged already are passed over.
func (o *orgEval) consume(ctx context.Context, evs []*veritrail.Event) error {
	if len(evs) == 0 {
		return nil
	}
	first := evs[0].Seq
	if len(o.rules) == 0 {
		o.pos = max(o.pos, evs[len(evs)-1].Seq)
		return nil
	}
	for o.pos < first-1 {
		if _, err := o.read(ctx, first); err != nil {
			return err
		}
	}
	for _, ev := range evs {
		if ev.Seq <= o.pos {
			continue
		}
		o.judge(ev, ev.Content)
		o.pos = ev.Seq
	}
	return nil
}

// drainFeed forgets what the commits fed (this node does not evaluate
// the organization now).
func (o *orgEval) drainFeed() {
	for {
		select {
		case <-o.feed:
		default:
			return
		}
	}
}

// read judges events after pos and below head (one page, at most) and
// moves pos past them.
func (o *orgEval) read(ctx context.Context, head int64) (bool, error) {
	q := &veritrail.Query{Order: veritrail.OrderSeq, WithContent: o.needText, Limit: veritrail.MaxLimit}
	if o.filter != nil {
		q.Filters = []veritrail.Filter{*o.filter}
	}
	q.After = &veritrail.Cursor{Order: veritrail.OrderSeq, Seq: o.pos, Fingerprint: q.Fingerprint()}
	page, err := o.e.store.Query(ctx, o.org, q)
	if err != nil {
		return false, err
	}
	for i := range page.Events {
		se := &page.Events[i]
		if se.Seq >= head {
			o.pos = head - 1
			return true, nil
		}
		ev, err := veritrail.ParseEnvelope(se.Envelope)
		if err != nil {
			o.log.Error("rules: an envelope does not parse; skipped", slog.Int64("seq", se.Seq), slog.Any("err", err))
		} else {
			o.judge(ev, se.Content)
		}
		o.pos = se.Seq
	}
	if len(page.Events) < q.Limit || page.Next == nil {
		// Every event below head was visible to the query: those it did
		// not return cannot match.
		o.pos = head - 1
	}
	return true, nil
}

// judge runs every rule on one event (content: its content, if the
// rules may need it); what they find is kept when the event is after the
// cursor and after the rule's start.
func (o *orgEval) judge(ev *veritrail.Event, content []byte) {
	runs := o.rulesFor(ev.Type)
	if len(runs) > 0 {
		if !o.needText {
			content = nil
		}
		o.judgeBy(runs, ev, content)
	}
	if o.judged++; o.judged >= 8192 {
		o.judged = 0
		for _, c := range o.rules {
			o.states[c.rule.ID].sweep(int64(c.window), int64(c.lookback))
		}
	}
}

// judgeBy runs the rules of runs, which can match ev's type, on ev.
func (o *orgEval) judgeBy(runs []ruleRun, ev *veritrail.Event, content []byte) {
	a := activation{e: ev, content: content}
	r := ref{ID: ev.ID, Seq: ev.Seq, T: ev.Time.UnixNano()}
	for _, run := range runs {
		c := run.c
		hits, err := c.observeMatching(run.st, &a, r)
		if err != nil {
			o.e.setStatus(c.rule.ID, func(st *ruleStatus) { st.EvalErrors++; st.LastError = errString(err) })
		}
		if len(hits) > 0 && ev.Seq > o.cursor && ev.Seq >= c.rule.SinceSeq {
			for _, h := range hits {
				o.addPending(h)
			}
		}
	}
}

// ruleRun is a rule with its windows.
type ruleRun struct {
	c  *compiled
	st *ruleState
}

// rulesFor returns the rules whose conditions can match events of type
// typ, none for alert records, which are not judged (no loops). It is
// memoized: a log has few types; past 10,000 the memo starts again.
func (o *orgEval) rulesFor(typ string) []ruleRun {
	if rs, ok := o.byType[typ]; ok {
		return rs
	}
	if o.byType == nil || len(o.byType) >= 10000 {
		o.byType = map[string][]ruleRun{}
	}
	var rs []ruleRun
	if veritrail.Category(typ) != "alert" {
		for _, c := range o.rules {
			if c.types.contains(typ) {
				rs = append(rs, ruleRun{c, o.states[c.rule.ID]})
			}
		}
	}
	o.byType[typ] = rs
	return rs
}

// addPending keeps a hit until it is stored. A hit of a rule and key
// already pending is folded into it: only its events after that hit's
// newest are kept, which is what deciding the two in turn would count
// (addEvents counts events after the alert's newest). h.window may be
// the rule's own window, changed by the next event: it is copied.
func (o *orgEval) addPending(h hit) {
	k := h.rule.id() + "\x00" + h.key
	if !o.open[k] {
		o.urgent = true
	}
	if i, ok := o.pendingAt[k]; ok && i < len(o.pending) && o.pending[i].rule == h.rule && o.pending[i].key == h.key {
		p := &o.pending[i]
		tail, newest := len(p.window), p.newest
		add := func(r ref) {
			if r.Seq > p.newest {
				p.window = append(p.window, r)
				newest = max(newest, r.Seq)
			}
		}
		if h.distinct != nil {
			for _, r := range h.distinct.Values {
				add(r)
			}
			slices.SortFunc(p.window[tail:], compareRefs)
		} else {
			for _, r := range h.window {
				add(r)
			}
		}
		p.newest = newest
		return
	}
	h.window = slices.Clone(h.refs())
	h.distinct = nil
	h.newest = -1
	for _, r := range h.window {
		h.newest = max(h.newest, r.Seq)
	}
	if o.pendingAt == nil {
		o.pendingAt = map[string]int{}
	}
	o.pendingAt[k] = len(o.pending)
	o.pending = append(o.pending, h)
}

// dropPending forgets the pending hits: stored, or to be found again
// from the cursor.
func (o *orgEval) dropPending() {
	o.pending = nil
	clear(o.pendingAt)
}

// prime teaches a new_value rule the values its lookback held up to seq
// upTo, so that it does not take every value for new when it starts.
func (o *orgEval) prime(ctx context.Context, c *compiled, st *ruleState, upTo int64) error {
	if err := primeFromLog(ctx, o.e.store, o.org, o.e.now(), c, st, func(seq int64) bool { return seq <= upTo }); err != nil {
		return err
	}
	return nil
}

// primeFromLog feeds a new_value rule the events of its lookback before
// now that keep says to, without raising anything (at most 1,000,000).
func primeFromLog(ctx context.Context, s veritrail.Store, org int64, now time.Time, c *compiled, st *ruleState, keep func(int64) bool) error {
	q := &veritrail.Query{Order: veritrail.OrderAsc, Since: now.Add(-c.lookback), Until: now.Add(time.Second),
		WithContent: c.readsContent, Limit: veritrail.MaxLimit}
	if f, ok := typeFilter([]*typeSet{c.types}); ok {
		q.Filters = []veritrail.Filter{f}
	}
	seen := 0
	for seen < 1000000 {
		page, err := s.Query(ctx, org, q)
		if err != nil {
			return err
		}
		for i := range page.Events {
			se := &page.Events[i]
			if !keep(se.Seq) {
				continue
			}
			ev, err := veritrail.ParseEnvelope(se.Envelope)
			if err != nil || veritrail.Category(ev.Type) == "alert" {
				continue
			}
			c.observe(st, &activation{e: ev, content: se.Content}, ref{ID: ev.ID, Seq: se.Seq, T: ev.Time.UnixNano()})
		}
		seen += len(page.Events)
		if page.Next == nil || len(page.Events) < q.Limit {
			break
		}
		q.After = page.Next
	}
	st.Primed = true
	return nil
}

// flush stores what was found and moves the cursor: at once when force,
// otherwise when ApplyInterval passed since the last store (something
// found that may open an alert) or AdvanceInterval (nothing found, or
// only additions to alerts known to be open). The windows go with it when
// snapshot, or when SnapshotInterval passed since they last did.
func (o *orgEval) flush(ctx context.Context, force, snapshot bool) error {
	e := o.e
	now := e.now()
	if o.pos == o.cursor && len(o.pending) == 0 && !snapshot {
		return nil
	}
	if o.alertsChanged.Swap(false) {
		o.open = nil
		o.urgent = o.urgent || len(o.pending) > 0
	}
	switch {
	case force:
	case len(o.pending) > 0 && now.Sub(o.lastApply) < e.cfg.ApplyInterval:
		return nil
	case len(o.pending) > 0 && !o.urgent && now.Sub(o.lastApply) < e.cfg.AdvanceInterval:
		// Only additions to alerts that are open: they may wait, and
		// the store's writer (which ingest shares) is spared.
		return nil
	case len(o.pending) == 0 && now.Sub(o.lastAdvance) < e.cfg.AdvanceInterval:
		return nil
	}
	c := &veritrail.RuleCommit{From: o.cursor, To: o.pos}
	if err := o.decide(ctx, now, c); err != nil {
		return err
	}
	if snapshot || now.Sub(o.lastSnapshot) >= e.cfg.SnapshotInterval {
		b, err := json.Marshal(savedWindows{Rules: o.states})
		if err != nil {
			return err
		}
		c.Snapshot = b
	}
	if c.From == c.To && len(c.NewAlerts) == 0 && len(c.Merged) == 0 && c.Snapshot == nil {
		return nil
	}
	if err := e.store.CommitRules(ctx, o.org, c); err != nil {
		return err
	}
	o.cursor, o.urgent = o.pos, false
	o.dropPending()
	o.lastApply, o.lastAdvance = now, now
	if c.Snapshot != nil {
		o.lastSnapshot = now
	}
	if len(c.Records) > 0 {
		recs := make([]*veritrail.AlertRecord, 0, len(c.Records))
		for _, ev := range c.Records {
			b, _ := veritrail.MarshalInput(ev)
			recs = append(recs, &veritrail.AlertRecord{OrgID: o.org, ID: ev.ID, Event: b})
		}
		if err := e.appendRecords(ctx, o.org, recs); err != nil {
			o.log.Warn("rules: alert records stored but not appended yet; will retry", slog.Any("err", err))
		}
	}
	if len(c.Deliveries) > 0 {
		e.wakeNotifier()
	}
	return nil
}

// savedWindows is the saved form of an evaluator's windows.
type savedWindows struct {
	Rules map[string]*ruleState `json:"rules"`
}

// Sync evaluates org's log up to its head now and stores what it found
// (the windows only when SnapshotInterval passed), as the running engine
// would: for tools and tests. It MUST NOT be called while Run runs.
func (e *Engine) Sync(ctx context.Context, org int64) error {
	e.mu.Lock()
	o := e.evals[org]
	if o == nil {
		ob, err := e.store.OrgByID(ctx, org)
		if err != nil {
			e.mu.Unlock()
			return err
		}
		o = newOrgEval(e, ob, func() {})
		e.evals[org] = o
	}
	e.mu.Unlock()
	if !e.mayEvaluate(ctx, org) {
		o.loaded = false
		o.dropPending()
		return nil
	}
	if !o.loaded {
		if err := o.load(ctx); err != nil {
			return err
		}
	} else if err := o.reloadRules(ctx, false); err != nil {
		return err
	}
	for {
		more, err := o.step(ctx)
		if err != nil {
			return err
		}
		if !more {
			break
		}
	}
	err := o.flush(ctx, true, false)
	if veritrail.ErrorCode(err) == veritrail.EConflict {
		o.loaded = false
		o.dropPending()
	}
	return err
}
