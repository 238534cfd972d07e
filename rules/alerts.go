package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/notify"
)

// authorBuiltin is the author of the built-in pack's rules.
const authorBuiltin = "veritrail"

// updateRecordEvery throttles alert.updated records: an alert that keeps
// matching is recorded at most this often (its count is in every later
// record too).
const updateRecordEvery = time.Minute

// newAlertID returns a time-sortable alert id.
func newAlertID(now time.Time) string {
	return "alt_" + strings.TrimPrefix(veritrail.NewEventID(now), "evt_")
}

// decide turns the pending hits into the commit's new alerts, merges,
// deliveries and records. For each rule and dedup key the newest alert
// decides: while it is not resolved, matches are added to it; within the
// rule's suppression window after it was resolved they are counted as
// suppressed; otherwise a new alert opens.
func (o *orgEval) decide(ctx context.Context, now time.Time, c *veritrail.RuleCommit) error {
	current, err := o.latestAlerts(ctx)
	if err != nil {
		return err
	}
	touched := map[string]bool{}
	opened := map[string]bool{}
	for _, h := range o.pending {
		k := h.rule.rule.ID + "\x00" + h.key
		a := current[k]
		switch {
		case a != nil && a.State != veritrail.AlertResolved:
			if addEvents(a, h.window, false) {
				a.UpdatedAt = now
				touched[a.ID] = true
			}
		case a != nil && h.rule.suppress > 0 && now.Before(a.StateAt.Add(h.rule.suppress)):
			if addEvents(a, h.window, true) {
				a.UpdatedAt = now
				touched[a.ID] = true
			}
		default:
			a = &veritrail.Alert{ID: newAlertID(now), OrgID: o.org, RuleID: h.rule.rule.ID, Rule: h.rule.spec.Name,
				Severity: h.rule.spec.Severity, DedupKey: h.key, Group: h.rule.groupJSON(h.group), State: veritrail.AlertOpen,
				LastSeq: -1, OpenedAt: now, UpdatedAt: now, StateAt: now, StateBy: authorBuiltin, RecordedAt: now}
			addEvents(a, h.window, false)
			current[k] = a
			opened[a.ID] = true
			c.NewAlerts = append(c.NewAlerts, a)
		}
	}
	if o.open == nil || len(o.open) > maxGroups {
		o.open = map[string]bool{}
	}
	for k, a := range current {
		if a != nil && a.State != veritrail.AlertResolved {
			o.open[k] = true
		} else {
			delete(o.open, k)
		}
	}
	byID := map[string]*compiled{}
	for _, h := range o.pending {
		byID[h.rule.rule.ID] = h.rule
	}
	for _, a := range c.NewAlerts {
		r := byID[a.RuleID]
		c.Records = append(c.Records, alertRecord("alert.opened", a, r.spec.Kind, veritrail.SystemActor("rules"), now, nil))
		ds, err := o.e.deliveries(o.org, a, r.rule, r.spec, notify.EventOpened, now)
		if err != nil {
			return err
		}
		c.Deliveries = append(c.Deliveries, ds...)
	}
	for _, a := range current {
		if a == nil || !touched[a.ID] || opened[a.ID] {
			continue
		}
		if now.Sub(a.RecordedAt) >= updateRecordEvery {
			a.RecordedAt = now
			c.Records = append(c.Records, alertRecord("alert.updated", a, byID[a.RuleID].spec.Kind, veritrail.SystemActor("rules"), now, nil))
		}
		c.Merged = append(c.Merged, a)
	}
	slices.SortFunc(c.Merged, func(x, y *veritrail.Alert) int { return strings.Compare(x.ID, y.ID) })
	return nil
}

// latestAlerts looks up the newest alert of every rule and dedup key
// pending, in one store query per MaxAlertKeys keys: rule id + "\x00" +
// key → the alert, nil for keys that have none.
func (o *orgEval) latestAlerts(ctx context.Context) (map[string]*veritrail.Alert, error) {
	current := make(map[string]*veritrail.Alert, len(o.pending))
	keys := make([]veritrail.AlertKey, 0, min(len(o.pending), veritrail.MaxAlertKeys))
	lookUp := func() error {
		got, err := o.e.store.LatestAlerts(ctx, o.org, keys)
		if err != nil {
			return err
		}
		for _, a := range got {
			current[a.RuleID+"\x00"+a.DedupKey] = a
		}
		keys = keys[:0]
		return nil
	}
	for _, h := range o.pending {
		k := h.rule.rule.ID + "\x00" + h.key
		if _, ok := current[k]; ok {
			continue
		}
		current[k] = nil
		keys = append(keys, veritrail.AlertKey{RuleID: h.rule.rule.ID, DedupKey: h.key})
		if len(keys) == veritrail.MaxAlertKeys {
			if err := lookUp(); err != nil {
				return nil, err
			}
		}
	}
	if len(keys) > 0 {
		if err := lookUp(); err != nil {
			return nil, err
		}
	}
	return current, nil
}

