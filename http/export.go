package http

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/export"
	"github.com/veritrail/veritrail/mail"
)

// Exports: the streaming export (GET /api/v1/events/export) and the
// endpoints of export jobs. Jobs themselves run in package export.

// exportEvents answers GET /api/v1/events/export: the matching events as
// CSV, JSON or NDJSON, streamed.
func (s *Server) exportEvents(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	vals := r.URL.Query()
	format := vals.Get("format")
	vals.Del("format")
	if format == "" {
		format = export.CSV
	}
	if !export.ValidFormat(format) {
		return veritrail.Errorf(veritrail.EInvalid, "parameter format: csv, json or ndjson (evidence bundles are made by POST /api/v1/exports)")
	}
	withContent := p.Can(veritrail.ScopeContentRead)
	q, err := export.ParseQuery(vals, withContent, s.now())
	if err != nil {
		return err
	}
	params := queryDetails(r, 0)["parameters"]
	if err := s.audit(r.Context(), r, p, "audit.export", nil, map[string]any{"parameters": params, "format": format, "content": withContent}); err != nil {
		return err
	}
	w.Header().Set("Content-Type", export.ContentType(format))
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, export.FileName(p.OrgName, format, s.now())))
	ew, err := export.NewWriter(w, format, withContent)
	if err == nil {
		err = export.WriteEvents(r.Context(), s.store, p.OrgID, q, ew, s.cfg.Turns, nil)
	}
	if err == nil {
		err = ew.Close()
	}
	if err != nil {
		// Once the file has started, a cut-off file is what the client
		// gets (the adapter logs why); before, an error body, not a file.
		w.Header().Del("Content-Disposition")
		return err
	}
	// Recorded after the file is sent: a failure is logged, not answered.
	return s.audit(r.Context(), r, p, "audit.export_finished", nil, map[string]any{"format": format, "results": ew.Count()})
}

// Export jobs.

type exportJSON struct {
	ID          string  `json:"id"`
	State       string  `json:"state"`
	Format      string  `json:"format"`
	Filters     any     `json:"filters"`
	Content     bool    `json:"content"`
	Notify      string  `json:"notify,omitempty"`
	Progress    int64   `json:"progress"`
	SizeBytes   int64   `json:"size_bytes,omitempty"`
	Error       string  `json:"error,omitempty"`
	CreatedAt   string  `json:"created_at"`
	FinishedAt  *string `json:"finished_at,omitempty"`
	ExpiresAt   *string `json:"expires_at,omitempty"`
	DownloadURL string  `json:"download_url,omitempty"`
}

// exportView shows a job to p. A file with content gets no link for a
// reader who may not see content (jobs are shared within the organization).
func (s *Server) exportView(j *veritrail.ExportJob, base string, p *veritrail.Principal) exportJSON {
	vals, _ := url.ParseQuery(j.Query)
	v := exportJSON{ID: j.ID, State: j.State, Format: j.Format, Filters: paramsMap(vals), Content: j.WithContent, Notify: j.Notify,
		Progress: j.Progress, SizeBytes: j.SizeBytes, Error: j.Error, CreatedAt: j.CreatedAt.Format(time.RFC3339),
		FinishedAt: timeString(j.FinishedAt), ExpiresAt: timeString(j.ExpiresAt)}
	if j.State == veritrail.ExportReady && j.ExpiresAt != nil && (!j.WithContent || p.Can(veritrail.ScopeContentRead)) {
		v.DownloadURL = s.cfg.Exports.Links().URL(base, j)
	}
	return v
}

