package http

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/checkpoint"
	"github.com/veritrail/veritrail/dlp"
)

// settingsCache keeps organizations' settings for a moment: ingest consults
// them on every request (the AI interaction logs switch).
type settingsCache struct {
	mu sync.Mutex
	m  map[int64]cachedSettings
}

type cachedSettings struct {
	s  *veritrail.Settings
	at time.Time
}

func (s *Server) orgSettings(ctx context.Context, org int64) (*veritrail.Settings, error) {
	s.settings.mu.Lock()
	c, ok := s.settings.m[org]
	s.settings.mu.Unlock()
	if ok && time.Since(c.at) < 2*time.Second {
		return c.s, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StoreTimeout)
	defer cancel()
	st, err := s.store.OrgSettings(ctx, org)
	if err != nil {
		return nil, err
	}
	s.settings.mu.Lock()
	if s.settings.m == nil {
		s.settings.m = map[int64]cachedSettings{}
	}
	s.settings.m[org] = cachedSettings{st, time.Now()}
	s.settings.mu.Unlock()
	return st, nil
}

// ForgetSettings drops the cached settings of an organization, so the next
// request reads them from the store (tests, and settings changed by
// another node).
func (s *Server) ForgetSettings(org int64) {
	s.settings.mu.Lock()
	delete(s.settings.m, org)
	s.settings.mu.Unlock()
}

func (s *Server) getSettings(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	st, err := s.store.OrgSettings(r.Context(), p.OrgID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// putSettings replaces the settings and records settings.changed with the
// settings before and after.
func (s *Server) putSettings(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	var in veritrail.Settings
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	in.AIEnabledAt = nil
	if err := in.Validate(); err != nil {
		return err
	}
	if in.DLP.Mode == "" {
		in.DLP.Mode = veritrail.DLPOff
	}
	for i, d := range in.DLP.Detectors {
		if !dlp.Known(d) {
			return veritrail.Errorf(veritrail.EInvalid, "dlp.detectors[%d]: unknown detector %q; known: %s", i, d, strings.Join(dlp.Names(), ", "))
		}
	}
	if _, err := checkpoint.WitnessVerifiers(&in.Witnessing); err != nil {
		return err
	}
	for i, wt := range in.Witnessing.Witnesses {
		if err := s.cfg.Outbound.CheckURL(r.Context(), wt.URL); err != nil {
			return veritrail.Errorf(veritrail.EInvalid, "witnessing.witnesses[%d].url: %v", i, err)
		}
	}
	if string(in.MCPPolicy) == "null" {
		in.MCPPolicy = nil
	}
	if in.MCPPolicy != nil {
		var err error = veritrail.Errorf(veritrail.EInvalid, "mcp_policy: this server cannot check MCP policies")
		if s.cfg.CheckMCPPolicy != nil {
			if err = s.cfg.CheckMCPPolicy(in.MCPPolicy); err != nil {
				err = veritrail.Errorf(veritrail.EInvalid, "mcp_policy: %v", err)
			}
		}
		if err != nil {
			return err
		}
	}
	before, err := s.store.OrgSettings(r.Context(), p.OrgID)
	if err != nil {
		return err
	}
	// Collection starts when the switch is turned on: only interactions
	// after that are kept.
	switch {
	case in.AIInteractionLogsEnabled && !before.AIInteractionLogsEnabled:
		t := s.now().UTC()
		in.AIEnabledAt = &t
	case in.AIInteractionLogsEnabled:
		in.AIEnabledAt = before.AIEnabledAt
	}
	// A retention change that holds keep from events is said so (in the
	// answer and the record), not refused: the rules apply again once the
	// holds are released.
	var held []veritrail.HoldCount
	if !slices.Equal(in.Retention, before.Retention) {
		if held, err = veritrail.HeldFromRetention(r.Context(), s.store, p.OrgID, &in, s.now()); err != nil {
			return err
		}
	}
	if err := s.store.PutOrgSettings(r.Context(), p.OrgID, &in); err != nil {
		return err
	}
	s.ForgetSettings(p.OrgID)
	details := map[string]any{"before": before, "after": &in}
	if len(held) > 0 {
		details["retention_kept_by_holds"] = held
	}
	if err := s.audit(r.Context(), r, p, "settings.changed", &veritrail.Target{Type: "settings", ID: p.OrgName}, details); err != nil {
		return err
	}
	if len(held) == 0 {
		writeJSON(w, http.StatusOK, &in)
		return nil
	}
	writeJSON(w, http.StatusOK, struct {
		*veritrail.Settings
		Held []veritrail.HoldCount `json:"retention_kept_by_holds"`
	}{&in, held})
	return nil
}

// getMCPPolicy answers the organization's MCP policy to the gateways that
// enforce it (`veritrail mcp-proxy --policy server`), whose tokens write
// events: {"policy": {...}} or {"policy": null} when none is held.
func (s *Server) getMCPPolicy(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	st, err := s.store.OrgSettings(r.Context(), p.OrgID)
	if err != nil {
		return err
	}
	policy := st.MCPPolicy
	if policy == nil {
		policy = json.RawMessage("null")
	}
	writeJSON(w, http.StatusOK, map[string]json.RawMessage{"policy": policy})
	return nil
}

// runRetention applies the retention rules now and answers what went.
func (s *Server) runRetention(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	e, res, err := veritrail.RunRetention(r.Context(), s.store, p.OrgID, s.now(), actorOf(p))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"record": e.ID, "content_removed": res.Contents, "envelopes_removed": res.Envelopes,
		"content_ranges": res.SeqRanges("content"), "envelope_ranges": res.SeqRanges("envelope"),
		"kept_by_holds": res.Held,
	})
	return nil
}

