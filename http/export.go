package http

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/checkpoint"
	"github.com/veritrail/veritrail/export"
	"github.com/veritrail/veritrail/mail"
	"github.com/veritrail/veritrail/tlog"
	"github.com/veritrail/veritrail/verify"
)

// exportQuery parses the filters of an export: every list filter, in the
// order given (default asc, oldest first), without limit or cursor.
func exportQuery(vals url.Values, withContent bool) (*veritrail.Query, error) {
	for _, k := range []string{"limit", "cursor"} {
		if vals.Has(k) {
			return nil, veritrail.Errorf(veritrail.EInvalid, "parameter %s: an export holds every matching event; leave it out", k)
		}
	}
	p := &veritrail.Principal{}
	if withContent {
		p.Scopes = []string{veritrail.ScopeContentRead}
	}
	q, err := parseQuery(vals, p)
	if err == nil && !vals.Has("order") {
		q.Order = veritrail.OrderAsc
	}
	return q, err
}

// writeEvents streams every event of org matching q into w, a page at a
// time (memory stays flat). A polling-order export stops at the log's size
// when it began, so it ends while appends go on.
func (s *Server) writeEvents(ctx context.Context, org int64, q *veritrail.Query, w export.Writer, progress func(n int64)) error {
	q.Limit = veritrail.MaxLimit
	stopAt := int64(-1)
	if q.Order == veritrail.OrderSeq {
		size, _, err := s.store.LogHead(ctx, org)
		if err != nil {
			return err
		}
		stopAt = size
	}
	for {
		page, err := s.store.Query(ctx, org, q)
		if err != nil {
			return err
		}
		for i := range page.Events {
			if stopAt >= 0 && page.Events[i].Seq >= stopAt {
				return nil
			}
			if err := w.Write(&page.Events[i]); err != nil {
				return err
			}
		}
		if progress != nil {
			progress(w.Count())
		}
		if page.Next == nil || len(page.Events) == 0 {
			return nil
		}
		q.After = page.Next
	}
}

func exportFileName(org, format string, at time.Time) string {
	return fmt.Sprintf("veritrail-%s-events-%s.%s", org, at.UTC().Format("20060102-150405"), export.Extension(format))
}

// exportEvents answers GET /api/v1/events/export: the matching events as
// CSV, JSON or NDJSON, streamed.
func (s *Server) exportEvents(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	vals := r.URL.Query()
	format := vals.Get("format")
	vals.Del("format")
	if format == "" {
		format = export.CSV
	}
	if !export.ValidFormat(format) {
		writeError(w, veritrail.Errorf(veritrail.EInvalid, "parameter format: csv, json or ndjson (evidence bundles are made by POST /api/v1/exports)"))
		return
	}
	withContent := p.Can(veritrail.ScopeContentRead)
	q, err := exportQuery(vals, withContent)
	if err != nil {
		writeError(w, err)
		return
	}
	params := queryDetails(r, 0)["parameters"]
	if err := s.audit(r.Context(), r, p, "audit.export", nil, map[string]any{"parameters": params, "format": format, "content": withContent}); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", export.ContentType(format))
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, exportFileName(p.OrgName, format, s.now())))
	ew, err := export.NewWriter(w, format, withContent)
	if err != nil {
		writeError(w, err)
		return
	}
	err = s.writeEvents(r.Context(), p.OrgID, q, ew, nil)
	if err == nil {
		err = ew.Close()
	}
	if err != nil {
		// The status is sent; a cut-off file is what the client gets.
		s.log.Error("export stopped", slog.Any("err", err))
		return
	}
	if err := s.audit(r.Context(), r, p, "audit.export_finished", nil, map[string]any{"format": format, "results": ew.Count()}); err != nil {
		s.log.Error("export finished but not recorded", slog.Any("err", err))
	}
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
		v.DownloadURL = s.downloadURL(base, j)
	}
	return v
}

