package http

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/rules"
)

// Alerts (docs/API.md): whoever reads the log (auditlogs:read) reads its
// alerts; changing an alert's state needs the alerts scope. Every change
// is an alert.* event in the organization's log, recorded by the rules
// engine with the change.

// alertView is an alert as the API shows it.
type alertView struct {
	ID           string          `json:"id"`
	RuleID       string          `json:"rule_id"`
	Rule         string          `json:"rule"`
	Severity     string          `json:"severity"`
	State        string          `json:"state"`
	Count        int64           `json:"count"`
	Suppressed   int64           `json:"suppressed"`
	EventIDs     []string        `json:"event_ids"`
	FirstSeen    time.Time       `json:"first_seen"`
	LastSeen     time.Time       `json:"last_seen"`
	DedupKey     string          `json:"dedup_key"`
	Group        json.RawMessage `json:"group,omitempty"`
	OpenedAt     time.Time       `json:"opened_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	SnoozedUntil *time.Time      `json:"snoozed_until,omitempty"`
	StateBy      string          `json:"state_by,omitempty"`
	StateAt      time.Time       `json:"state_at"`
	Note         string          `json:"note,omitempty"`
	// RecordsURL lists the alert's alert.* records in the log.
	RecordsURL string          `json:"records_url"`
	Deliveries []*deliveryView `json:"deliveries,omitempty"`
}

// deliveryView is one notification of an alert to one of its routes.
type deliveryView struct {
	ID          string     `json:"id"`
	Route       int        `json:"route"`
	Destination string     `json:"destination"`
	Event       string     `json:"event"`
	Escalation  bool       `json:"escalation"`
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	DueAt       time.Time  `json:"due_at"`
	LastError   string     `json:"last_error,omitempty"`
	Result      string     `json:"result,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
}

func newAlertView(a *veritrail.Alert) *alertView {
	v := &alertView{ID: a.ID, RuleID: a.RuleID, Rule: a.Rule, Severity: a.Severity, State: a.State, Count: a.Count,
		Suppressed: a.Suppressed, EventIDs: a.EventIDs, FirstSeen: a.FirstSeen, LastSeen: a.LastSeen, DedupKey: a.DedupKey,
		OpenedAt: a.OpenedAt, UpdatedAt: a.UpdatedAt, SnoozedUntil: a.SnoozedUntil, StateBy: a.StateBy, StateAt: a.StateAt,
		Note: a.Note, RecordsURL: "/api/v1/events?order=asc&type=alert.*&target_id=" + url.QueryEscape(a.ID)}
	if v.EventIDs == nil {
		v.EventIDs = []string{}
	}
	if len(a.Group) > 0 {
		v.Group = a.Group
	}
	return v
}

// listAlerts answers {"data": [alert, …], "next_cursor"}, newest first,
// filtered by state, rule_id and severity.
func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	q := r.URL.Query()
	f := veritrail.AlertFilter{State: q.Get("state"), RuleID: q.Get("rule_id"), Severity: q.Get("severity"), Before: q.Get("cursor"), Limit: 100}
	for name := range q {
		switch name {
		case "state", "rule_id", "severity", "cursor", "limit":
			if len(q[name]) > 1 {
				return veritrail.Errorf(veritrail.EInvalid, "parameter %s: give it once", name)
			}
		default:
			return veritrail.Errorf(veritrail.EInvalid, "unknown parameter %q; alerts are filtered by state, rule_id, severity, limit and cursor", name)
		}
	}
	if f.State != "" && !slices.Contains(veritrail.AlertStates, f.State) {
		return veritrail.Errorf(veritrail.EInvalid, "parameter state: open, acknowledged, snoozed or resolved, got %q", f.State)
	}
	if f.Severity != "" && veritrail.SeverityRank(f.Severity) < 0 {
		return veritrail.Errorf(veritrail.EInvalid, "parameter severity: informational, low, medium, high or critical, got %q", f.Severity)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > veritrail.MaxLimit {
			return veritrail.Errorf(veritrail.EInvalid, "parameter limit: 1 to %d, got %q", veritrail.MaxLimit, v)
		}
		f.Limit = n
	}
	as, err := s.store.ListAlerts(r.Context(), p.OrgID, f)
	if err != nil {
		return err
	}
	out := struct {
		Data       []*alertView `json:"data"`
		NextCursor string       `json:"next_cursor,omitempty"`
	}{Data: make([]*alertView, 0, len(as))}
	for _, a := range as {
		out.Data = append(out.Data, newAlertView(a))
	}
	if len(as) == f.Limit {
		out.NextCursor = as[len(as)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getAlert answers one alert with its deliveries.
func (s *Server) getAlert(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	a, err := s.store.AlertByID(r.Context(), p.OrgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.writeAlert(w, r, a)
}

func (s *Server) writeAlert(w http.ResponseWriter, r *http.Request, a *veritrail.Alert) error {
	ds, err := s.store.ListDeliveries(r.Context(), a.OrgID, a.ID)
	if err != nil {
		return err
	}
	v := newAlertView(a)
	v.Deliveries = make([]*deliveryView, 0, len(ds))
	for _, d := range ds {
		v.Deliveries = append(v.Deliveries, &deliveryView{ID: d.ID, Route: d.RouteIndex, Destination: d.Destination, Event: d.Event,
			Escalation: d.Escalation, State: d.State, Attempts: d.Attempts, DueAt: d.DueAt, LastError: d.LastError, Result: d.Result,
			CreatedAt: d.CreatedAt, FinishedAt: d.FinishedAt})
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// patchAlert changes an alert's state: {"state": "acknowledged" |
// "snoozed" | "resolved" | "open", "snooze_for" | "snooze_until", "note"}.
func (s *Server) patchAlert(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	eng, err := s.rulesEngine()
	if err != nil {
		return err
	}
	var in rules.AlertPatch
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	a, _, err := eng.ChangeAlert(r.Context(), p.OrgID, actorOf(p), r.PathValue("id"), &in)
	if err != nil {
		return err
	}
	return s.writeAlert(w, r, a)
}