// erase removes one person's content but what legal holds keep, and says
// what they kept.
func (s *Server) erase(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	f, err := erasureFilter(r)
	if err != nil {
		return err
	}
	e, res, err := veritrail.Erase(r.Context(), s.store, p.OrgID, f, s.now(), actorOf(p))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"record": e.ID, "content_removed": res.Contents, "content_ranges": res.SeqRanges("content"),
		"kept_by_holds": res.Held})
	return nil
}

// erasureFilter reads whom an erasure (or its preview) is about:
// {"actor_id": …} or {"actor_email": …}.
func erasureFilter(r *http.Request) (veritrail.Filter, error) {
	var in struct {
		ActorID    string `json:"actor_id"`
		ActorEmail string `json:"actor_email"`
	}
	if err := decodeBody(r, &in); err != nil {
		return veritrail.Filter{}, err
	}
	switch {
	case (in.ActorID == "") == (in.ActorEmail == ""):
		return veritrail.Filter{}, veritrail.Errorf(veritrail.EInvalid, "give exactly one of actor_id and actor_email")
	case in.ActorID != "":
		return veritrail.Filter{Field: veritrail.FieldActorID, Ranges: []veritrail.KeyRange{veritrail.Exact(in.ActorID)}}, nil
	}
	kr, err := veritrail.ParseFilterValue(veritrail.FieldActorEmail, in.ActorEmail)
	if err != nil {
		return veritrail.Filter{}, err
	}
	return veritrail.Filter{Field: veritrail.FieldActorEmail, Ranges: []veritrail.KeyRange{kr}}, nil
}

// listRemovals answers what retention and erasure removed, so verifiers
// can tell removed by policy from missing.
func (s *Server) listRemovals(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	from, _, err := intParam(r, "from_seq")
	if err != nil {
		return err
	}
	rs, err := s.store.Removals(r.Context(), p.OrgID, from, 10000)
	if err != nil {
		return err
	}
	type item struct {
		From   int64  `json:"from"`
		To     int64  `json:"to"`
		What   string `json:"what"`
		Reason string `json:"reason"`
		Record string `json:"record"`
		At     string `json:"at"`
	}
	out := make([]item, len(rs))
	for i, rm := range rs {
		out[i] = item{rm.From, rm.To, rm.What, rm.Reason, rm.Record, rm.At.Format(time.RFC3339Nano)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
	return nil
}

// getTile answers a C2SP tile's hashes (raw 32-byte hashes, partial at the
// edge): with them a verifier rebuilds the tree over removed events too.
func (s *Server) getTile(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	level, err1 := strconv.ParseUint(r.PathValue("level"), 10, 8)
	index, err2 := strconv.ParseUint(r.PathValue("index"), 10, 63)
	if err1 != nil || err2 != nil {
		return veritrail.Errorf(veritrail.EInvalid, "tile path: /api/v1/log/tile/{level}/{index} with small integers")
	}
	hashes, err := s.store.ReadTile(r.Context(), p.OrgID, uint8(level), index)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("format") == "base64" {
		writeText(w, []byte(base64.StdEncoding.EncodeToString(hashes)))
		return nil
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", fmt.Sprint(len(hashes)))
	w.Write(hashes)
	return nil
}
