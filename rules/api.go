package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/notify"
)

// What the HTTP API needs: building rules from request bodies (checked,
// secrets sealed), showing them, and testing rules against the stored log.

// decodeStoredSpec reads a stored rule's spec (route secrets sealed).
func decodeStoredSpec(b []byte) (*Spec, error) {
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// openRoutes returns s's routes with their secrets in the clear.
func (e *Engine) openRoutes(r *veritrail.Rule, s *Spec) ([]notify.Route, error) {
	out := make([]notify.Route, len(s.Routes))
	for i, rt := range s.Routes {
		if err := rt.Open(e.cfg.Key, r.OrgID, r.ID, i); err != nil {
			return nil, err
		}
		out[i] = rt
	}
	return out, nil
}

// Author names the principal p as a rule's author: the person of a
// console session opened by e-mail link or single sign-on, otherwise the
// token.
func Author(p *veritrail.Principal) string {
	if p.User != nil {
		return p.User.ID
	}
	return p.TokenID
}

// Build checks a rule body written by author (mayReadContent: whether
// author may read content) and returns the rule to store: a new one, or
// old changed. changed is false when old already says the same thing
// (nothing to store: applying a rules file again changes nothing).
// Errors are EInvalid and name the field (routes[0].url, condition with
// the position of a CEL error).
func (e *Engine) Build(ctx context.Context, org int64, author string, mayReadContent bool, body []byte, old *veritrail.Rule) (*veritrail.Rule, bool, error) {
	s, err := DecodeSpec(body)
	if err != nil {
		return nil, false, err
	}
	if s.Pack != "" && author != authorBuiltin {
		return nil, false, invalid("pack", "is set by the server (PUT /api/v1/rules/pack)")
	}
	return e.build(ctx, org, author, mayReadContent, s, old)
}

func (e *Engine) build(ctx context.Context, org int64, author string, mayReadContent bool, s *Spec, old *veritrail.Rule) (*veritrail.Rule, bool, error) {
	var oldSpec *Spec
	var oldRoutes []notify.Route // in the clear; nil if they do not open
	if old != nil {
		var err error
		if oldSpec, err = decodeStoredSpec(old.Spec); err != nil {
			return nil, false, err
		}
		if oldRoutes, err = e.openRoutes(old, oldSpec); err == nil {
			keepSecrets(s.Routes, oldRoutes)
		}
	}
	if err := s.Check(); err != nil {
		return nil, false, err
	}
	if err := e.checkRoutes(ctx, s.Routes); err != nil {
		return nil, false, err
	}
	if old != nil && oldRoutes != nil {
		o := *oldSpec
		o.Routes = oldRoutes
		if sameSpec(&o, s) {
			return old, false, nil
		}
	}
	if _, err := compile(e.env, s, mayReadContent); err != nil {
		return nil, false, err
	}
	now := e.now().UTC()
	r := &veritrail.Rule{ID: veritrail.NewID("rule"), OrgID: org, Name: s.Name, Author: author, CreatedAt: now, UpdatedAt: now}
	if old != nil {
		r.ID, r.CreatedAt = old.ID, old.CreatedAt
	}
	sealed := *s
	sealed.Routes = slices.Clone(s.Routes)
	for i := range sealed.Routes {
		if err := sealed.Routes[i].Seal(e.cfg.Key, org, r.ID, i); err != nil {
			return nil, false, err
		}
	}
	var err error
	if r.Spec, err = json.Marshal(&sealed); err != nil {
		return nil, false, err
	}
	// The rule judges events from now on; an edit that leaves its windows
	// as they were keeps its start.
	if old != nil && versionOf(oldSpec) == versionOf(s) {
		r.SinceSeq = old.SinceSeq
	} else if r.SinceSeq, _, err = e.store.LogHead(ctx, org); err != nil {
		return nil, false, err
	}
	return r, true, nil
}

// keepSecrets gives each route of routes whose secrets are exactly what the
// API shows of a stored route's ("(set)", or a Slack or Teams URL's scheme
// and host) that route's secrets in the clear: a rule read from the API and
// written back, as the console does, keeps its secrets without anyone
// retyping them. A route takes them only from a stored route of the same
// type that shows the same everywhere but in its severity, delay and
// events (a webhook's URL, a ticket's project, …), the one at its own place
// first, each stored route once: a route removed or moved does not hand its
// secret to a neighbour. A placeholder left unmatched stays, and the route's
// check refuses it.
func keepSecrets(routes, stored []notify.Route) {
	used := make([]bool, len(stored))
	for i := range routes {
		r := &routes[i]
		want := identity(r)
		order := []int{i}
		for j := range stored {
			if j != i {
				order = append(order, j)
			}
		}
		for _, j := range order {
			if j >= len(stored) || used[j] || stored[j].Type != r.Type || identity(&stored[j]) != want {
				continue
			}
			if takeSecrets(r, &stored[j]) {
				used[j] = true
			}
			break
		}
	}
}

// identity is what the API shows of a route that tells one destination
// from another: all of it but when and for what it is sent.
func identity(r *notify.Route) string {
	m := r.Masked()
	m.MinSeverity, m.After, m.Events = "", 0, nil
	b, _ := json.Marshal(&m)
	return string(b)
}

// takeSecrets puts old's secrets in the clear into r where r's are what the
// API shows of old's, and reports whether it put any.
func takeSecrets(r, old *notify.Route) bool {
	shown := old.Masked()
	took := false
	for _, f := range []struct {
		cur          *string
		shown, clear string
	}{{&r.Secret, shown.Secret, old.Secret}, {&r.URL, shown.URL, old.URL},
		{&r.RoutingKey, shown.RoutingKey, old.RoutingKey}, {&r.Token, shown.Token, old.Token}} {
		if *f.cur != "" && f.shown != f.clear && *f.cur == f.shown {
			*f.cur, took = f.clear, true
		}
	}
	return took
}

// checkRoutes checks routes as written (secrets in the clear).
func (e *Engine) checkRoutes(ctx context.Context, routes []notify.Route) error {
	var n Notifier = e.cfg.Notifier
	for i := range routes {
		rt := &routes[i]
		if err := rt.Check(ctx, e.outbound()); err != nil {
			var fe *notify.FieldError
			if errors.As(err, &fe) {
				return invalid(fmt.Sprintf("routes[%d].%s", i, fe.Field), "%s", fe.Message)
			}
			return invalid(fmt.Sprintf("routes[%d]", i), "%v", err)
		}
		if rt.Type == notify.Email && (n == nil || !n.MailEnabled()) {
			return invalid(fmt.Sprintf("routes[%d].type", i), "e-mail routes need an SMTP server (VERITRAIL_SMTP_URL) on the server")
		}
	}
	return nil
}

func (e *Engine) outbound() (g netguard.Guard) {
	if e.cfg.Notifier != nil {
		return e.cfg.Notifier.Outbound()
	}
	return g
}

// sameSpec reports whether two specs (routes in the clear) say the same.
func sameSpec(a, b *Spec) bool {
	x, _ := json.Marshal(normalized(a))
	y, _ := json.Marshal(normalized(b))
	return string(x) == string(y)
}

func normalized(s *Spec) *Spec {
	n := *s
	if n.Enabled != nil && *n.Enabled {
		n.Enabled = nil
	}
	return &n
}

// RuleView is a rule as the API shows it: its spec with route secrets
// masked, and how it fares.
type RuleView struct {
	ID string `json:"id"`
	Spec
	Author    string    `json:"author"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Status is running, disabled, or error (Error says why).
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// EvaluationErrors counts events the rule could not judge (a missing
	// content key): they did not match. LastEvaluationError is the latest.
	EvaluationErrors    int64  `json:"evaluation_errors,omitempty"`
	LastEvaluationError string `json:"last_evaluation_error,omitempty"`
}

// View returns how the API shows r.
func (e *Engine) View(r *veritrail.Rule) (*RuleView, error) {
	s, err := decodeStoredSpec(r.Spec)
	if err != nil {
		return nil, err
	}
	v := &RuleView{ID: r.ID, Spec: *s, Author: r.Author, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	enabled := s.IsEnabled()
	v.Enabled = &enabled
	v.Routes = make([]notify.Route, len(s.Routes))
	for i, rt := range s.Routes {
		if err := rt.Open(e.cfg.Key, r.OrgID, r.ID, i); err != nil {
			rt.Sealed = ""
		}
		v.Routes[i] = rt.Masked()
	}
	st := e.statusOf(r.ID)
	switch {
	case !enabled:
		v.Status = "disabled"
	case st.Err != "":
		v.Status, v.Error = "error", st.Err
	default:
		v.Status = "running"
	}
	v.EvaluationErrors, v.LastEvaluationError = st.EvalErrors, st.LastError
	return v, nil
}

// TestAlert is an alert a rule would have raised.
type TestAlert struct {
	Rule      string          `json:"rule"`
	Severity  string          `json:"severity"`
	DedupKey  string          `json:"dedup_key"`
	Group     json.RawMessage `json:"group,omitempty"`
	Count     int64           `json:"count"`
	EventIDs  []string        `json:"event_ids"`
	FirstSeen time.Time       `json:"first_seen"`
	LastSeen  time.Time       `json:"last_seen"`
	// FiredAt is the time of the event that raised it.
	FiredAt time.Time `json:"fired_at"`
}

// TestResult is what a test replay found.
type TestResult struct {
	Since   time.Time   `json:"since"`
	Until   time.Time   `json:"until"`
	Scanned int64       `json:"events_scanned"`
	Alerts  []TestAlert `json:"alerts"`
	// Truncated: the replay stopped at its limit of events or alerts.
	Truncated bool `json:"truncated,omitempty"`
}

// maxTestEvents bounds the events one test replays.
const maxTestEvents = 5000000

// Test replays org's stored events of [since, until) through rules (JSON
// bodies, checked as Build checks them, but their routes are never used)
// and returns what they would have raised, at most maxAlerts, sending
// nothing and storing nothing. Matches of one dedup key are one alert, as
// if nobody resolved anything. Events are judged in time order.
func (e *Engine) Test(ctx context.Context, org int64, mayReadContent bool, bodies []json.RawMessage, since, until time.Time, maxAlerts int) (*TestResult, error) {
	if len(bodies) == 0 || len(bodies) > MaxRules {
		return nil, invalid("rules", "1 to %d rules", MaxRules)
	}
	var rules []*compiled
	var types []*typeSet
	needText := false
	for i, b := range bodies {
		s, err := DecodeSpec(b)
		if err == nil {
			s.Routes = nil // never used here: not checked either
			var c *compiled
			if c, err = compile(e.env, s, mayReadContent); err == nil {
				rules = append(rules, c)
				types = append(types, c.types)
				needText = needText || c.readsContent
				continue
			}
		}
		var ve *veritrail.Error
		if errors.As(err, &ve) {
			f := fmt.Sprintf("rules[%d]", i)
			if ve.Field != "" {
				f += "." + ve.Field
			}
			return nil, &veritrail.Error{Code: ve.Code, Index: -1, Field: f, Message: fmt.Sprintf("rules[%d]: %s", i, ve.Message)}
		}
		return nil, err
	}
	states := make([]*ruleState, len(rules))
	for i, c := range rules {
		states[i] = newRuleState(c.version)
		if c.spec.Kind == KindNewValue {
			// What the lookback held before since.
			if err := primeFromLog(ctx, e.store, org, since, c, states[i], func(int64) bool { return true }); err != nil {
				return nil, err
			}
		}
	}
	res := &TestResult{Since: since, Until: until, Alerts: []TestAlert{}}
	q := &veritrail.Query{Order: veritrail.OrderAsc, Since: since, Until: until, WithContent: needText, Limit: veritrail.MaxLimit}
	if f, ok := typeFilter(types); ok {
		q.Filters = []veritrail.Filter{f}
	}
	// The alerts, as if nobody resolved anything: one per rule and key.
	type found struct {
		rule    *compiled
		alert   *veritrail.Alert
		firedAt time.Time
	}
	var alerts []*found
	index := map[string]*found{} // rule + key
	for res.Scanned < maxTestEvents && !res.Truncated {
		page, err := e.store.Query(ctx, org, q)
		if err != nil {
			return nil, err
		}
		for i := range page.Events {
			se := &page.Events[i]
			ev, err := veritrail.ParseEnvelope(se.Envelope)
			if err != nil || veritrail.Category(ev.Type) == "alert" {
				continue
			}
			a := &activation{e: ev, content: se.Content}
			r := ref{ID: ev.ID, Seq: se.Seq, T: ev.Time.UnixNano()}
			for ri, c := range rules {
				hits, _ := c.observe(states[ri], a, r)
				for _, h := range hits {
					k := fmt.Sprint(ri) + "\x00" + h.key
					if f := index[k]; f != nil {
						addEvents(f.alert, h.refs(), false)
						continue
					}
					if len(alerts) >= maxAlerts {
						res.Truncated = true
						continue
					}
					f := &found{rule: c, alert: &veritrail.Alert{DedupKey: h.key, Group: c.groupJSON(h.group), LastSeq: -1}, firedAt: ev.Time.UTC()}
					addEvents(f.alert, h.refs(), false)
					index[k] = f
					alerts = append(alerts, f)
				}
			}
		}
		res.Scanned += int64(len(page.Events))
		if page.Next == nil || len(page.Events) < q.Limit {
			break
		}
		q.After = page.Next
	}
	if res.Scanned >= maxTestEvents {
		res.Truncated = true
	}
	for _, f := range alerts {
		a := f.alert
		ids := a.EventIDs
		if len(ids) > 10 {
			ids = ids[:10]
		}
		res.Alerts = append(res.Alerts, TestAlert{Rule: f.rule.spec.Name, Severity: f.rule.spec.Severity, DedupKey: a.DedupKey,
			Group: a.Group, Count: a.Count, EventIDs: ids, FirstSeen: a.FirstSeen, LastSeen: a.LastSeen, FiredAt: f.firedAt})
	}
	return res, nil
}
