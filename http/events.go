package http

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/admission"
	"github.com/veritrail/veritrail/internal/canonjson"
)

// postEvents ingests one event, a JSON array, or NDJSON. The whole body is
// decoded and validated before anything is stored, so a bad event refuses
// the request and nothing of it is kept.
func (s *Server) postEvents(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	events, err := s.decodeEvents(w, r)
	if err != nil {
		s.metrics.IngestEvents.WithLabelValues("rejected").Add(float64(max(len(events), 1)))
		return s.ingestFailed(err)
	}
	// The organization's settings decide what is recorded (the AI
	// interaction logs switch); the rest is not an error, and says why.
	st, err := s.orgSettings(r.Context(), p.OrgID)
	if err != nil {
		return s.ingestFailed(err)
	}
	reasons := make([]string, len(events))
	kept := events[:0:0]
	for i, e := range events {
		if ok, why := st.Admits(e); !ok {
			reasons[i] = why
			continue
		}
		kept = append(kept, e)
	}
	// DLP scans only what is kept: it changes content and decision, which
	// Admits does not look at.
	if err := applyDLP(st, kept); err != nil {
		return s.ingestFailed(err)
	}
	stored, err := s.store.Append(r.Context(), p.OrgID, kept)
	if err != nil {
		s.metrics.IngestEvents.WithLabelValues("rejected").Add(float64(len(events)))
		return s.ingestFailed(inRequest(err, reasons))
	}
	results := make([]veritrail.AppendResult, len(events))
	for i, k := 0, 0; i < len(events); i++ {
		if reasons[i] == "" {
			results[i] = stored[k]
			k++
		}
	}
	// ?receipt=true: each new event's exact envelope (what its leaf hash
	// is taken of) and content salt, for the sender to hold the log to
	// account later (package client).
	receipts := r.URL.Query().Get("receipt") == "true"
	dups, unrecorded := 0, 0
	buf := make([]byte, 0, 32+len(events)*48)
	buf = append(buf, `{"accepted":`...)
	buf = strconv.AppendInt(buf, int64(len(events)), 10)
	buf = append(buf, `,"events":[`...)
	for i, e := range events {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"id":`...)
		buf = canonjson.AppendString(buf, e.ID)
		if reasons[i] != "" {
			buf = append(buf, `,"recorded":false,"reason":`...)
			buf = canonjson.AppendString(buf, reasons[i])
			buf = append(buf, '}')
			unrecorded++
			continue
		}
		buf = append(buf, `,"seq":`...)
		buf = strconv.AppendInt(buf, results[i].Seq, 10)
		if results[i].Duplicate {
			buf = append(buf, `,"duplicate":true`...)
			dups++
		} else if receipts {
			buf = append(buf, `,"envelope":`...)
			buf = veritrail.AppendEnvelope(buf, e)
			if len(e.ContentSalt) > 0 {
				buf = append(buf, `,"content_salt":"`...)
				buf = base64.StdEncoding.AppendEncode(buf, e.ContentSalt)
				buf = append(buf, '"')
			}
		}
		buf = append(buf, '}')
	}
	buf = append(buf, "]}\n"...)
	s.metrics.IngestEvents.WithLabelValues("stored").Add(float64(len(events) - dups - unrecorded))
	if unrecorded > 0 {
		s.metrics.IngestEvents.WithLabelValues("not_recorded").Add(float64(unrecorded))
	}
	if dups > 0 {
		s.metrics.IngestEvents.WithLabelValues("duplicate").Add(float64(dups))
	}
	s.metrics.IngestRequests.WithLabelValues("200").Inc()
	w.Header().Set("Content-Type", "application/json")
	w.Write(buf)
	return nil
}

// inRequest renumbers an error about the k-th kept event (a conflict)
// after its position in the request, which counts the events not recorded
// too (reasons[i] != "").
func inRequest(err error, reasons []string) error {
	var ve *veritrail.Error
	if !errors.As(err, &ve) || ve.Index < 0 {
		return err
	}
	k := ve.Index
	for i, why := range reasons {
		if why != "" {
			continue
		}
		if k > 0 {
			k--
			continue
		}
		if i == ve.Index {
			return err
		}
		c := *ve
		c.Index = i
		c.Message = strings.Replace(c.Message, fmt.Sprintf("event %d:", ve.Index), fmt.Sprintf("event %d:", i), 1)
		return &c
	}
	return err
}