// createExport answers POST /api/v1/exports: {"format", "filters",
// "notify"} → {"id", "state": "pending"}.
func (s *Server) createExport(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	var in struct {
		Format  string         `json:"format"`
		Filters map[string]any `json:"filters"`
		Notify  string         `json:"notify"`
	}
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if !export.ValidFormat(in.Format) && in.Format != export.Bundle {
		return veritrail.Errorf(veritrail.EInvalid, "field format: csv, json, ndjson or bundle")
	}
	if in.Format == export.Bundle && !s.cfg.Exports.Bundles() {
		return veritrail.Errorf(veritrail.EUnavailable, "this server signs no checkpoints, so it cannot make evidence bundles")
	}
	if in.Notify != "" && !mail.ValidAddress(in.Notify) {
		return veritrail.Errorf(veritrail.EInvalid, "field notify: one e-mail address")
	}
	if in.Notify != "" && !s.cfg.Exports.Notifies() {
		return veritrail.Errorf(veritrail.EInvalid, "field notify: this server has no SMTP server configured (VERITRAIL_SMTP_URL)")
	}
	vals := url.Values{}
	for k, v := range in.Filters {
		switch v := v.(type) {
		case string:
			vals.Add(k, v)
		case float64:
			vals.Add(k, strconv.FormatFloat(v, 'f', -1, 64))
		case []any:
			for _, x := range v {
				xs, ok := x.(string)
				if !ok {
					return veritrail.Errorf(veritrail.EInvalid, "field filters.%s: strings only", k)
				}
				vals.Add(k, xs)
			}
		default:
			return veritrail.Errorf(veritrail.EInvalid, "field filters.%s: a string or a list of strings", k)
		}
	}
	withContent := p.Can(veritrail.ScopeContentRead)
	if _, err := export.ParseQuery(vals, withContent, s.now()); err != nil {
		return err
	}
	j := &veritrail.ExportJob{ID: veritrail.NewID("exp"), OrgID: p.OrgID, TokenID: requester(p), Format: in.Format, Query: vals.Encode(),
		WithContent: withContent, Notify: in.Notify, State: veritrail.ExportPending, CreatedAt: s.now().UTC()}
	if err := s.audit(r.Context(), r, p, "audit.export", &veritrail.Target{Type: "export", ID: j.ID},
		map[string]any{"parameters": in.Filters, "format": in.Format, "content": withContent, "notify": in.Notify}); err != nil {
		return err
	}
	if err := s.store.CreateExport(r.Context(), j); err != nil {
		return err
	}
	s.cfg.Exports.Wake()
	writeJSON(w, http.StatusAccepted, map[string]any{"id": j.ID, "state": j.State})
	return nil
}

func (s *Server) getExport(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	j, err := s.store.ExportByID(r.Context(), p.OrgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.exportView(j, s.baseURL(r), p))
	return nil
}

func (s *Server) listExports(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	js, err := s.store.ListExports(r.Context(), p.OrgID)
	if err != nil {
		return err
	}
	out := make([]exportJSON, len(js))
	for i, j := range js {
		out[i] = s.exportView(j, s.baseURL(r), p)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
	return nil
}

// downloadExport serves a ready export's file to whoever holds a valid
// signed link (export.Links); forged, altered or expired links are refused.
func (s *Server) downloadExport(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	id := r.PathValue("id")
	org, err1 := strconv.ParseInt(q.Get("o"), 10, 64)
	expires, err2 := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err1 != nil || err2 != nil || !s.cfg.Exports.Links().Check(org, id, expires, q.Get("sig")) {
		return veritrail.Errorf(veritrail.EForbidden, "this download link is not valid; ask for the export's download_url again")
	}
	if s.now().Unix() >= expires {
		return veritrail.Errorf(veritrail.EExpired, "this download link expired; export the events again")
	}
	gone := veritrail.Errorf(veritrail.EExpired, "this export is no longer available; export the events again")
	j, err := s.store.ExportByID(r.Context(), org, id)
	if err != nil && veritrail.ErrorCode(err) != veritrail.ENotFound {
		return err // not the link's fault: it may work on a retry
	}
	if err != nil || j.State != veritrail.ExportReady {
		return gone
	}
	f, err := export.OpenFile(r.Context(), s.store, j)
	if err != nil {
		return gone
	}
	defer f.Close()
	p := &veritrail.Principal{OrgID: org, TokenID: "download-link", TokenName: "download link of " + id, Role: "link"}
	if err := s.audit(r.Context(), r, p, "audit.export_downloaded", &veritrail.Target{Type: "export", ID: id},
		map[string]any{"format": j.Format, "events": j.Progress}); err != nil {
		return err
	}
	o, _ := s.store.OrgByID(r.Context(), org)
	name := "veritrail"
	if o != nil {
		name = o.Name
	}
	w.Header().Set("Content-Type", export.ContentType(j.Format))
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, export.FileName(name, j.Format, j.CreatedAt)))
	http.ServeContent(w, r, "", j.CreatedAt, f)
	return nil
}

// requester is who an export job acts for: the token, or the person
// signed in to the console.
func requester(p *veritrail.Principal) string {
	if p.User != nil {
		return p.User.ID
	}
	return p.TokenID
}
