package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// Widths of the slots event_counts keeps (counts.go).
const (
	minuteNS = int64(time.Minute)
	hourNS   = int64(time.Hour)
)

// Stats implements veritrail.StatsStore. A query whose top fields are
// all counted counts from the columns this node keeps per hour
// (statcols.go), valid for each hour's count of changes read in the
// call's snapshot: filters on counted fields on the columns, other
// filters and text matched by PostgreSQL. A query of the whole log (no
// filter, no text) does so only when the hours' columns are in memory
// but for a few (columnsOf);
// else it reads event_counts, which the store keeps (counts.go): the
// minutes for the bars and the hours for the top values, and the events
// only at the window's edges (less than an hour on each side). Any other
// query runs one statement on the list's conditions (so the list's
// indexes serve it), grouped with GROUPING SETS into the bars and each
// field's values.
func (s *Store) Stats(ctx context.Context, org int64, sq *veritrail.StatsQuery) (*veritrail.Stats, error) {
	start := time.Now()
	defer func() { s.obs.QueryDone("stats", time.Since(start)) }()
	q := sq.Query
	var oldest, newest time.Time
	if q.Since.IsZero() || q.Until.IsZero() {
		var lo, hi *int64
		if err := s.pool.QueryRow(ctx, `SELECT min(time_ns), max(time_ns) FROM events WHERE org_id = $1`, org).Scan(&lo, &hi); err != nil {
			return nil, err
		}
		if lo != nil {
			oldest, newest = time.Unix(0, *lo).UTC(), time.Unix(0, *hi).UTC()
		}
	}
	st, err := sq.Plan(oldest, newest)
	if err != nil || len(st.Counts) == 0 {
		return st, err
	}
	limit := sq.TopLimit
	if limit <= 0 {
		limit = veritrail.DefaultTopLimit
	}
	counts := make([]map[string]int64, len(sq.Top))
	for i := range counts {
		counts[i] = map[string]int64{}
	}
	since, until := st.Since.UnixNano(), st.Until.UnixNano()
	// The hours wholly inside the window, when the counts can serve them.
	lo, hi, rollup := sq.CountedHours(st)
	q.Since, q.Until = st.Since, st.Until
	// The hours' columns serve any query, the whole log too when they are
	// in memory already but for a few hours (else event_counts serves it
	// at a cost that does not grow with the events).
	done, err := s.columnStats(ctx, org, &q, st, sq.Top, counts, rollup)
	if err != nil {
		return nil, err
	}
	switch {
	case done:
	case !rollup:
		if err := s.groupCounts(ctx, org, &q, st, sq.Top, limit, counts); err != nil {
			return nil, err
		}
	default:
		// The edges from the events, every value counted (limit 0): they
		// are added to the hours' counts before ranking.
		for _, edge := range [][2]int64{{since, lo}, {hi, until}} {
			if edge[0] >= edge[1] {
				continue
			}
			eq := q
			eq.Since, eq.Until = time.Unix(0, edge[0]), time.Unix(0, edge[1])
			if err := s.groupCounts(ctx, org, &eq, st, sq.Top, 0, counts); err != nil {
				return nil, err
			}
		}
		if err := s.countedBars(ctx, org, st, lo, hi); err != nil {
			return nil, err
		}
		if err := s.countedValues(ctx, org, sq.Top, lo, hi, counts); err != nil {
			return nil, err
		}
	}
	st.Total = 0
	for _, n := range st.Counts {
		st.Total += n
	}
	for i, f := range sq.Top {
		st.SetTop(f, counts[i], limit)
	}
	return st, nil
}

// countedBars adds the minutes of event_counts in [lo, hi) to the bars,
// summed into bars by the database. The interval is a whole number of
// minutes and bars start on multiples of it, so a minute lies in one bar.
func (s *Store) countedBars(ctx context.Context, org int64, st *veritrail.Stats, lo, hi int64) error {
	rows, err := s.pool.Query(ctx, `SELECT (slot * $4::bigint - $5::bigint) / $6::bigint, sum(n)::bigint FROM event_counts
		WHERE org_id = $1 AND field = 0 AND slot >= $2 AND slot < $3 GROUP BY 1`,
		org, lo/minuteNS, hi/minuteNS, minuteNS, st.Start.UnixNano(), int64(st.Interval))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var bar, n int64
		if err := rows.Scan(&bar, &n); err != nil {
			return err
		}
		if bar >= 0 && bar < int64(len(st.Counts)) {
			st.Counts[bar] += n
		}
	}
	return rows.Err()
}