// ingestFailed counts a refused ingest request by its status and returns
// its error.
func (s *Server) ingestFailed(err error) error {
	s.metrics.IngestRequests.WithLabelValues(strconv.Itoa(StatusFor(err))).Inc()
	return err
}

// decodeEvents reads and validates the whole body.
func (s *Server) decodeEvents(w http.ResponseWriter, r *http.Request) ([]*veritrail.Event, error) {
	body, err := s.requestBody(w, r)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	dec := veritrail.NewDecoder(body, s.cfg.Limits, s.now())
	var events []*veritrail.Event
	for {
		e, err := dec.Next()
		if err == io.EOF {
			return events, nil
		}
		if err != nil {
			return events, bodyError(err)
		}
		e.Prepare()
		events = append(events, e)
	}
}

// query runs an interactive read of events in its turn (package
// admission): the turn is given back before the read is recorded, so it
// is not held while a commit is awaited.
func (s *Server) query(ctx context.Context, org int64, q *veritrail.Query) (*veritrail.Page, error) {
	turn, err := s.cfg.Turns.Acquire(ctx, admission.Interactive)
	if err != nil {
		return nil, err
	}
	defer turn.Release()
	return s.store.Query(ctx, org, q)
}

// listEvents answers GET /api/v1/events.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	q, err := veritrail.ParseQueryAt(r.URL.Query(), p.Can(veritrail.ScopeContentRead), s.now())
	if err != nil {
		return err
	}
	page, err := s.query(r.Context(), p.OrgID, q)
	if err != nil {
		return err
	}
	if err := s.auditQuery(r.Context(), r, p, page, queryDetails(r, len(page.Events))); err != nil {
		return err
	}
	next := q.NextCursor(page)
	if next != "" {
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, s.linkWith(r, "cursor", next)))
	}
	// has_more: another page is waiting now. A poller (order=seq, whose
	// cursor is always given) may stop at a page that is not full, or at an
	// empty one: its repeated reads are recorded once per window
	// (pollaudit.go), so the page after a record's is empty.
	limit := q.Limit
	if limit <= 0 {
		limit = veritrail.DefaultLimit
	}
	more := next != "" && (q.Order != veritrail.OrderSeq || len(page.Events) >= min(limit, veritrail.MaxLimit))
	w.Header().Set("Content-Type", "application/json")
	w.Write(appendPage(nil, page, next, more))
	return nil
}

// appendPage writes {"data": [...], "next_cursor": "...", "has_more": bool}.
func appendPage(buf []byte, page *veritrail.Page, next string, more bool) []byte {
	buf = append(buf, `{"data":[`...)
	for i, ev := range page.Events {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = veritrail.AppendEventJSON(buf, ev.Envelope, ev.Content, ev.Salt)
	}
	buf = append(buf, ']')
	if next != "" {
		buf = append(buf, `,"next_cursor":`...)
		buf = canonjson.AppendString(buf, next)
	}
	buf = append(buf, `,"has_more":`...)
	buf = strconv.AppendBool(buf, more)
	return append(buf, "}\n"...)
}

// getEvent answers GET /api/v1/events/{id}: the full event, content
// included when the caller may see it.
func (s *Server) getEvent(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	var withProof bool
	switch r.URL.Query().Get("proof") {
	case "", "false", "0":
	case "true", "1":
		withProof = true
	default:
		return veritrail.Errorf(veritrail.EInvalid, "parameter proof: must be true or false")
	}
	id := r.PathValue("id")
	if !veritrail.ValidID(id) {
		return veritrail.Errorf(veritrail.ENotFound, "event %q not found", id)
	}
	ev, err := s.store.EventByID(r.Context(), p.OrgID, id, p.Can(veritrail.ScopeContentRead))
	if err != nil {
		return err
	}
	if err := s.audit(r.Context(), r, p, "audit.event_viewed", &veritrail.Target{Type: "event", ID: id},
		map[string]any{"seq": ev.Seq, "content_shown": ev.Content != nil}); err != nil {
		return err
	}
	buf := veritrail.AppendEventJSON(nil, ev.Envelope, ev.Content, ev.Salt)
	if withProof {
		if buf, err = s.appendProof(r.Context(), buf, p, ev.Seq, ev.Envelope); err != nil {
			return err
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(buf, '\n'))
	return nil
}