// addEvents counts refs on a (those at or below its LastSeq are counted
// already), as suppressed ones when suppressed. It reports whether
// anything was added.
func addEvents(a *veritrail.Alert, refs []ref, suppressed bool) bool {
	added := false
	floor := a.LastSeq
	for _, r := range refs {
		if r.Seq <= floor {
			continue
		}
		added = true
		a.LastSeq = max(a.LastSeq, r.Seq)
		if suppressed {
			a.Suppressed++
			continue
		}
		a.Count++
		t := time.Unix(0, r.T).UTC()
		if a.FirstSeen.IsZero() || t.Before(a.FirstSeen) {
			a.FirstSeen = t
		}
		if t.After(a.LastSeen) {
			a.LastSeen = t
		}
		if len(a.EventIDs) < veritrail.MaxAlertEventIDs {
			a.EventIDs = append(a.EventIDs, r.ID)
		}
	}
	return added
}

// alertRecord builds an alert.* event: the alert as it stands, with what
// the change adds (the previous state, a note).
func alertRecord(typ string, a *veritrail.Alert, kind string, actor veritrail.Actor, at time.Time, extra map[string]any) *veritrail.Event {
	details := map[string]any{
		"alert_id":   a.ID,
		"rule_id":    a.RuleID,
		"rule":       a.Rule,
		"kind":       kind,
		"severity":   a.Severity,
		"state":      a.State,
		"dedup_key":  a.DedupKey,
		"count":      a.Count,
		"suppressed": a.Suppressed,
		"event_ids":  a.EventIDs,
		"first_seen": a.FirstSeen.UTC().Format(time.RFC3339Nano),
		"last_seen":  a.LastSeen.UTC().Format(time.RFC3339Nano),
		"last_seq":   a.LastSeq,
	}
	if len(a.Group) > 0 {
		details["group"] = json.RawMessage(a.Group)
	}
	for k, v := range extra {
		details[k] = v
	}
	ev, err := veritrail.NewRecord(at, typ, actor, &veritrail.Target{Type: "alert", ID: a.ID, Name: a.Rule}, veritrail.OutcomeSuccess, details)
	if err != nil { // the details above always marshal
		ev, _ = veritrail.NewRecord(at, typ, actor, &veritrail.Target{Type: "alert", ID: a.ID, Name: a.Rule}, veritrail.OutcomeSuccess, nil)
	}
	return ev
}

// decodeRecord reads an outbox record back as the event to append.
func decodeRecord(b []byte) (*veritrail.Event, error) {
	dec := veritrail.NewDecoder(bytes.NewReader(b), veritrail.DefaultLimits, time.Now())
	ev, err := dec.Next()
	if err != nil {
		return nil, err
	}
	if _, err := dec.Next(); err != io.EOF {
		return nil, fmt.Errorf("more than one event in a record")
	}
	return ev, nil
}

// deliveries queues event ev of alert a to the routes of rule r that take
// it: an escalation step (after) falls due that long after now.
func (e *Engine) deliveries(org int64, a *veritrail.Alert, r *veritrail.Rule, s *Spec, ev string, now time.Time) ([]*veritrail.Delivery, error) {
	var out []*veritrail.Delivery
	info := ruleInfo(r.ID, s)
	for i, rt := range s.Routes {
		if !rt.Accepts(a.Severity) || !rt.SendsEvent(ev) {
			continue
		}
		q, err := json.Marshal(notify.Queued{Route: rt, Rule: info})
		if err != nil {
			return nil, err
		}
		out = append(out, &veritrail.Delivery{ID: veritrail.NewID("dlv"), OrgID: org, AlertID: a.ID, RuleID: r.ID,
			RouteIndex: i, Destination: rt.Type, Route: q, Event: ev, Escalation: rt.After > 0,
			State: veritrail.DeliveryPending, DueAt: now.Add(time.Duration(rt.After)), CreatedAt: now})
	}
	return out, nil
}

func ruleInfo(id string, s *Spec) notify.RuleInfo {
	return notify.RuleInfo{ID: id, Name: s.Name, Kind: s.Kind, Description: s.Description, Owner: s.Owner, Runbook: s.Runbook, Tags: s.Tags}
}