// createExport answers POST /api/v1/exports: {"format", "filters",
// "notify"} → {"id", "state": "pending"}.
func (s *Server) createExport(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	var in struct {
		Format  string         `json:"format"`
		Filters map[string]any `json:"filters"`
		Notify  string         `json:"notify"`
	}
	if err := decodeBody(r, &in); err != nil {
		writeError(w, err)
		return
	}
	if !export.ValidFormat(in.Format) && in.Format != export.Bundle {
		writeError(w, veritrail.Errorf(veritrail.EInvalid, "field format: csv, json, ndjson or bundle"))
		return
	}
	if in.Format == export.Bundle && s.cfg.Checkpointer == nil {
		writeError(w, veritrail.Errorf(veritrail.EUnavailable, "this server signs no checkpoints, so it cannot make evidence bundles"))
		return
	}
	if in.Notify != "" && !mail.ValidAddress(in.Notify) {
		writeError(w, veritrail.Errorf(veritrail.EInvalid, "field notify: one e-mail address"))
		return
	}
	if in.Notify != "" && !s.cfg.Mail.Enabled() {
		writeError(w, veritrail.Errorf(veritrail.EInvalid, "field notify: this server has no SMTP server configured (VERITRAIL_SMTP_URL)"))
		return
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
					writeError(w, veritrail.Errorf(veritrail.EInvalid, "field filters.%s: strings only", k))
					return
				}
				vals.Add(k, xs)
			}
		default:
			writeError(w, veritrail.Errorf(veritrail.EInvalid, "field filters.%s: a string or a list of strings", k))
			return
		}
	}
	withContent := p.Can(veritrail.ScopeContentRead)
	if _, err := exportQuery(vals, withContent); err != nil {
		writeError(w, err)
		return
	}
	j := &veritrail.ExportJob{ID: veritrail.NewID("exp"), OrgID: p.OrgID, TokenID: p.TokenID, Format: in.Format, Query: vals.Encode(),
		WithContent: withContent, Notify: in.Notify, State: veritrail.ExportPending, CreatedAt: s.now().UTC()}
	if err := s.audit(r.Context(), r, p, "audit.export", &veritrail.Target{Type: "export", ID: j.ID},
		map[string]any{"parameters": in.Filters, "format": in.Format, "content": withContent, "notify": in.Notify}); err != nil {
		writeError(w, err)
		return
	}
	if err := s.store.CreateExport(r.Context(), j); err != nil {
		s.fail(w, r, err)
		return
	}
	s.wakeExports()
	writeJSON(w, http.StatusAccepted, map[string]any{"id": j.ID, "state": j.State})
}

func (s *Server) getExport(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	j, err := s.store.ExportByID(r.Context(), p.OrgID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.exportView(j, s.baseURL(r), p))
}

func (s *Server) listExports(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	js, err := s.store.ListExports(r.Context(), p.OrgID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]exportJSON, len(js))
	for i, j := range js {
		out[i] = s.exportView(j, s.baseURL(r), p)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
}

// Download links: /api/v1/exports/{id}/download?o=ORG&expires=UNIX&sig=HEX,
// where sig is HMAC-SHA256 with the server's link key over the
// organization, the job and the expiry. They work without a token until
// they expire (with the file).

func (s *Server) linkSig(org int64, id string, expires int64) string {
	m := hmac.New(sha256.New, s.cfg.LinkKey)
	fmt.Fprintf(m, "veritrail-export-download\n%d\n%s\n%d", org, id, expires)
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) downloadURL(base string, j *veritrail.ExportJob) string {
	if s.cfg.PublicURL != "" {
		base = strings.TrimRight(s.cfg.PublicURL, "/")
	}
	exp := j.ExpiresAt.Unix()
	return fmt.Sprintf("%s/api/v1/exports/%s/download?o=%d&expires=%d&sig=%s", base, url.PathEscape(j.ID), j.OrgID, exp, s.linkSig(j.OrgID, j.ID, exp))
}

