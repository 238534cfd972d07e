package http

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// Miro-compatible read endpoints: the shapes of Miro's audit-log and AI
// interaction log APIs, so SIEM connectors written for Miro (Microsoft
// Sentinel's among them) work by changing the host. They answer from the
// same store and under the same access rules as the native API; the native
// polling mode (GET /api/v1/events?order=seq) remains the better way to
// pull everything (docs/SIEM.md).

// miroTimeLayout is how Miro writes times: UTC, milliseconds, +0000.
const miroTimeLayout = "2006-01-02T15:04:05.000-0700"

// miroDefaultOrder is the order when a request gives no sorting: Miro's
// documented default for /v2/audit/logs is ASC.
const miroDefaultOrder = veritrail.OrderAsc

// AI interaction logs come at most this many a page, as in Miro's API.
const miroAIMaxLimit = 100

// Every item carries every key the documentation lists (docs/SIEM.md), null
// when the event has no value for it or the reader may not see it: SIEM
// column mappings (Sentinel's) and field lookups (Splunk's) are written
// against a fixed shape, and a key that comes and goes breaks them.

// miroLog is one item of /v1 and /v2/audit/logs: Miro's log object.
type miroLog struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Event     string          `json:"event"`
	Category  string          `json:"category"`
	CreatedAt string          `json:"createdAt"`
	CreatedBy miroActor       `json:"createdBy"`
	Object    *miroObject     `json:"object"`
	Context   miroContext     `json:"context"`
	Details   json.RawMessage `json:"details"`
}

// miroActor is an actor with every member present (null when empty).
type miroActor struct {
	Type  string  `json:"type"`
	ID    *string `json:"id"`
	Email *string `json:"email"`
	Name  *string `json:"name"`
}

func toMiroActor(a veritrail.Actor) miroActor {
	return miroActor{Type: a.Type, ID: nullable(a.ID), Email: nullable(a.Email), Name: nullable(a.Name)}
}

// miroObject is the target of an audit log item: id and name.
type miroObject struct {
	ID   *string `json:"id"`
	Name *string `json:"name"`
}

// miroAIObject is the target of an AI interaction log item: id, type, name.
type miroAIObject struct {
	ID   *string `json:"id"`
	Type *string `json:"type"`
	Name *string `json:"name"`
}

type miroContext struct {
	IP           *string  `json:"ip"`
	Team         *miroRef `json:"team"`
	Organization miroRef  `json:"organization"`
}

// nullable is s, or nil (JSON null) when it is empty.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type miroRef struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	Type string `json:"type"`
}

// miroAILog is one item of /v2/orgs/{org}/ai-interaction-logs.
type miroAILog struct {
	ID            string          `json:"id"`
	CreatedAt     string          `json:"createdAt"`
	StoredAt      string          `json:"storedAt"`
	SessionID     *string         `json:"sessionId"`
	MessageID     string          `json:"messageId"`
	Object        *miroAIObject   `json:"object"`
	AIFeatureName *string         `json:"aiFeatureName"`
	Actor         miroActor       `json:"actor"`
	LogType       string          `json:"logType"`
	Details       json.RawMessage `json:"details"`
}

// miroCursorList is Miro's cursor-paginated answer; Cursor is absent on
// the last page, which is how Miro clients know to stop.
type miroCursorList struct {
	Type   string `json:"type"`
	Limit  int    `json:"limit"`
	Size   int    `json:"size"`
	Cursor string `json:"cursor,omitempty"`
	Data   any    `json:"data"`
}

// miroOffsetList is the answer of Miro's older offset-paginated API.
type miroOffsetList struct {
	Type     string    `json:"type"`
	Limit    int       `json:"limit"`
	Offset   int       `json:"offset"`
	Size     int       `json:"size"`
	NextLink *string   `json:"nextLink"`
	PrevLink *string   `json:"prevLink"`
	Data     []miroLog `json:"data"`
}

