package http

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// postEvents ingests one event, a JSON array, or NDJSON. The whole body is
// decoded and validated before anything is stored, so a bad event refuses
// the request and nothing of it is kept.
func (s *Server) postEvents(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	events, err := s.decodeEvents(w, r)
	if err != nil {
		s.metrics.IngestEvents.WithLabelValues("rejected").Add(float64(max(len(events), 1)))
		s.ingestDone(w, err)
		return
	}
	// The organization's settings decide what is recorded (the AI
	// interaction logs switch); the rest is not an error, and says why.
	st, err := s.orgSettings(r.Context(), p.OrgID)
	if err != nil {
		s.internal(r, err)
		s.ingestDone(w, err)
		return
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
		s.internal(r, err)
		s.ingestDone(w, err)
		return
	}
	stored, err := s.store.Append(r.Context(), p.OrgID, kept)
	if err != nil {
		s.metrics.IngestEvents.WithLabelValues("rejected").Add(float64(len(events)))
		if veritrail.ErrorCode(err) == veritrail.EInternal {
			s.log.Error("append failed", "err", err)
		}
		s.ingestDone(w, inRequest(err, reasons))
		return
	}
	results := make([]veritrail.AppendResult, len(events))
	for i, k := 0, 0; i < len(events); i++ {
		if reasons[i] == "" {
			results[i] = stored[k]
			k++
		}
	}
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
		buf = veritrail.AppendJSONString(buf, e.ID)
		if reasons[i] != "" {
			buf = append(buf, `,"recorded":false,"reason":`...)
			buf = veritrail.AppendJSONString(buf, reasons[i])
			buf = append(buf, '}')
			unrecorded++
			continue
		}
		buf = append(buf, `,"seq":`...)
		buf = strconv.AppendInt(buf, results[i].Seq, 10)
		if results[i].Duplicate {
			buf = append(buf, `,"duplicate":true`...)
			dups++
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

func (s *Server) ingestDone(w http.ResponseWriter, err error) {
	s.metrics.IngestRequests.WithLabelValues(strconv.Itoa(StatusFor(err))).Inc()
	writeError(w, err)
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

// requestBody is r's body, gunzipped when its Content-Encoding says so. The
// raw body may not exceed the decompressed limit (Limits.MaxBodyBytes, the
// reader's to enforce) by much either.
func (s *Server) requestBody(w http.ResponseWriter, r *http.Request) (io.ReadCloser, error) {
	body := http.MaxBytesReader(w, r.Body, s.cfg.Limits.MaxBodyBytes+1<<20)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return body, nil
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			// Not even a gzip header (io.ErrUnexpectedEOF when shorter).
			return nil, veritrail.Errorf(veritrail.EInvalid, "the gzip body is corrupt: %v", err)
		}
		return zr, nil
	default:
		return nil, veritrail.Errorf(veritrail.EUnsupported, "Content-Encoding %q is not supported; send identity or gzip", enc)
	}
}

// bodyError classifies an error met while reading a request body.
func bodyError(err error) error {
	var ve *veritrail.Error
	if errors.As(err, &ve) {
		return ve
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return veritrail.Errorf(veritrail.ETooLarge, "the request body is over %d bytes; split it into smaller requests", mbe.Limit)
	}
	if errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || strings.Contains(err.Error(), "flate") {
		return veritrail.Errorf(veritrail.EInvalid, "the gzip body is corrupt: %v", err)
	}
	return veritrail.Errorf(veritrail.EInvalid, "the request body could not be read: %v", err)
}

// listEvents answers GET /api/v1/events.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	q, err := parseQuery(r.URL.Query(), p)
	if err != nil {
		writeError(w, err)
		return
	}
	page, err := s.store.Query(r.Context(), p.OrgID, q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.audit(r.Context(), r, p, "audit.query", nil, queryDetails(r, len(page.Events))); err != nil {
		writeError(w, err)
		return
	}
	next := ""
	if page.Next != nil {
		next = page.Next.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, s.linkWith(r, "cursor", next)))
	}
	// has_more: another page is waiting now. A poller (order=seq, whose
	// cursor is always given) stops at a page that is not full; it is never
	// empty when caught up, since it holds the record of the previous read.
	limit := q.Limit
	if limit <= 0 {
		limit = veritrail.DefaultLimit
	}
	more := next != "" && (q.Order != veritrail.OrderSeq || len(page.Events) >= min(limit, veritrail.MaxLimit))
	w.Header().Set("Content-Type", "application/json")
	w.Write(appendPage(nil, page, next, more))
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
		buf = veritrail.AppendJSONString(buf, next)
	}
	buf = append(buf, `,"has_more":`...)
	buf = strconv.AppendBool(buf, more)
	return append(buf, "}\n"...)
}

// internal logs err when it is an internal error (whose answer says no
// more than "internal error").
func (s *Server) internal(r *http.Request, err error) {
	if veritrail.ErrorCode(err) == veritrail.EInternal {
		s.log.Error("request failed", "path", r.URL.Path, "err", err)
	}
}

// fail answers err with the native error body, logging it if internal.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.internal(r, err)
	writeError(w, err)
}

// failMiro answers err with Miro's error body, logging it if internal.
func (s *Server) failMiro(w http.ResponseWriter, r *http.Request, err error) {
	s.internal(r, err)
	writeMiroError(w, err)
}

