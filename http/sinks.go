package http

import (
	"encoding/json"
	"net/http"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/sink"
)

// Sinks: where an organization's events are forwarded (docs/FORWARDING.md,
// docs/API.md). Administrators manage them; forwarding content needs
// content:read as well, so a token that may not read content cannot send
// it elsewhere. Every change is recorded as an audit event before the
// answer; a change that cannot be recorded is undone and refused. Secrets
// are sealed and never shown.

// sinks is the forwarding engine; EUnavailable without one.
func (s *Server) sinks() (*sink.Engine, error) {
	if s.cfg.Sinks == nil {
		return nil, veritrail.Errorf(veritrail.EUnavailable, "forwarding is not configured on this server")
	}
	return s.cfg.Sinks, nil
}

// sinkBody reads a request body that must be one JSON object; the engine
// validates it, destinations included (sink.Engine.Create).
func (s *Server) sinkBody(r *http.Request) ([]byte, error) {
	var raw json.RawMessage
	if err := decodeBody(r, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

func (s *Server) writeSink(w http.ResponseWriter, r *http.Request, status int, k *veritrail.Sink) error {
	v, err := s.cfg.Sinks.View(r.Context(), k)
	if err != nil {
		return err
	}
	writeJSON(w, status, v)
	return nil
}

func (s *Server) createSink(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	eng, err := s.sinks()
	if err != nil {
		return err
	}
	body, err := s.sinkBody(r)
	if err != nil {
		return err
	}
	k, err := eng.Create(r.Context(), p.OrgID, body, p.Can(veritrail.ScopeContentRead))
	if err != nil {
		return err
	}
	if err := s.store.CreateSink(r.Context(), k); err != nil {
		return err
	}
	if err := s.audit(r.Context(), r, p, "audit.sink_created", &veritrail.Target{Type: "sink", ID: k.ID, Name: k.Name}, sink.AuditDetails(k)); err != nil {
		s.store.DeleteSink(r.Context(), p.OrgID, k.ID) // not recorded: not made
		return err
	}
	eng.Wake()
	return s.writeSink(w, r, http.StatusCreated, k)
}

func (s *Server) listSinks(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	if _, err := s.sinks(); err != nil {
		return err
	}
	ks, err := s.store.ListSinks(r.Context(), p.OrgID)
	if err != nil {
		return err
	}
	out := make([]*sink.View, 0, len(ks))
	for _, k := range ks {
		v, err := s.cfg.Sinks.View(r.Context(), k)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
	return nil
}

func (s *Server) getSink(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	if _, err := s.sinks(); err != nil {
		return err
	}
	k, err := s.store.SinkByID(r.Context(), p.OrgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.writeSink(w, r, http.StatusOK, k)
}

func (s *Server) updateSink(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	eng, err := s.sinks()
	if err != nil {
		return err
	}
	body, err := s.sinkBody(r)
	if err != nil {
		return err
	}
	k, err := s.store.SinkByID(r.Context(), p.OrgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	old := *k
	changed, err := eng.Update(r.Context(), k, body, p.Can(veritrail.ScopeContentRead))
	if err != nil {
		return err
	}
	if len(changed) == 0 {
		return s.writeSink(w, r, http.StatusOK, &old)
	}
	if err := s.store.UpdateSink(r.Context(), k); err != nil {
		return err
	}
	details := sink.AuditDetails(k)
	details["changed"] = changed
	if err := s.audit(r.Context(), r, p, "audit.sink_updated", &veritrail.Target{Type: "sink", ID: k.ID, Name: k.Name}, details); err != nil {
		old.UpdatedAt = k.UpdatedAt
		s.store.UpdateSink(r.Context(), &old) // not recorded: undone
		return err
	}
	eng.Wake()
	// Reread: the cursor and health are the store's.
	if k2, err := s.store.SinkByID(r.Context(), p.OrgID, k.ID); err == nil {
		k = k2
	}
	return s.writeSink(w, r, http.StatusOK, k)
}

func (s *Server) deleteSink(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	eng, err := s.sinks()
	if err != nil {
		return err
	}
	k, err := s.store.SinkByID(r.Context(), p.OrgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	details := sink.AuditDetails(k)
	details["last_delivered_seq"] = k.Delivered
	if err := s.audit(r.Context(), r, p, "audit.sink_deleted", &veritrail.Target{Type: "sink", ID: k.ID, Name: k.Name}, details); err != nil {
		return err
	}
	if err := s.store.DeleteSink(r.Context(), p.OrgID, k.ID); err != nil {
		return err
	}
	eng.Wake()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// testSink answers POST /api/v1/sinks/{id}/test: it appends an
// audit.sink_test record naming the sink, which forwarding then delivers
// like any event (unless the sink's filter leaves audit events out): the
// sink's lag shows it go through.
func (s *Server) testSink(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	eng, err := s.sinks()
	if err != nil {
		return err
	}
	k, err := s.store.SinkByID(r.Context(), p.OrgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	e := s.auditEvent(r, p, "audit.sink_test", &veritrail.Target{Type: "sink", ID: k.ID, Name: k.Name}, map[string]any{"test": true})
	res, err := s.store.Append(r.Context(), p.OrgID, []*veritrail.Event{e})
	if err != nil {
		return err
	}
	eng.Wake()
	writeJSON(w, http.StatusAccepted, map[string]any{"event": e.ID, "seq": res[0].Seq})
	return nil
}