// downloadExport serves a ready export's file to whoever holds a valid
// signed link; forged, altered or expired links are refused.
func (s *Server) downloadExport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := r.PathValue("id")
	org, err1 := strconv.ParseInt(q.Get("o"), 10, 64)
	expires, err2 := strconv.ParseInt(q.Get("expires"), 10, 64)
	sig := q.Get("sig")
	if err1 != nil || err2 != nil || len(s.cfg.LinkKey) == 0 ||
		!hmac.Equal([]byte(sig), []byte(s.linkSig(org, id, expires))) {
		writeError(w, veritrail.Errorf(veritrail.EForbidden, "this download link is not valid; ask for the export's download_url again"))
		return
	}
	if s.now().Unix() >= expires {
		writeErrorStatus(w, http.StatusGone, "expired", "this download link expired; export the events again")
		return
	}
	j, err := s.store.ExportByID(r.Context(), org, id)
	if err != nil && veritrail.ErrorCode(err) != veritrail.ENotFound {
		s.fail(w, r, err) // not the link's fault: it may work on a retry
		return
	}
	if err != nil || j.State != veritrail.ExportReady {
		writeErrorStatus(w, http.StatusGone, "expired", "this export is no longer available; export the events again")
		return
	}
	f, err := s.openExportFile(r.Context(), j)
	if err != nil {
		writeErrorStatus(w, http.StatusGone, "expired", "this export is no longer available; export the events again")
		return
	}
	defer f.Close()
	p := &veritrail.Principal{OrgID: org, TokenID: "download-link", TokenName: "download link of " + id, Role: "link"}
	if err := s.audit(r.Context(), r, p, "audit.export_downloaded", &veritrail.Target{Type: "export", ID: id},
		map[string]any{"format": j.Format, "events": j.Progress}); err != nil {
		writeError(w, err)
		return
	}
	o, _ := s.store.OrgByID(r.Context(), org)
	name := "veritrail"
	if o != nil {
		name = o.Name
	}
	w.Header().Set("Content-Type", export.ContentType(j.Format))
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, exportFileName(name, j.Format, j.CreatedAt)))
	http.ServeContent(w, r, "", j.CreatedAt, f)
}

// The job runner.

func (s *Server) wakeExports() {
	select {
	case s.exportWake <- struct{}{}:
	default:
	}
}

// RunExports works through export jobs until ctx ends: it takes up jobs
// interrupted by a restart, runs pending ones in order, and deletes the
// files of expired ones.
func (s *Server) RunExports(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		// Between jobs of this process: any running job is another's,
		// and the store requeues those whose worker is gone.
		if err := s.store.RequeueRunningExports(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("export jobs: requeue", slog.Any("err", err))
		}
		for {
			j, err := s.store.ClaimExport(ctx, s.now().UTC())
			if veritrail.ErrorCode(err) == veritrail.EConflict {
				continue // another worker took it
			}
			if err != nil {
				if veritrail.ErrorCode(err) != veritrail.ENotFound && ctx.Err() == nil {
					s.log.Error("export jobs: claim", slog.Any("err", err))
				}
				break
			}
			s.runExport(ctx, j)
		}
		s.SweepExports(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.exportWake:
		case <-tick.C:
		}
	}
}

// SweepExports deletes the files of expired export jobs now (RunExports
// does it every minute).
func (s *Server) SweepExports(ctx context.Context) {
	js, err := s.store.ExpiredExports(ctx, s.now())
	if err != nil {
		return
	}
	for _, j := range js {
		s.removeExportFile(ctx, j)
		j.State, j.Path = veritrail.ExportExpired, ""
		s.store.UpdateExport(ctx, j)
	}
}

