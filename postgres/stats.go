package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// Stats implements veritrail.StatsStore in one statement: the query's
// conditions (as for a list, so the same indexes serve it), grouped by
// GROUPING SETS into the bars and each top field's values, each field's
// values ranked in the database so only the top ones come back.
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
	q.Since, q.Until = st.Since, st.Until
	w, err := newWhere(org, &q)
	if err != nil || w.none {
		return st, err
	}
	// The inner select names the top fields' columns c0, c1, …
	inner := []string{"(e.time_ns - " + w.arg(st.Start.UnixNano()) + "::bigint) / " + w.arg(int64(st.Interval)) + "::bigint AS bar"}
	sets, grouped, names := []string{"(bar)"}, []string{"bar"}, []string{}
	for i, f := range sq.Top {
		col := column(f)
		if col == "" {
			return nil, veritrail.Errorf(veritrail.EInvalid, "field %s cannot be counted", f)
		}
		c := fmt.Sprintf("c%d", i)
		inner = append(inner, "e."+col+" AS "+c)
		sets, grouped, names = append(sets, "("+c+")"), append(grouped, c), append(names, c)
	}
	key := "NULL::bytea"
	if len(names) > 0 {
		key = "coalesce(" + strings.Join(names, ", ") + ")"
	}
	limit := sq.TopLimit
	if limit <= 0 {
		limit = veritrail.DefaultTopLimit
	}
	// GROUPING(bar, c0, c1, …) sets a bit per column left out of a row's
	// grouping set, bar's the highest: the bars' rows leave out every cI.
	barSet := 1<<len(names) - 1
	sql := fmt.Sprintf(`WITH g AS (
		SELECT GROUPING(%s) AS set, bar, %s AS key, count(*) AS n
		FROM (SELECT %s FROM events e WHERE %s) e
		GROUP BY GROUPING SETS (%s))
	SELECT set, bar, key, n FROM (
		SELECT g.*, row_number() OVER (PARTITION BY set ORDER BY key IS NULL, n DESC, key) AS r FROM g) x
	WHERE set = %d OR (key IS NOT NULL AND r <= %d)`,
		strings.Join(grouped, ", "), key, strings.Join(inner, ", "), strings.Join(w.conds, " AND "),
		strings.Join(sets, ", "), barSet, limit)
	rows, err := s.pool.Query(ctx, sql, w.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	counts := make([]map[string]int64, len(names))
	for i := range counts {
		counts[i] = map[string]int64{}
	}
	for rows.Next() {
		var set int
		var b *int64
		var k []byte
		var n int64
		if err := rows.Scan(&set, &b, &k, &n); err != nil {
			return nil, err
		}
		if set == barSet {
			if b != nil && *b >= 0 && *b < int64(len(st.Counts)) {
				st.Counts[*b] += n
				st.Total += n
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
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, f := range sq.Top {
		st.SetTop(f, counts[i], limit)
	}
	return st, nil
}
