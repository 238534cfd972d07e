package http

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/admission"
)

// defaultTop are the fields whose top values stats count unless told.
var defaultTop = []veritrail.Field{veritrail.FieldActorID, veritrail.FieldType, veritrail.FieldOutcome,
	veritrail.FieldConnector, veritrail.FieldTool, veritrail.FieldDecision}

// parseStats reads GET /api/v1/events/stats: the list filters, plus
// interval (90s, 15m, 1h, 1d or auto), bars (about how many, when the
// interval is auto), top (fields, comma-separated; "" for none) and
// top_limit.
func parseStats(vals url.Values, p *veritrail.Principal) (*veritrail.StatsQuery, error) {
	sq := &veritrail.StatsQuery{Top: defaultTop}
	own := url.Values{}
	for _, k := range []string{"interval", "bars", "top", "top_limit"} {
		if vs, ok := vals[k]; ok {
			if len(vs) > 1 {
				return nil, veritrail.Errorf(veritrail.EInvalid, "parameter %s: give it once", k)
			}
			own.Set(k, vs[0])
		}
	}
	rest := url.Values{}
	for k, vs := range vals {
		switch k {
		case "interval", "bars", "top", "top_limit":
		case "order", "limit", "cursor":
			return nil, veritrail.Errorf(veritrail.EInvalid, "parameter %s: stats count every matching event; leave it out", k)
		default:
			rest[k] = vs
		}
	}
	q, err := veritrail.ParseQuery(rest, p.Can(veritrail.ScopeContentRead))
	if err != nil {
		return nil, err
	}
	sq.Query = *q
	if v := own.Get("interval"); v != "" && v != "auto" {
		d, err := parseInterval(v)
		if err != nil {
			return nil, err
		}
		sq.Interval = d
	}
	if v := own.Get("bars"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > veritrail.MaxStatsBars {
			return nil, veritrail.Errorf(veritrail.EInvalid, "parameter bars: must be 1 to %d, got %q", veritrail.MaxStatsBars, v)
		}
		sq.Bars = n
	}
	if own.Has("top") {
		sq.Top = nil
		seen := map[veritrail.Field]bool{}
		for _, name := range strings.Split(own.Get("top"), ",") {
			if name = strings.TrimSpace(name); name == "" {
				continue
			}
			f, ok := veritrail.FieldByName(name)
			if !ok || !slices.Contains(veritrail.Fields, f) { // class is a filter, not a counted field
				return nil, veritrail.Errorf(veritrail.EInvalid, "parameter top: %q is not a field; fields are: %s", name, fieldList())
			}
			if !seen[f] {
				seen[f] = true
				sq.Top = append(sq.Top, f)
			}
		}
	}
	if v := own.Get("top_limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > veritrail.MaxTopLimit {
			return nil, veritrail.Errorf(veritrail.EInvalid, "parameter top_limit: must be 1 to %d, got %q", veritrail.MaxTopLimit, v)
		}
		sq.TopLimit = n
	}
	return sq, nil
}

func fieldList() string {
	names := make([]string, len(veritrail.Fields))
	for i, f := range veritrail.Fields {
		names[i] = f.String()
	}
	return strings.Join(names, ", ")
}

// parseInterval reads a bar width: a Go duration of at least a second, or
// a number of days ("1d").
func parseInterval(v string) (time.Duration, error) {
	bad := veritrail.Errorf(veritrail.EInvalid, "parameter interval: must be auto or a width such as 30s, 15m, 1h or 1d, of at least 1s, got %q", v)
	var d time.Duration
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 1 || days > 3660 {
			return 0, bad
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, bad
		}
	}
	if d < time.Second {
		return 0, bad
	}
	return d, nil
}

// eventStats answers GET /api/v1/events/stats: how many events the filters
// match per interval of the window, and the top values of some fields. It
// is recorded like a list (audit.query, with "stats": true).
func (s *Server) eventStats(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	sq, err := parseStats(r.URL.Query(), p)
	if err != nil {
		return err
	}
	turn, err := s.cfg.Turns.Acquire(r.Context(), admission.Interactive)
	if err != nil {
		return err
	}
	st, err := s.store.Stats(r.Context(), p.OrgID, sq)
	turn.Release()
	if err != nil {
		return err
	}
	details := queryDetails(r, int(st.Total))
	details["stats"] = true
	if err := s.audit(r.Context(), r, p, "audit.query", nil, details); err != nil {
		return err
	}
	type bar struct {
		Start string `json:"start"`
		Count int64  `json:"count"`
	}
	type value struct {
		Value string `json:"value"`
		Count int64  `json:"count"`
	}
	bars := make([]bar, len(st.Counts))
	for i, n := range st.Counts {
		bars[i] = bar{st.Start.Add(time.Duration(i) * st.Interval).Format(time.RFC3339Nano), n}
	}
	top := map[string][]value{}
	for f, kcs := range st.Top {
		vs := make([]value, len(kcs))
		for i, kc := range kcs {
			vs[i] = value{veritrail.KeyValue(f, kc.Key), kc.Count}
		}
		top[f.String()] = vs
	}
	out := map[string]any{"total": st.Total, "buckets": bars, "top": top, "interval_seconds": int64(st.Interval / time.Second)}
	if !st.Since.IsZero() {
		out["since"], out["until"] = st.Since.Format(time.RFC3339Nano), st.Until.Format(time.RFC3339Nano)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