// miroV2AuditLogs answers GET /v2/audit/logs: the events of a half-open
// window [createdAfter, createdBefore), cursor-paginated. Half-open, so a
// connector's back-to-back windows (Sentinel's are 5 minutes) neither
// overlap nor leave gaps.
func (s *Server) miroV2AuditLogs(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	q, err := parseMiroList(r.URL.Query(), p, miroParamSpec{
		after: "createdAfter", before: "createdBefore", required: true,
		order: miroDefaultOrder, sorting: true, defLimit: veritrail.DefaultLimit, maxLimit: veritrail.MaxLimit,
	})
	if err != nil {
		return err
	}
	page, err := s.query(r.Context(), p.OrgID, q)
	if err != nil {
		return err
	}
	data, err := miroLogs(page.Events, p)
	if err != nil {
		return err
	}
	if err := s.auditQuery(r.Context(), r, p, page, miroQueryDetails(r, len(data))); err != nil {
		return err
	}
	resp := miroCursorList{Type: "cursor-list", Limit: q.Limit, Size: len(data), Data: data}
	if page.Next != nil {
		resp.Cursor = page.Next.Encode()
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// miroV1AuditLogs answers GET /v1/audit/logs, Miro's older API: offset
// paging, newest first, and size = the number of events in the window.
// The native API has no offsets (they skip or repeat events while writes
// go on), so both are found by walking the window with cursors: every
// request costs O(window). /v2/audit/logs and the native polling mode do
// not.
func (s *Server) miroV1AuditLogs(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	vals := r.URL.Query()
	q, err := parseMiroList(vals, p, miroParamSpec{
		after: "createdAfter", before: "createdBefore", required: true,
		order: veritrail.OrderDesc, offset: true, defLimit: veritrail.DefaultLimit, maxLimit: veritrail.MaxLimit,
	})
	if err != nil {
		return err
	}
	offset := 0
	if v := vals.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return veritrail.Errorf(veritrail.EInvalid, "parameter offset: must be a whole number from 0, got %q", v)
		}
	}
	// Count the window, envelopes only, and note where the page starts.
	count := *q
	count.Limit, count.WithContent, count.After = veritrail.MaxLimit, false, nil
	size := 0
	var start *veritrail.Cursor
	for {
		page, err := s.query(r.Context(), p.OrgID, &count)
		if err != nil {
			return err
		}
		if offset > size && offset <= size+len(page.Events) {
			// The page starts after the event at offset-1.
			e, err := veritrail.ParseEnvelope(page.Events[offset-size-1].Envelope)
			if err != nil {
				return err
			}
			start = &veritrail.Cursor{Order: q.Order, TimeNS: e.Time.UnixNano(), Seq: e.Seq, Fingerprint: q.Fingerprint()}
		}
		size += len(page.Events)
		if page.Next == nil {
			break
		}
		count.After = page.Next
	}
	data := []miroLog{}
	page := &veritrail.Page{}
	if offset < size {
		q.After = start
		if page, err = s.query(r.Context(), p.OrgID, q); err != nil {
			return err
		}
		if data, err = miroLogs(page.Events, p); err != nil {
			return err
		}
	}
	if err := s.auditQuery(r.Context(), r, p, page, miroQueryDetails(r, len(data))); err != nil {
		return err
	}
	resp := miroOffsetList{Type: "list", Limit: q.Limit, Offset: offset, Size: size, Data: data}
	if offset+q.Limit < size {
		link := s.linkWith(r, "offset", strconv.Itoa(offset+q.Limit))
		resp.NextLink = &link
	}
	if offset > 0 {
		link := s.linkWith(r, "offset", strconv.Itoa(max(0, offset-q.Limit)))
		resp.PrevLink = &link
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// miroAIInteractionLogs answers GET /v2/orgs/{org}/ai-interaction-logs:
// the organization's events of category ai in a half-open window
// [from, to). {org} is the caller's organization name; any other answers
// 404, whether or not it exists.
func (s *Server) miroAIInteractionLogs(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	if r.PathValue("org") != p.OrgName {
		return veritrail.Errorf(veritrail.ENotFound, "organization %q not found", r.PathValue("org"))
	}
	ai, err := veritrail.ParseFilterValue(veritrail.FieldType, "ai.*")
	if err != nil {
		return err
	}
	q, err := parseMiroList(r.URL.Query(), p, miroParamSpec{
		after: "from", before: "to", order: miroDefaultOrder, sorting: true, defLimit: miroAIMaxLimit, maxLimit: miroAIMaxLimit,
		filters: map[string]veritrail.Field{"emails": veritrail.FieldActorEmail, "object_ids": veritrail.FieldTargetID},
		where:   []veritrail.Filter{{Field: veritrail.FieldType, Ranges: []veritrail.KeyRange{ai}}},
	})
	if err != nil {
		return err
	}
	page, err := s.query(r.Context(), p.OrgID, q)
	if err != nil {
		return err
	}
	data := make([]miroAILog, 0, len(page.Events))
	for _, ev := range page.Events {
		item, err := toMiroAILog(ev)
		if err != nil {
			return err
		}
		data = append(data, item)
	}
	if err := s.auditQuery(r.Context(), r, p, page, miroQueryDetails(r, len(data))); err != nil {
		return err
	}
	resp := miroCursorList{Type: "cursor-list", Limit: q.Limit, Size: len(data), Data: data}
	if page.Next != nil {
		resp.Cursor = page.Next.Encode()
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// miroParamSpec says which parameters a Miro-compatible list takes.
type miroParamSpec struct {
	after, before      string          // the window's parameters
	required           bool            // the window must be given
	order              veritrail.Order // unless sorting says otherwise
	sorting            bool            // it takes sorting (ASC or DESC)
	offset             bool            // it pages by offset instead of cursor
	defLimit, maxLimit int
	// filters are list parameters (repeated or comma-separated) on fields.
	filters map[string]veritrail.Field
	// where is always part of the query (e.g. the ai category).
	where []veritrail.Filter
}

// parseMiroList turns a Miro-compatible list request into a query. As in
// the native API, unknown parameters are refused: a misspelt parameter
// must not silently widen what a SIEM collects.
func parseMiroList(vals url.Values, p *veritrail.Principal, spec miroParamSpec) (*veritrail.Query, error) {
	known := []string{spec.after, spec.before, "limit"}
	if spec.offset {
		known = append(known, "offset")
	} else {
		known = append(known, "cursor")
	}
	if spec.sorting {
		known = append(known, "sorting")
	}
	filterNames := slices.Sorted(maps.Keys(spec.filters))
	for _, name := range slices.Sorted(maps.Keys(vals)) {
		switch {
		case slices.Contains(filterNames, name):
		case !slices.Contains(known, name):
			return nil, veritrail.Errorf(veritrail.EInvalid, "unknown parameter %q; this endpoint takes %s",
				name, strings.Join(append(known, filterNames...), ", "))
		case len(vals[name]) > 1:
			return nil, veritrail.Errorf(veritrail.EInvalid, "parameter %s: give it once", name)
		}
	}

	q := &veritrail.Query{Order: spec.order, Limit: spec.defLimit, WithContent: p.Can(veritrail.ScopeContentRead)}
	var err error
	if q.Since, err = miroTime(vals, spec.after, spec.required); err != nil {
		return nil, err
	}
	if q.Until, err = miroTime(vals, spec.before, spec.required); err != nil {
		return nil, err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return nil, veritrail.Errorf(veritrail.EInvalid, "parameter %s (%s) must be before %s (%s)",
			spec.after, vals.Get(spec.after), spec.before, vals.Get(spec.before))
	}
	if v := vals.Get("sorting"); v != "" {
		switch strings.ToUpper(v) {
		case "ASC":
			q.Order = veritrail.OrderAsc
		case "DESC":
			q.Order = veritrail.OrderDesc
		default:
			return nil, veritrail.Errorf(veritrail.EInvalid, "parameter sorting: must be ASC or DESC, got %q", v)
		}
	}
	if v := vals.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > spec.maxLimit {
			return nil, veritrail.Errorf(veritrail.EInvalid, "parameter limit: must be 1 to %d, got %q", spec.maxLimit, v)
		}
		q.Limit = n
	}
	for _, name := range filterNames {
		filter := veritrail.Filter{Field: spec.filters[name]}
		for _, v := range vals[name] {
			for part := range strings.SplitSeq(v, ",") {
				if part = strings.TrimSpace(part); part == "" {
					continue
				}
				kr, err := veritrail.ParseFilterValue(filter.Field, part)
				if err != nil {
					return nil, veritrail.Errorf(veritrail.EInvalid, "parameter %s: %v", name, err)
				}
				filter.Ranges = append(filter.Ranges, kr)
			}
		}
		if len(filter.Ranges) > 0 {
			q.Filters = append(q.Filters, filter)
		}
	}
	q.Filters = append(q.Filters, spec.where...)
	if v := vals.Get("cursor"); v != "" && !spec.offset {
		if q.After, err = veritrail.DecodeCursor(v, q); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// miroTime reads an ISO 8601 time parameter: what ParseTime takes (RFC
// 3339 with any number of fractional digits, as Sentinel's
// 2025-12-05T10:15:00.00Z, or a date), and the basic offset form Miro
// itself writes (+0000). A '+' sent unescaped in a query string arrives as
// a space; it is read as the '+' it was.
func miroTime(vals url.Values, name string, required bool) (time.Time, error) {
	v := vals.Get(name)
	if v == "" {
		if required {
			return time.Time{}, veritrail.Errorf(veritrail.EInvalid, "parameter %s: required (an ISO 8601 time such as 2025-12-05T10:15:00.000Z)", name)
		}
		return time.Time{}, nil
	}
	fixed := strings.Replace(v, " ", "+", 1)
	if t, err := veritrail.ParseTime(fixed); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02T15:04:05.999999999Z0700", fixed); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, veritrail.Errorf(veritrail.EInvalid, "parameter %s: %q is not an ISO 8601 time such as 2025-12-05T10:15:00.000Z", name, v)
}

// miroLogs converts stored events to Miro log objects. Details are the
// event's content (its "details" member when it has one, as Miro events
// mapped into Veritrail do), present only when the reader may see content:
// the store returns content only then.
func miroLogs(events []veritrail.StoredEvent, p *veritrail.Principal) ([]miroLog, error) {
	out := make([]miroLog, 0, len(events))
	org := miroRef{ID: p.OrgName, Name: p.OrgName, Type: "organization"}
	for _, ev := range events {
		e, err := veritrail.ParseEnvelope(ev.Envelope)
		if err != nil {
			return nil, err
		}
		category, event, _ := strings.Cut(e.Type, ".")
		l := miroLog{
			ID: e.ID, Type: "event", Event: event, Category: category,
			CreatedAt: e.Time.UTC().Format(miroTimeLayout),
			CreatedBy: toMiroActor(e.Actor), Object: miroTarget(e.Target),
			Context: miroContext{Organization: org},
		}
		if c := e.Context; c != nil {
			l.Context.IP = nullable(c.IP)
			if c.TeamID != "" {
				l.Context.Team = &miroRef{ID: c.TeamID, Type: "team"}
			}
		}
		if len(ev.Content) > 0 {
			var members map[string]json.RawMessage
			if err := json.Unmarshal(ev.Content, &members); err != nil {
				return nil, err
			}
			l.Details = ev.Content
			if d, ok := members["details"]; ok {
				l.Details = d
			}
		}
		out = append(out, l)
	}
	return out, nil
}

// toMiroAILog converts a stored ai.* event to an AI interaction log item.
// The feature and message id live in the content, so readers without
// content access get neither (messageId falls back to the event id).
func toMiroAILog(ev veritrail.StoredEvent) (miroAILog, error) {
	e, err := veritrail.ParseEnvelope(ev.Envelope)
	if err != nil {
		return miroAILog{}, err
	}
	l := miroAILog{
		ID: e.ID, CreatedAt: e.Time.UTC().Format(miroTimeLayout), StoredAt: e.ReceivedAt.UTC().Format(miroTimeLayout),
		SessionID: nullable(e.SessionID), MessageID: e.ID, Object: miroAITarget(e.Target), Actor: toMiroActor(e.Actor),
		LogType: strings.TrimPrefix(e.Type, "ai."),
	}
	if len(ev.Content) > 0 {
		var members map[string]json.RawMessage
		if err := json.Unmarshal(ev.Content, &members); err != nil {
			return miroAILog{}, err
		}
		var s string
		if json.Unmarshal(members["feature"], &s) == nil && s != "" {
			l.AIFeatureName = nullable(s)
			delete(members, "feature")
		}
		if json.Unmarshal(members["message_id"], &s) == nil && s != "" {
			l.MessageID = s
			delete(members, "message_id")
		}
		if len(members) > 0 {
			if l.Details, err = json.Marshal(members); err != nil {
				return miroAILog{}, err
			}
		}
	}
	return l, nil
}

// miroTarget is Miro's object: the target's id and name; nil (null) when
// the event has no target.
func miroTarget(t *veritrail.Target) *miroObject {
	if t == nil || (t.ID == "" && t.Name == "") {
		return nil
	}
	return &miroObject{ID: nullable(t.ID), Name: nullable(t.Name)}
}

// miroAITarget is the object of an AI interaction log: miroTarget with the
// target's type.
func miroAITarget(t *veritrail.Target) *miroAIObject {
	o := miroTarget(t)
	if o == nil {
		return nil
	}
	return &miroAIObject{ID: o.ID, Type: nullable(t.Type), Name: o.Name}
}

// miroQueryDetails is the audit.query record of a Miro-compatible read:
// the native record's parameters and result count, and which endpoint.
func miroQueryDetails(r *http.Request, results int) map[string]any {
	d := queryDetails(r, results)
	d["endpoint"] = r.URL.Path
	return d
}