// linkWith is the request's absolute URL with one parameter replaced (the
// cursor of the next page, or an offset).
func (s *Server) linkWith(r *http.Request, name, value string) string {
	vals := r.URL.Query()
	vals.Set(name, value)
	return s.baseURL(r) + r.URL.Path + "?" + vals.Encode()
}

func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// commaFields may carry several values separated by commas: their values
// cannot contain commas.
var commaFields = map[veritrail.Field]bool{
	veritrail.FieldType: true, veritrail.FieldOutcome: true, veritrail.FieldDecision: true,
	veritrail.FieldStatus: true, veritrail.FieldIP: true, veritrail.FieldActorType: true,
}

// parseQuery turns list parameters into a query. Unknown parameters are
// refused: a misspelt filter must not silently widen an investigation.
func parseQuery(vals url.Values, p *veritrail.Principal) (*veritrail.Query, error) {
	q := &veritrail.Query{
		WithContent:   p.Can(veritrail.ScopeContentRead),
		TextInContent: p.Can(veritrail.ScopeContentRead),
	}
	one := func(name string) (string, error) {
		vs := vals[name]
		if len(vs) > 1 {
			return "", veritrail.Errorf(veritrail.EInvalid, "parameter %s: give it once", name)
		}
		return vs[0], nil
	}
	var cursor string
	names := make([]string, 0, len(vals))
	for name := range vals {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v, err := one(name)
		switch name {
		case "since", "until":
			if err != nil {
				return nil, err
			}
			t, err := ParseTime(v)
			if err != nil {
				return nil, veritrail.Errorf(veritrail.EInvalid, "parameter %s: %v", name, err)
			}
			if name == "since" {
				q.Since = t
			} else {
				q.Until = t
			}
		case "q":
			if err != nil {
				return nil, err
			}
			q.Text = strings.TrimSpace(v)
		case "order":
			if err != nil {
				return nil, err
			}
			o, ok := veritrail.ParseOrder(v)
			if !ok {
				return nil, veritrail.Errorf(veritrail.EInvalid, "parameter order: must be desc, asc or seq, got %q", v)
			}
			q.Order = o
		case "limit":
			if err != nil {
				return nil, err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > veritrail.MaxLimit {
				return nil, veritrail.Errorf(veritrail.EInvalid, "parameter limit: must be 1 to %d, got %q", veritrail.MaxLimit, v)
			}
			q.Limit = n
		case "cursor":
			if err != nil {
				return nil, err
			}
			cursor = v
		default:
			f, ok := veritrail.FieldByName(name)
			if !ok {
				return nil, veritrail.Errorf(veritrail.EInvalid, "unknown parameter %q; filters are: %s", name, filterNames())
			}
			filter := veritrail.Filter{Field: f}
			for _, v := range vals[name] {
				parts := []string{v}
				if commaFields[f] {
					parts = strings.Split(v, ",")
				}
				for _, part := range parts {
					kr, err := veritrail.ParseFilterValue(f, strings.TrimSpace(part))
					if err != nil {
						return nil, err
					}
					filter.Ranges = append(filter.Ranges, kr)
				}
			}
			q.Filters = append(q.Filters, filter)
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return nil, veritrail.Errorf(veritrail.EInvalid, "since (%s) must be before until (%s)", q.Since.Format(time.RFC3339Nano), q.Until.Format(time.RFC3339Nano))
	}
	if cursor != "" {
		c, err := veritrail.DecodeCursor(cursor, q)
		if err != nil {
			return nil, err
		}
		q.After = c
	}
	return q, nil
}

func filterNames() string {
	var names []string
	for _, f := range veritrail.Fields {
		names = append(names, f.String())
	}
	return strings.Join(names, ", ") + ", since, until, q, order, limit, cursor"
}

// ParseTime accepts RFC 3339 with any number of fractional digits, or a
// date (midnight UTC).
func ParseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time (2026-06-20T14:32:01Z) or a date (2026-06-20)", v)
}

// getEvent answers GET /api/v1/events/{id}: the full event, content
// included when the caller may see it.
func (s *Server) getEvent(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	var withProof bool
	switch r.URL.Query().Get("proof") {
	case "", "false", "0":
	case "true", "1":
		withProof = true
	default:
		writeError(w, veritrail.Errorf(veritrail.EInvalid, "parameter proof: must be true or false"))
		return
	}
	id := r.PathValue("id")
	if !veritrail.ValidID(id) {
		writeError(w, veritrail.Errorf(veritrail.ENotFound, "event %q not found", id))
		return
	}
	ev, err := s.store.EventByID(r.Context(), p.OrgID, id, p.Can(veritrail.ScopeContentRead))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.audit(r.Context(), r, p, "audit.event_viewed", &veritrail.Target{Type: "event", ID: id},
		map[string]any{"seq": ev.Seq, "content_shown": ev.Content != nil}); err != nil {
		writeError(w, err)
		return
	}
	buf := veritrail.AppendEventJSON(nil, ev.Envelope, ev.Content, ev.Salt)
	if withProof {
		if buf, err = s.appendProof(r.Context(), buf, p, ev.Seq, ev.Envelope); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(buf, '\n'))
}