// countedValues adds the hours of event_counts in [lo, hi) of the fields
// top to counts (one map per field of top), per value: one statement for
// every field.
func (s *Store) countedValues(ctx context.Context, org int64, top []veritrail.Field, lo, hi int64, counts []map[string]int64) error {
	if len(top) == 0 {
		return nil
	}
	fields := make([]int16, len(top))
	for i, f := range top {
		fields[i] = int16(f)
	}
	rows, err := s.pool.Query(ctx, `SELECT field, key, sum(n)::bigint FROM event_counts
		WHERE org_id = $1 AND field = ANY($2::smallint[]) AND slot >= $3 AND slot < $4 GROUP BY field, key HAVING sum(n) > 0`,
		org, fields, lo/hourNS, hi/hourNS)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var field int16
		var key []byte
		var n int64
		if err := rows.Scan(&field, &key, &n); err != nil {
			return err
		}
		for i, f := range top {
			if int16(f) == field {
				counts[i][string(key)] += n
			}
		}
	}
	return rows.Err()
}

// groupCounts counts the events q matches into st's bars and, per field
// of top, into counts: in one statement, grouped by GROUPING SETS into the
// bars and each field's values, each field's values ranked in the database
// so that only the limit best come back (every value when limit is 0).
func (s *Store) groupCounts(ctx context.Context, org int64, q *veritrail.Query, st *veritrail.Stats, top []veritrail.Field, limit int, counts []map[string]int64) error {
	w, err := s.newWhere(ctx, org, q)
	if err != nil || w.none {
		return err
	}
	// The inner select names the top fields' columns c0, c1, …
	inner := []string{"(e.time_ns - " + w.arg(st.Start.UnixNano()) + "::bigint) / " + w.arg(int64(st.Interval)) + "::bigint AS bar"}
	sets, grouped, names := []string{"(bar)"}, []string{"bar"}, []string{}
	for i, f := range top {
		col := column(f)
		if col == "" {
			return veritrail.Errorf(veritrail.EInvalid, "field %s cannot be counted", f)
		}
		c := fmt.Sprintf("c%d", i)
		inner = append(inner, "e."+col+" AS "+c)
		sets, grouped, names = append(sets, "("+c+")"), append(grouped, c), append(names, c)
	}
	key := "NULL::bytea"
	if len(names) > 0 {
		key = "coalesce(" + strings.Join(names, ", ") + ")"
	}
	// GROUPING(bar, c0, c1, …) sets a bit per column left out of a row's
	// grouping set, bar's the highest: the bars' rows leave out every cI.
	barSet := 1<<len(names) - 1
	keep := "key IS NOT NULL"
	if limit > 0 {
		keep += fmt.Sprintf(" AND r <= %d", limit)
	}
	sql := fmt.Sprintf(`WITH g AS (
		SELECT GROUPING(%s) AS set, bar, %s AS key, count(*) AS n
		FROM (SELECT %s FROM events e WHERE %s) e
		GROUP BY GROUPING SETS (%s))
	SELECT set, bar, key, n FROM (
		SELECT g.*, row_number() OVER (PARTITION BY set ORDER BY key IS NULL, n DESC, key) AS r FROM g) x
	WHERE set = %d OR (%s)`,
		strings.Join(grouped, ", "), key, strings.Join(inner, ", "), strings.Join(w.conds, " AND "),
		strings.Join(sets, ", "), barSet, keep)
	rows, err := s.pool.Query(ctx, sql, w.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var set int
		var b *int64
		var k []byte
		var n int64
		if err := rows.Scan(&set, &b, &k, &n); err != nil {
			return err
		}
		if set == barSet {
			if b != nil && *b >= 0 && *b < int64(len(st.Counts)) {
				st.Counts[*b] += n
			}
			continue
		}
		// The one column grouped is the one whose bit is clear.
		for i := range names {
			if set&(1<<(len(names)-1-i)) == 0 {
				counts[i][string(k)] += n
			}
		}
	}
	return rows.Err()
}
