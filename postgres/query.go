package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	veritrail "github.com/veritrail/veritrail"
)

// Query implements veritrail.EventStore: one statement, keyset paging on
// (time_ns, seq) or seq, every filter a condition on an index-key column.
//
// Paging in seq order never skips an event: a transaction holding the log
// head lock commits seqs in order, so every snapshot sees a gap-free prefix.
func (s *Store) Query(ctx context.Context, org int64, q *veritrail.Query) (*veritrail.Page, error) {
	start := time.Now()
	defer func() { s.obs.QueryDone("list", time.Since(start)) }()
	limit := q.Limit
	if limit <= 0 {
		limit = veritrail.DefaultLimit
	}
	limit = min(limit, veritrail.MaxLimit)

	w, err := s.newWhere(ctx, org, q)
	if err != nil {
		return nil, err
	}
	if w.none {
		return &veritrail.Page{Next: emptyNext(q)}, nil
	}
	where, arg, args := w.conds, w.arg, &w.args
	var order string
	switch q.Order {
	case veritrail.OrderSeq:
		order = "e.seq"
		if q.After != nil && q.After.Seq >= 0 {
			where = append(where, "e.seq > "+arg(q.After.Seq))
		}
	case veritrail.OrderAsc:
		order = "e.time_ns, e.seq"
		if q.After != nil {
			where = append(where, "(e.time_ns, e.seq) > ("+arg(q.After.TimeNS)+", "+arg(q.After.Seq)+")")
		}
	default:
		order = "e.time_ns DESC, e.seq DESC"
		if q.After != nil {
			where = append(where, "(e.time_ns, e.seq) < ("+arg(q.After.TimeNS)+", "+arg(q.After.Seq)+")")
		}
	}
	cols := "e.seq, e.time_ns, e.envelope, NULL::bytea, NULL::bytea FROM events e"
	if q.WithContent {
		cols = "e.seq, e.time_ns, e.envelope, c.salt, c.body FROM events e LEFT JOIN contents c ON c.org_id = e.org_id AND c.time_ns = e.time_ns AND c.seq = e.seq"
	}
	sql := "SELECT " + cols + " WHERE " + strings.Join(where, " AND ") + " ORDER BY " + order + " LIMIT " + arg(limit+1)
	rows, err := s.pool.Query(ctx, sql, *args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	page := &veritrail.Page{Events: make([]veritrail.StoredEvent, 0, min(limit, 128))}
	more := false
	for rows.Next() {
		if len(page.Events) == limit {
			more = true
			break
		}
		var ev veritrail.StoredEvent
		if err := rows.Scan(&ev.Seq, &ev.TimeNS, &ev.Envelope, &ev.Salt, &ev.Content); err != nil {
			return nil, err
		}
		page.Events = append(page.Events, ev)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	fp := q.Fingerprint()
	switch {
	case len(page.Events) > 0 && (more || q.Order == veritrail.OrderSeq):
		last := page.Events[len(page.Events)-1]
		page.Next = &veritrail.Cursor{Order: q.Order, TimeNS: last.TimeNS, Seq: last.Seq, Fingerprint: fp}
	case q.Order == veritrail.OrderSeq:
		page.Next = emptyNext(q)
	}
	return page, nil
}

// whereClause is the condition of a query's window, filters and text on
// events e, with its parameters.
type whereClause struct {
	conds []string
	args  []any
	none  bool // nothing can match
}

func (w *whereClause) arg(v any) string {
	w.args = append(w.args, v)
	return fmt.Sprintf("$%d", len(w.args))
}

// newWhere builds the condition of q in org (reading the organization's
// types for a class filter).
func (s *Store) newWhere(ctx context.Context, org int64, q *veritrail.Query) (*whereClause, error) {
	w := &whereClause{conds: []string{"e.org_id = $1"}, args: []any{org}}
	if !q.Since.IsZero() {
		w.conds = append(w.conds, "e.time_ns >= "+w.arg(q.Since.UnixNano()))
	}
	if !q.Until.IsZero() {
		w.conds = append(w.conds, "e.time_ns < "+w.arg(q.Until.UnixNano()))
	}
	for _, f := range q.Filters {
		if f.Field == veritrail.FieldClass {
			types, err := s.typesOfClass(ctx, org, q, &f)
			if err != nil {
				return nil, err
			}
			if len(types) == 0 {
				w.none = true
				return w, nil
			}
			w.conds = append(w.conds, "e.type = ANY("+w.arg(types)+"::bytea[])")
			continue
		}
		col := column(f.Field)
		if col == "" {
			return nil, veritrail.Errorf(veritrail.EInvalid, "field %s cannot be filtered", f.Field)
		}
		var or, not []string
		for _, r := range f.Ranges {
			or = append(or, rangeCond(col, r, w.arg))
		}
		for _, r := range f.Exclude {
			not = append(not, rangeCond(col, r, w.arg))
		}
		switch {
		case len(or) == 0 && len(not) == 0:
			w.none = true
			return w, nil
		case len(not) == 0:
			w.conds = append(w.conds, "("+strings.Join(or, " OR ")+")")
		case len(or) == 0:
			// An event without a value is not excluded.
			w.conds = append(w.conds, "(e."+col+" IS NULL OR NOT ("+strings.Join(not, " OR ")+"))")
		default:
			w.conds = append(w.conds, "("+strings.Join(or, " OR ")+") AND NOT ("+strings.Join(not, " OR ")+")")
		}
	}
	if q.Text != "" {
		tsq, err := tsquery(q.Text)
		if err != nil {
			return nil, err
		}
		if tsq == "" {
			w.none = true
			return w, nil
		}
		p := w.arg(tsq)
		// tsv_all (envelope and content words) is NULL for an event
		// without content, and events_tsv_env indexes only those events
		// (migration 0017): an event with content is found through
		// events_tsv_all. tsv_all's words include tsv_env's and a search
		// is a conjunction of words and prefixes, so a match in tsv_env
		// is one in tsv_all too; a reader without content:read has its
		// match checked against tsv_env on the row.
		if q.TextInContent {
			w.conds = append(w.conds, "((e.tsv_all IS NULL AND e.tsv_env @@ "+p+"::tsquery) OR e.tsv_all @@ "+p+"::tsquery)")
		} else {
			w.conds = append(w.conds, "((e.tsv_all IS NULL AND e.tsv_env @@ "+p+"::tsquery) OR (e.tsv_all @@ "+p+"::tsquery AND e.tsv_env @@ "+p+"::tsquery))")
		}
	}
	return w, nil
}

// typesOfClass returns the event types of org, within q's window, whose
// class passes the class filter f (a class is a set of types; there is no
// column of classes). The types are found by skipping along the index of
// types, one probe per distinct type, so the cost follows how many types
// there are, not how many events.
func (s *Store) typesOfClass(ctx context.Context, org int64, q *veritrail.Query, f *veritrail.Filter) ([][]byte, error) {
	since, until := int64(math.MinInt64), int64(math.MaxInt64)
	if !q.Since.IsZero() {
		since = q.Since.UnixNano()
	}
	if !q.Until.IsZero() {
		until = q.Until.UnixNano()
	}
	var out [][]byte
	last := []byte{} // not nil, which would be NULL
	for {
		var typ []byte
		err := s.pool.QueryRow(ctx, `SELECT type FROM events WHERE org_id = $1 AND type > $2 AND time_ns >= $3 AND time_ns < $4
			ORDER BY type LIMIT 1`, org, last, since, until).Scan(&typ)
		if errors.Is(err, pgx.ErrNoRows) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if f.MatchKey(veritrail.ClassKey(veritrail.ClassOf(string(typ))), true) {
			out = append(out, typ)
		}
		last = typ
	}
}

// rangeCond is the condition that the key column col of events e is in
// r; arg adds a parameter and returns its placeholder.
func rangeCond(col string, r veritrail.KeyRange, arg func(any) string) string {
	c := "e." + col
	switch {
	case r.Hi == r.Lo+"\x00":
		return c + " = " + arg([]byte(r.Lo))
	case r.Hi == "":
		return c + " >= " + arg([]byte(r.Lo))
	}
	return "(" + c + " >= " + arg([]byte(r.Lo)) + " AND " + c + " < " + arg([]byte(r.Hi)) + ")"
}

// emptyNext is the cursor of a polling page with nothing new: the poller
// keeps its place.
func emptyNext(q *veritrail.Query) *veritrail.Cursor {
	if q.Order != veritrail.OrderSeq {
		return nil
	}
	if q.After != nil {
		c := *q.After
		return &c
	}
	return &veritrail.Cursor{Order: q.Order, Seq: -1, Fingerprint: q.Fingerprint()}
}

// tsquery renders q as a tsquery literal: every word must match, a
// trailing * makes the last token of a word a prefix. Tokens are quoted,
// and hold only letters, numbers and private-use runes
// (veritrail.IsTokenRune), never the quote or backslash the literal would
// need escaped, so no user input is read as tsquery syntax. "" (no error)
// means nothing can match: a word longer than any lexeme.
func tsquery(q string) (string, error) {
	terms, err := veritrail.ParseText(q, 0)
	if err != nil {
		return "", err
	}
	parts := make([]string, 0, len(terms))
	for _, t := range terms {
		w := lowerWord([]byte(t.Token))
		if len(w) > maxLexeme {
			return "", nil
		}
		p := "'" + string(w) + "'"
		if t.Prefix {
			p += ":*"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " & "), nil
}

// EventByID implements veritrail.EventStore: one statement, from the id
// to the event (and its content), in one snapshot.
func (s *Store) EventByID(ctx context.Context, org int64, id string, withContent bool) (*veritrail.StoredEvent, error) {
	start := time.Now()
	defer func() { s.obs.QueryDone("get", time.Since(start)) }()
	sql := `SELECT e.seq, e.time_ns, e.envelope, NULL::bytea, NULL::bytea FROM event_ids i
		JOIN events e ON e.org_id = i.org_id AND e.seq = i.seq
		WHERE i.org_id = $1 AND i.id = $2`
	if withContent {
		sql = `SELECT e.seq, e.time_ns, e.envelope, c.salt, c.body FROM event_ids i
			JOIN events e ON e.org_id = i.org_id AND e.seq = i.seq
			LEFT JOIN contents c ON c.org_id = e.org_id AND c.time_ns = e.time_ns AND c.seq = e.seq
			WHERE i.org_id = $1 AND i.id = $2`
	}
	var ev veritrail.StoredEvent
	err := s.pool.QueryRow(ctx, sql, org, id).Scan(&ev.Seq, &ev.TimeNS, &ev.Envelope, &ev.Salt, &ev.Content)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, veritrail.Errorf(veritrail.ENotFound, "event %q not found", id)
	}
	if err != nil {
		return nil, err
	}
	return &ev, nil
}