func (s *Server) runExport(ctx context.Context, j *veritrail.ExportJob) {
	log := s.log.With(slog.String("export", j.ID))
	err := s.buildExport(ctx, j)
	if ctx.Err() != nil {
		return // shutting down: the job is taken up again at the next start
	}
	now := s.now().UTC()
	j.FinishedAt = &now
	if err != nil {
		log.Error("export failed", slog.Any("err", err))
		j.State, j.Error = veritrail.ExportFailed, veritrail.ErrorMessage(err)
	} else {
		exp := now.Add(s.cfg.ExportTTL)
		j.State, j.ExpiresAt = veritrail.ExportReady, &exp
	}
	if err := s.store.UpdateExport(ctx, j); err != nil {
		log.Error("export state not saved", slog.Any("err", err))
		return
	}
	p := &veritrail.Principal{OrgID: j.OrgID, TokenID: j.TokenID, TokenName: "export job " + j.ID, Role: "job"}
	rec := s.auditEvent(nil, p, "audit.export_finished",
		&veritrail.Target{Type: "export", ID: j.ID}, map[string]any{"format": j.Format, "results": j.Progress, "state": j.State})
	if _, err := s.store.Append(ctx, j.OrgID, []*veritrail.Event{rec}); err != nil {
		log.Error("export finished but not recorded", slog.Any("err", err))
	}
	if j.Notify != "" {
		s.notifyExport(ctx, j)
	}
}

