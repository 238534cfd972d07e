package rules

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/notify"
)

// AlertPatch is the body of PATCH /api/v1/alerts/{id}.
type AlertPatch struct {
	State string `json:"state"`
	// SnoozeUntil or SnoozeFor say how long a snooze lasts (one of
	// them, with state snoozed).
	SnoozeUntil *time.Time          `json:"snooze_until,omitempty"`
	SnoozeFor   *veritrail.Duration `json:"snooze_for,omitempty"`
	Note        string              `json:"note,omitempty"`
}

// transitions are the states each state may move to by hand.
var transitions = map[string][]string{
	veritrail.AlertOpen:         {veritrail.AlertAcknowledged, veritrail.AlertSnoozed, veritrail.AlertResolved},
	veritrail.AlertAcknowledged: {veritrail.AlertOpen, veritrail.AlertSnoozed, veritrail.AlertResolved},
	veritrail.AlertSnoozed:      {veritrail.AlertOpen, veritrail.AlertAcknowledged, veritrail.AlertResolved},
	veritrail.AlertResolved:     {veritrail.AlertOpen},
}

// recordType is the alert.* type of a change to state to (from from).
func recordType(from, to string) string {
	switch {
	case to == veritrail.AlertOpen && from == veritrail.AlertSnoozed:
		return "alert.unsnoozed"
	case to == veritrail.AlertOpen:
		return "alert.reopened"
	}
	return "alert." + to
}

// routeEvent is what a change to state to tells routes.
func routeEvent(to string) string {
	if to == veritrail.AlertOpen {
		return notify.EventReopened
	}
	return to
}

// ChangeAlert applies a person's change of an alert's state: the change,
// its alert.* record and the notifications of the routes that were told
// of the alert, in one store transaction. It returns the alert as it now
// is, and whether anything changed (setting the state it has is no
// change, except a snooze's end).
func (e *Engine) ChangeAlert(ctx context.Context, org int64, actor veritrail.Actor, id string, p *AlertPatch) (*veritrail.Alert, bool, error) {
	if !slices.Contains(veritrail.AlertStates, p.State) {
		return nil, false, invalid("state", "must be one of open, acknowledged, snoozed, resolved")
	}
	if len(p.Note) > 2000 {
		return nil, false, invalid("note", "at most 2000 bytes")
	}
	now := e.now().UTC()
	var until *time.Time
	switch {
	case p.State != veritrail.AlertSnoozed && (p.SnoozeUntil != nil || p.SnoozeFor != nil):
		return nil, false, invalid("snooze_until", "only with state snoozed")
	case p.State == veritrail.AlertSnoozed && (p.SnoozeUntil == nil) == (p.SnoozeFor == nil):
		return nil, false, invalid("snooze_for", "give snooze_for (a duration such as 2h) or snooze_until (a time), one of them")
	case p.SnoozeFor != nil:
		if *p.SnoozeFor < veritrail.Duration(time.Minute) || *p.SnoozeFor > veritrail.Duration(30*24*time.Hour) {
			return nil, false, invalid("snooze_for", "1m to 30d")
		}
		t := now.Add(time.Duration(*p.SnoozeFor))
		until = &t
	case p.SnoozeUntil != nil:
		if !p.SnoozeUntil.After(now) || p.SnoozeUntil.After(now.Add(30*24*time.Hour)) {
			return nil, false, invalid("snooze_until", "a time within the next 30 days")
		}
		t := p.SnoozeUntil.UTC()
		until = &t
	}
	a, err := e.store.AlertByID(ctx, org, id)
	if err != nil {
		return nil, false, err
	}
	if a.State == p.State && p.State != veritrail.AlertSnoozed {
		return a, false, nil
	}
	if p.State != a.State && !slices.Contains(transitions[a.State], p.State) {
		return nil, false, veritrail.Errorf(veritrail.EConflict, "an alert that is %s cannot become %s; reopen it first (state open)", a.State, p.State)
	}
	by := actor.ID
	if by == "" {
		by = actor.Name
	}
	a, changed, err := e.change(ctx, a, p.State, until, by, p.Note, actor, now)
	if err == nil && changed && (a.State == veritrail.AlertResolved || a.State == veritrail.AlertOpen) {
		e.alertsChanged(org)
	}
	return a, changed, err
}

// alertsChanged tells org's evaluator on this node that a person resolved
// or reopened one of its alerts, so that the next match of that key is
// stored promptly (it may open an alert). Evaluators on other nodes learn
// it at their next store, at most AdvanceInterval later.
func (e *Engine) alertsChanged(org int64) {
	e.mu.Lock()
	o := e.evals[org]
	e.mu.Unlock()
	if o != nil {
		o.alertsChanged.Store(true)
	}
}

