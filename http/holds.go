package http

import (
	"net/http"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// Legal holds, and the previews of retention and erasure that say what
// holds keep: admin scope.
func (s *Server) holdRoutes() {
	s.api("POST /api/v1/holds", "holds.create", veritrail.ScopeAdmin, s.placeHold)
	s.api("GET /api/v1/holds", "holds.list", veritrail.ScopeAdmin, s.listHolds)
	s.api("GET /api/v1/holds/{id}", "holds.get", veritrail.ScopeAdmin, s.getHold)
	s.api("POST /api/v1/holds/{id}/release", "holds.release", veritrail.ScopeAdmin, s.releaseHold)
	s.methods("/api/v1/holds", "GET, POST")
	s.methods("/api/v1/holds/{id}", "GET")
	s.methods("/api/v1/holds/{id}/release", "POST")

	s.api("GET /api/v1/retention/preview", "retention.preview", veritrail.ScopeAdmin, s.previewRetention)
	s.api("POST /api/v1/retention/preview", "retention.preview", veritrail.ScopeAdmin, s.previewRetention)
	s.api("POST /api/v1/erasure/preview", "erasure.preview", veritrail.ScopeAdmin, s.previewErasure)
	s.methods("/api/v1/retention/preview", "GET, POST")
	s.methods("/api/v1/erasure/preview", "POST")
}

// placeHold places a legal hold and records privacy.hold_placed.
func (s *Server) placeHold(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	var in struct {
		Name        string     `json:"name"`
		Reason      string     `json:"reason"`
		ActorIDs    []string   `json:"actor_ids"`
		ActorEmails []string   `json:"actor_emails"`
		Since       *time.Time `json:"since"`
		Until       *time.Time `json:"until"`
		Filter      string     `json:"filter"`
	}
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	h := &veritrail.Hold{
		ID: veritrail.NewID("hold"), OrgID: p.OrgID, Name: in.Name, Reason: in.Reason,
		ActorIDs: in.ActorIDs, ActorEmails: in.ActorEmails, Since: utcPtr(in.Since), Until: utcPtr(in.Until), Filter: in.Filter,
		PlacedBy: actorOf(p), PlacedAt: s.now().UTC(),
	}
	if err := h.Validate(); err != nil {
		return err
	}
	if err := s.store.CreateHold(r.Context(), h); err != nil {
		return err
	}
	if err := s.audit(r.Context(), r, p, "privacy.hold_placed", &veritrail.Target{Type: "hold", ID: h.ID, Name: h.Name},
		map[string]any{"hold": h}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, h)
	return nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func (s *Server) listHolds(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	hs, err := s.store.ListHolds(r.Context(), p.OrgID)
	if err != nil {
		return err
	}
	if hs == nil {
		hs = []*veritrail.Hold{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": hs})
	return nil
}

func (s *Server) getHold(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	h, err := s.store.HoldByID(r.Context(), p.OrgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

// releaseHold releases a hold ({"reason": "…"}) and records
// privacy.hold_released; the next retention run and erasure may take what
// it kept.
func (s *Server) releaseHold(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	var in struct {
		Reason string `json:"reason"`
	}
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if in.Reason == "" || len(in.Reason) > 4000 {
		return veritrail.Errorf(veritrail.EInvalid, "reason: say why the hold is released (1 to 4000 characters)")
	}
	h, err := s.store.ReleaseHold(r.Context(), p.OrgID, r.PathValue("id"), s.now(), actorOf(p), in.Reason)
	if err != nil {
		return err
	}
	if err := s.audit(r.Context(), r, p, "privacy.hold_released", &veritrail.Target{Type: "hold", ID: h.ID, Name: h.Name},
		map[string]any{"hold": h}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

// previewRetention answers what a retention run would remove now, per
// category, and what holds keep: under the stored settings (GET) or under
// settings about to be saved (POST, the body of PUT /api/v1/settings).
func (s *Server) previewRetention(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	st, err := s.store.OrgSettings(r.Context(), p.OrgID)
	if err != nil {
		return err
	}
	if r.Method == http.MethodPost {
		var in veritrail.Settings
		if err := decodeBody(r, &in); err != nil {
			return err
		}
		if err := in.Validate(); err != nil {
			return err
		}
		st = &in
	}
	pv, err := veritrail.PreviewRetention(r.Context(), s.store, p.OrgID, st, s.now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pv)
	return nil
}

// previewErasure answers how many events of a person would lose their
// content, per category, and what holds keep; nothing is removed.
func (s *Server) previewErasure(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	f, err := erasureFilter(r)
	if err != nil {
		return err
	}
	pv, err := veritrail.PreviewErasure(r.Context(), s.store, p.OrgID, f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pv)
	return nil
}
