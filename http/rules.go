package http

import (
	"encoding/json"
	"net/http"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/rules"
)

// Detection rules (docs/RULES.md, docs/API.md): owners, administrators
// and the security role manage them (scope alerts). A rule that reads
// content needs content:read as well, so a token that may not read content
// cannot have a rule read it. Every change is recorded as an audit event
// before the answer; a change that cannot be recorded is undone and
// refused. Route secrets are sealed and never shown.

// rulesEngine is the rules engine; EUnavailable without one.
func (s *Server) rulesEngine() (*rules.Engine, error) {
	if s.cfg.Rules == nil {
		return nil, veritrail.Errorf(veritrail.EUnavailable, "detection rules are not running on this server")
	}
	return s.cfg.Rules, nil
}

// rawBody reads a request body that must be one JSON value.
func rawBody(r *http.Request) ([]byte, error) {
	var raw json.RawMessage
	if err := decodeBody(r, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// ruleAnswer is a rule as the API answers it, with whether a PUT changed
// it.
type ruleAnswer struct {
	*rules.RuleView
	Changed *bool `json:"changed,omitempty"`
}

func ruleTarget(r *veritrail.Rule) *veritrail.Target {
	return &veritrail.Target{Type: "rule", ID: r.ID, Name: r.Name}
}

// ruleDetails is what an audit record keeps of a rule: its spec with route
// secrets masked.
func (s *Server) ruleDetails(r *veritrail.Rule) map[string]any {
	v, err := s.cfg.Rules.View(r)
	if err != nil {
		return map[string]any{"rule_id": r.ID}
	}
	v.Status, v.Error, v.EvaluationErrors, v.LastEvaluationError = "", "", 0, ""
	b, _ := json.Marshal(v)
	var m map[string]any
	json.Unmarshal(b, &m)
	delete(m, "status")
	return m
}

func (s *Server) createRule(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	eng, err := s.rulesEngine()
	if err != nil {
		return err
	}
	body, err := rawBody(r)
	if err != nil {
		return err
	}
	existing, err := s.store.ListRules(r.Context(), p.OrgID)
	if err != nil {
		return err
	}
	if len(existing) >= rules.MaxRules {
		return veritrail.Errorf(veritrail.EConflict, "this organization has %d rules, the most it may have; delete one first", len(existing))
	}
	rule, _, err := eng.Build(r.Context(), p.OrgID, rules.Author(p), p.Can(veritrail.ScopeContentRead), body, nil)
	if err != nil {
		return err
	}
	if err := s.store.CreateRule(r.Context(), rule); err != nil {
		return err
	}
	if err := s.audit(r.Context(), r, p, "audit.rule_created", ruleTarget(rule), s.ruleDetails(rule)); err != nil {
		s.store.DeleteRule(r.Context(), p.OrgID, rule.ID) // not recorded: not made
		return err
	}
	eng.Wake()
	return s.writeRule(w, http.StatusCreated, rule, nil)
}

func (s *Server) writeRule(w http.ResponseWriter, status int, r *veritrail.Rule, changed *bool) error {
	v, err := s.cfg.Rules.View(r)
	if err != nil {
		return err
	}
	writeJSON(w, status, ruleAnswer{RuleView: v, Changed: changed})
	return nil
}

func (s *Server) listRules(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	eng, err := s.rulesEngine()
	if err != nil {
		return err
	}
	rs, err := s.store.ListRules(r.Context(), p.OrgID)
	if err != nil {
		return err
	}
	out := make([]*rules.RuleView, 0, len(rs))
	for _, rule := range rs {
		v, err := eng.View(rule)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
	return nil
}

func (s *Server) getRule(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	if _, err := s.rulesEngine(); err != nil {
		return err
	}
	rule, err := s.store.RuleByID(r.Context(), p.OrgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.writeRule(w, http.StatusOK, rule, nil)
}

// replaceRule replaces a rule with the body (PUT): idempotent, answering
// "changed": false when the rule already said the same.
func (s *Server) replaceRule(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	eng, err := s.rulesEngine()
	if err != nil {
		return err
	}
	body, err := rawBody(r)
	if err != nil {
		return err
	}
	old, err := s.store.RuleByID(r.Context(), p.OrgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	rule, changed, err := eng.Build(r.Context(), p.OrgID, rules.Author(p), p.Can(veritrail.ScopeContentRead), body, old)
	if err != nil {
		return err
	}
	if !changed {
		return s.writeRule(w, http.StatusOK, old, &changed)
	}
	if err := s.store.UpdateRule(r.Context(), rule); err != nil {
		return err
	}
	details := s.ruleDetails(rule)
	details["before"] = s.ruleDetails(old)
	if err := s.audit(r.Context(), r, p, "audit.rule_updated", ruleTarget(rule), details); err != nil {
		s.store.UpdateRule(r.Context(), old) // not recorded: undone
		return err
	}
	eng.Wake()
	return s.writeRule(w, http.StatusOK, rule, &changed)
}

func (s *Server) deleteRule(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	eng, err := s.rulesEngine()
	if err != nil {
		return err
	}
	rule, err := s.store.RuleByID(r.Context(), p.OrgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.audit(r.Context(), r, p, "audit.rule_deleted", ruleTarget(rule), s.ruleDetails(rule)); err != nil {
		return err
	}
	if err := s.store.DeleteRule(r.Context(), p.OrgID, rule.ID); err != nil {
		return err
	}
	eng.Wake()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// testRulesRequest is the body of POST /api/v1/rules/test.
type testRulesRequest struct {
	Rules []json.RawMessage `json:"rules"`
	// Since and Until bound the replay: RFC 3339 times, or a duration
	// back from now ("30d"). Default: the last 7 days.
	Since string `json:"since"`
	Until string `json:"until"`
	// Limit is the most alerts listed (default 100, at most 1000).
	Limit int `json:"limit"`
}

// timeOrAgo reads an RFC 3339 time or a duration back from now.
func timeOrAgo(field, v string, now time.Time) (time.Time, error) {
	if d, err := veritrail.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	t, err := veritrail.ParseTime(v)
	if err != nil {
		return t, &veritrail.Error{Code: veritrail.EInvalid, Index: -1, Field: field,
			Message: "field \"" + field + "\": a time (2026-06-20T14:32:01Z) or a duration back from now (30d)"}
	}
	return t, nil
}

// testRules replays stored events through rules and answers what they
// would have raised: nothing is stored or sent. It reads the log, so it is
// recorded like a search (audit.rules_tested).
func (s *Server) testRules(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	eng, err := s.rulesEngine()
	if err != nil {
		return err
	}
	var in testRulesRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	now := s.now().UTC()
	since, until := now.Add(-7*24*time.Hour), now.Add(time.Second)
	if in.Since != "" {
		if since, err = timeOrAgo("since", in.Since, now); err != nil {
			return err
		}
	}
	if in.Until != "" {
		if until, err = timeOrAgo("until", in.Until, now); err != nil {
			return err
		}
	}
	if !since.Before(until) {
		return veritrail.Errorf(veritrail.EInvalid, "since (%s) must be before until (%s)", since.Format(time.RFC3339), until.Format(time.RFC3339))
	}
	if in.Limit == 0 {
		in.Limit = 100
	}
	if in.Limit < 1 || in.Limit > 1000 {
		return &veritrail.Error{Code: veritrail.EInvalid, Index: -1, Field: "limit", Message: "field \"limit\": 1 to 1000"}
	}
	res, err := eng.Test(r.Context(), p.OrgID, p.Can(veritrail.ScopeContentRead), in.Rules, since, until, in.Limit)
	if err != nil {
		return err
	}
	var names []string
	for _, b := range in.Rules {
		var n struct {
			Name string `json:"name"`
		}
		json.Unmarshal(b, &n)
		names = append(names, n.Name)
	}
	if err := s.audit(r.Context(), r, p, "audit.rules_tested", nil, map[string]any{"rules": names,
		"since": since.Format(time.RFC3339Nano), "until": until.Format(time.RFC3339Nano), "events_scanned": res.Scanned,
		"alerts": len(res.Alerts)}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) getRulesPack(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	eng, err := s.rulesEngine()
	if err != nil {
		return err
	}
	rs, err := s.store.ListRules(r.Context(), p.OrgID)
	if err != nil {
		return err
	}
	v, err := eng.Pack(rs)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// putRulesPack turns the built-in pack on (with its routes) or off.
func (s *Server) putRulesPack(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	eng, err := s.rulesEngine()
	if err != nil {
		return err
	}
	var in rules.PackRequest
	body, err := rawBody(r)
	if err != nil {
		return err
	}
	if err := rules.DecodePackRequest(body, &in); err != nil {
		return err
	}
	existing, err := s.store.ListRules(r.Context(), p.OrgID)
	if err != nil {
		return err
	}
	created, changed, err := eng.BuildPack(r.Context(), p.OrgID, &in, existing)
	if err != nil {
		return err
	}
	if len(existing)+len(created) > rules.MaxRules {
		return veritrail.Errorf(veritrail.EConflict, "the pack's %d rules would take this organization past %d rules", len(created), rules.MaxRules)
	}
	byID := map[string]*veritrail.Rule{}
	for _, old := range existing {
		byID[old.ID] = old
	}
	var done []*veritrail.Rule // to undo, if the change cannot be recorded
	undo := func() {
		for _, d := range done {
			if old := byID[d.ID]; old != nil {
				s.store.UpdateRule(r.Context(), old)
			} else {
				s.store.DeleteRule(r.Context(), p.OrgID, d.ID)
			}
		}
	}
	for _, rule := range created {
		if err := s.store.CreateRule(r.Context(), rule); err != nil {
			undo()
			return err
		}
		done = append(done, rule)
	}
	for _, rule := range changed {
		if err := s.store.UpdateRule(r.Context(), rule); err != nil {
			undo()
			return err
		}
		done = append(done, rule)
	}
	if len(done) > 0 {
		var names []string
		for _, d := range done {
			names = append(names, d.Name)
		}
		if err := s.audit(r.Context(), r, p, "audit.rules_pack_changed", &veritrail.Target{Type: "rules_pack", ID: rules.PackBuiltin},
			map[string]any{"enabled": in.Enabled, "rules": names, "routes": len(in.Routes)}); err != nil {
			undo()
			return err
		}
		eng.Wake()
	}
	all, err := s.store.ListRules(r.Context(), p.OrgID)
	if err != nil {
		return err
	}
	v, err := eng.Pack(all)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