// endSnooze opens a snoozed alert again when its snooze is over.
func (e *Engine) endSnooze(ctx context.Context, a *veritrail.Alert) (*veritrail.Alert, error) {
	a, _, err := e.change(ctx, a, veritrail.AlertOpen, nil, authorBuiltin, "the snooze ended", veritrail.SystemActor("rules"), e.now().UTC())
	return a, err
}

func (e *Engine) change(ctx context.Context, a *veritrail.Alert, to string, until *time.Time, by, note string, actor veritrail.Actor, now time.Time) (*veritrail.Alert, bool, error) {
	from := a.State
	ds, err := e.changeDeliveries(ctx, a, to, now)
	if err != nil {
		return nil, false, err
	}
	next := *a
	next.State, next.SnoozedUntil, next.StateBy, next.StateAt, next.Note, next.UpdatedAt, next.RecordedAt = to, until, by, now, note, now, now
	kind := ""
	if r, err := e.store.RuleByID(ctx, a.OrgID, a.RuleID); err == nil {
		if s, err := decodeStoredSpec(r.Spec); err == nil {
			kind = s.Kind
		}
	}
	extra := map[string]any{"previous_state": from}
	if note != "" {
		extra["note"] = note
	}
	if until != nil {
		extra["snoozed_until"] = until.Format(time.RFC3339Nano)
	}
	rec := alertRecord(recordType(from, to), &next, kind, actor, now, extra)
	c := &veritrail.AlertChange{AlertID: a.ID, From: from, To: to, SnoozedUntil: until, By: by, At: now, Note: note,
		Deliveries: ds, Record: rec}
	if err := e.store.ChangeAlert(ctx, a.OrgID, c); err != nil {
		return nil, false, err
	}
	b, _ := veritrail.MarshalInput(rec)
	if err := e.appendRecords(ctx, a.OrgID, []*veritrail.AlertRecord{{OrgID: a.OrgID, ID: rec.ID, Event: b}}); err != nil {
		e.log.Warn("rules: alert record stored but not appended yet; will retry", "err", err)
	}
	if len(ds) > 0 {
		e.wakeNotifier()
	}
	got, err := e.store.AlertByID(ctx, a.OrgID, a.ID)
	if err != nil {
		return &next, true, nil
	}
	return got, true, nil
}

// changeDeliveries queues the notifications of a change. A reopened alert
// goes to the rule's routes again like a new one (escalation steps
// included). Other changes go to the routes that were told of the alert:
// those whose opening (or reopening) was delivered, or is still queued
// for a route that is not an escalation step: a step that never went out
// is not told that the alert was acknowledged.
func (e *Engine) changeDeliveries(ctx context.Context, a *veritrail.Alert, to string, now time.Time) ([]*veritrail.Delivery, error) {
	ev := routeEvent(to)
	if ev == notify.EventReopened {
		if r, err := e.store.RuleByID(ctx, a.OrgID, a.RuleID); err == nil {
			if s, err := decodeStoredSpec(r.Spec); err == nil {
				return e.deliveries(a.OrgID, a, r, s, ev, now)
			}
		}
	}
	prev, err := e.store.ListDeliveries(ctx, a.OrgID, a.ID)
	if err != nil {
		return nil, err
	}
	told := map[int]*veritrail.Delivery{}
	for _, d := range prev {
		if d.Event != notify.EventOpened && d.Event != notify.EventReopened {
			continue
		}
		if d.State == veritrail.DeliveryDelivered || (d.State == veritrail.DeliveryPending && !d.Escalation) {
			told[d.RouteIndex] = d
		}
	}
	var out []*veritrail.Delivery
	for _, i := range sortedKeys(told) {
		d := told[i]
		var q notify.Queued
		if err := json.Unmarshal(d.Route, &q); err != nil {
			continue
		}
		if !q.Route.SendsEvent(ev) {
			continue
		}
		out = append(out, &veritrail.Delivery{ID: veritrail.NewID("dlv"), OrgID: a.OrgID, AlertID: a.ID, RuleID: d.RuleID,
			RouteIndex: i, Destination: d.Destination, Route: d.Route, Event: ev, State: veritrail.DeliveryPending,
			DueAt: now, CreatedAt: now})
	}
	return out, nil
}

func sortedKeys(m map[int]*veritrail.Delivery) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