// buildExport writes a job's file under the export directory.
func (s *Server) buildExport(ctx context.Context, j *veritrail.ExportJob) error {
	if err := os.MkdirAll(s.cfg.ExportDir, 0o700); err != nil {
		return err
	}
	final := filepath.Join(s.cfg.ExportDir, j.ID+"."+export.Extension(j.Format))
	tmp := final + ".part"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	vals, err := url.ParseQuery(j.Query)
	if err != nil {
		f.Close()
		return err
	}
	q, err := exportQuery(vals, j.WithContent)
	if err != nil {
		f.Close()
		return err
	}
	last := time.Now()
	progress := func(n int64) {
		if time.Since(last) > time.Second {
			last = time.Now()
			j.Progress = n
			s.store.UpdateExport(ctx, j)
		}
	}
	var count int64
	if j.Format == export.Bundle {
		count, err = s.writeBundle(ctx, j, q, f, progress)
	} else {
		var ew export.Writer
		if ew, err = export.NewWriter(f, j.Format, j.WithContent); err == nil {
			if err = s.writeEvents(ctx, j.OrgID, q, ew, progress); err == nil {
				err = ew.Close()
			}
			count = ew.Count()
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if fs, ok := s.store.(veritrail.ExportFileStore); ok {
		// A store several nodes share keeps the file, so that any node
		// serves the download link.
		f, err := os.Open(tmp)
		if err != nil {
			return err
		}
		defer f.Close()
		size, err := fs.PutExportFile(ctx, j.OrgID, j.ID, f)
		if err != nil {
			return err
		}
		j.Path, j.Progress, j.SizeBytes = exportInStore+j.ID, count, size
		return nil
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	fi, err := os.Stat(final)
	if err != nil {
		return err
	}
	j.Path, j.Progress, j.SizeBytes = final, count, fi.Size()
	return nil
}

// exportInStore prefixes the Path of export files kept by the store
// (veritrail.ExportFileStore) rather than on this node's disk.
const exportInStore = "store:"

// openExportFile opens a ready job's file, wherever it is kept.
func (s *Server) openExportFile(ctx context.Context, j *veritrail.ExportJob) (io.ReadSeekCloser, error) {
	if strings.HasPrefix(j.Path, exportInStore) {
		fs, ok := s.store.(veritrail.ExportFileStore)
		if !ok {
			return nil, veritrail.Errorf(veritrail.ENotFound, "export file not kept by this store")
		}
		return fs.OpenExportFile(ctx, j.OrgID, j.ID)
	}
	return os.Open(j.Path)
}

// removeExportFile deletes an expired job's file, wherever it is kept.
func (s *Server) removeExportFile(ctx context.Context, j *veritrail.ExportJob) {
	if strings.HasPrefix(j.Path, exportInStore) {
		if fs, ok := s.store.(veritrail.ExportFileStore); ok {
			fs.DeleteExportFile(ctx, j.OrgID, j.ID)
		}
		return
	}
	os.Remove(j.Path)
}

// writeBundle writes an evidence bundle: the events with inclusion proofs
// against one checkpoint, signed now, that covers them all.
func (s *Server) writeBundle(ctx context.Context, j *veritrail.ExportJob, q *veritrail.Query, w io.Writer, progress func(int64)) (int64, error) {
	org, err := s.store.OrgByID(ctx, j.OrgID)
	if err != nil {
		return 0, err
	}
	cp, err := s.cfg.Checkpointer.Sign(ctx, org)
	if err != nil {
		return 0, err
	}
	vkey, err := s.cfg.Checkpointer.VerifierKey(org)
	if err != nil {
		return 0, err
	}
	bw, err := verify.NewBundleWriter(w, cp.Note, vkey)
	if err != nil {
		return 0, err
	}
	read := cachedTiles(checkpoint.TileReader(s.store, j.OrgID))
	sink := &bundleSink{ctx: ctx, bw: bw, size: cp.Size, read: read}
	if err := s.writeEvents(ctx, j.OrgID, q, sink, progress); err != nil {
		return 0, err
	}
	return sink.Count(), bw.Close()
}

// bundleSink adapts the bundle writer to export.Writer: it adds each
// event's inclusion proof and leaves out events newer than the checkpoint.
type bundleSink struct {
	ctx  context.Context
	bw   *verify.BundleWriter
	size int64
	read tlog.TileReader
}

func (b *bundleSink) Write(ev *veritrail.StoredEvent) error {
	if ev.Seq >= b.size {
		return nil
	}
	proof, err := tlog.InclusionProof(b.ctx, b.read, uint64(ev.Seq), uint64(b.size))
	if err != nil {
		return err
	}
	return b.bw.Add(&verify.BundleEvent{Seq: ev.Seq, Envelope: ev.Envelope, Content: ev.Content, Salt: ev.Salt, Proof: proof})
}

func (b *bundleSink) Close() error { return nil }
func (b *bundleSink) Count() int64 { return int64(b.bw.Count()) }

// cachedTiles keeps the tiles a bundle reads: neighbouring events share
// most of their proofs. Full tiles never change; partial ones are read at
// the checkpoint's size or later, which only adds to them.
func cachedTiles(read tlog.TileReader) tlog.TileReader {
	cache := map[tlog.TileID][]byte{}
	return func(ctx context.Context, id tlog.TileID) ([]byte, error) {
		if h, ok := cache[id]; ok {
			return h, nil
		}
		h, err := read(ctx, id)
		if err != nil {
			return nil, err
		}
		if len(cache) > 4096 {
			clear(cache)
		}
		cache[id] = h
		return h, nil
	}
}

func (s *Server) notifyExport(ctx context.Context, j *veritrail.ExportJob) {
	// downloadURL prefers the configured public URL; without one, a job
	// has no request to take the host from.
	const base = "http://localhost"
	var body strings.Builder
	subject := "Your Veritrail export is ready"
	if j.State == veritrail.ExportReady {
		fmt.Fprintf(&body, "Your export %s (%s, %d events) is ready.\n\nDownload it (the link works until %s):\n%s\n",
			j.ID, j.Format, j.Progress, j.ExpiresAt.UTC().Format(time.RFC1123), s.downloadURL(base, j))
	} else {
		subject = "Your Veritrail export failed"
		fmt.Fprintf(&body, "Your export %s (%s) failed: %s\n", j.ID, j.Format, j.Error)
	}
	body.WriteString("\nThis message was sent by Veritrail because an export was requested with this address.\n")
	mctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := mail.Send(mctx, s.cfg.Mail, &mail.Message{To: j.Notify, Subject: subject, Body: body.String()}); err != nil {
		s.log.Error("export e-mail not sent", slog.String("export", j.ID), slog.Any("err", err))
	}
}
