package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// Stats implements veritrail.StatsStore. A query without filters or text
// whose top fields are all counted (veritrail.CountedFields) reads
// event_counts (counts.go) for the whole hours of its window and counts
// the events of the edges (less than an hour on each side) from the
// index; any other query counts every matching event from the index
// (countEvents). Both answer the same: the conformance suite compares them
// with counts made from the events.
func (s *Store) Stats(ctx context.Context, org int64, sq *veritrail.StatsQuery) (*veritrail.Stats, error) {
	start := time.Now()
	defer func() { s.obs.QueryDone("stats", time.Since(start)) }()
	q := sq.Query
	q.Order, q.After, q.Limit = veritrail.OrderAsc, nil, 0
	e, err := s.beginQuery(ctx, org, &q)
	if err != nil {
		return nil, err
	}
	defer e.end()

	var oldest, newest time.Time
	if q.Since.IsZero() || q.Until.IsZero() {
		var lo, hi sql.NullInt64
		if err := e.conn.QueryRowContext(ctx, `SELECT min(min_time), max(max_time) FROM buckets WHERE org_id = ?`, org).Scan(&lo, &hi); err != nil {
			return nil, err
		}
		if lo.Valid {
			oldest, newest = time.Unix(0, lo.Int64).UTC(), time.Unix(0, hi.Int64).UTC()
		}
	}
	st, err := sq.Plan(oldest, newest)
	if err != nil || len(st.Counts) == 0 {
		return st, err
	}
	// counts[f] holds the values of field f, for each field asked for.
	counts := make([]map[string]int64, 256)
	var fields []any
	for _, f := range sq.Top {
		if counts[f] == nil {
			counts[f] = map[string]int64{}
			fields = append(fields, int(f))
		}
	}
	since, until := st.Since.UnixNano(), st.Until.UnixNano()
	// The hours wholly inside the window, when the counts can serve them:
	// the events at the window's edges (less than an hour on each side)
	// are counted from the index.
	lo, hi := veritrail.CeilTo(since, int64(time.Hour)), veritrail.FloorTo(until, int64(time.Hour))
	counted := len(q.Filters) == 0 && q.Text == "" && st.Interval%time.Minute == 0 && lo < hi
	for _, f := range sq.Top {
		counted = counted && countedField(f)
	}
	if !counted {
		lo, hi = until, until
	}
	for _, edge := range [][2]int64{{since, lo}, {hi, until}} {
		if edge[0] < edge[1] {
			if err := e.countEvents(st, edge[0], edge[1], fields, counts); err != nil {
				return nil, err
			}
		}
	}
	if counted {
		if err := e.countedBars(st, lo, hi); err != nil {
			return nil, err
		}
		if err := e.countedValues(lo, hi, fields, counts); err != nil {
			return nil, err
		}
		st.Total = 0
		for _, n := range st.Counts {
			st.Total += n
		}
	}
	for _, f := range sq.Top {
		st.SetTop(f, counts[f], sq.TopLimit)
	}
	return st, nil
}

// slotRange is the slots [from, to) of one width (seconds) of event_counts.
type slotRange struct{ width, from, to int64 }

// slotRanges cuts [lo, hi), whole hours, into the days inside it and the
// hours around them; when days is false, into hours only.
func slotRanges(lo, hi int64, days bool) []slotRange {
	h, d := int64(time.Hour), int64(24*time.Hour)
	dlo, dhi := veritrail.CeilTo(lo, d), veritrail.FloorTo(hi, d)
	if !days || dlo >= dhi {
		return []slotRange{{hourSecs, lo / h, hi / h}}
	}
	out := []slotRange{{daySecs, dlo / d, dhi / d}}
	if lo < dlo {
		out = append(out, slotRange{hourSecs, lo / h, dlo / h})
	}
	if dhi < hi {
		out = append(out, slotRange{hourSecs, dhi / h, hi / h})
	}
	return out
}

// countedBars adds the counts of every event in [lo, hi), whole hours, to
// the bars, from the widest slots that each lie in one bar (bars start on
// multiples of the interval, a whole number of minutes).
func (e *queryExec) countedBars(st *veritrail.Stats, lo, hi int64) error {
	ranges := []slotRange{{minuteSecs, lo / int64(time.Minute), hi / int64(time.Minute)}}
	if st.Interval%time.Hour == 0 {
		ranges = slotRanges(lo, hi, st.Interval%(24*time.Hour) == 0)
	}
	for _, r := range ranges {
		rows, err := e.conn.QueryContext(e.ctx, `SELECT slot, n FROM event_counts
			WHERE org_id = ? AND field = ? AND width = ? AND slot >= ? AND slot < ?`, e.org, allEvents, r.width, r.from, r.to)
		if err != nil {
			return err
		}
		for rows.Next() {
			var slot, n int64
			if err := rows.Scan(&slot, &n); err != nil {
				rows.Close()
				return err
			}
			if bar := st.Bar(slot * r.width * int64(time.Second)); bar >= 0 {
				st.Counts[bar] += n
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// countedValues adds the counts of the values of fields (counted ones) in
// [lo, hi), whole hours, to counts.
func (e *queryExec) countedValues(lo, hi int64, fields []any, counts []map[string]int64) error {
	if len(fields) == 0 {
		return nil
	}
	for _, r := range slotRanges(lo, hi, true) {
		args := append([]any{e.org, r.width, r.from, r.to}, fields...)
		rows, err := e.conn.QueryContext(e.ctx, `SELECT field, key, sum(n) FROM event_counts
			WHERE org_id = ? AND width = ? AND slot >= ? AND slot < ? AND field IN (?`+strings.Repeat(", ?", len(fields)-1)+`)
			GROUP BY field, key`, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var field int
			var key []byte
			var n int64
			if err := rows.Scan(&field, &key, &n); err != nil {
				rows.Close()
				return err
			}
			if field >= 0 && field < len(counts) && counts[field] != nil {
				counts[field][string(key)] += n
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// countEvents counts the events of the query in [lo, hi) from the index
// into st and counts: per bucket overlapping the range, the filters'
// postings give the matching offsets (as for a query), the bucket's times
// put them in bars, and the postings of each top field, intersected with
// them, count its values. No envelope is read. A bucket wholly inside the
// range with no filter counts its postings' lengths without intersecting.
func (e *queryExec) countEvents(st *veritrail.Stats, lo, hi int64, fields []any, counts []map[string]int64) error {
	e.since, e.until = lo, hi
	buckets, err := e.buckets()
	if err != nil {
		return err
	}
	hit := make([]bool, 1<<e.s.shift)
	for _, b := range buckets {
		set, all, err := e.match(b)
		if err != nil {
			return err
		}
		if !all && len(set) == 0 {
			continue
		}
		data, err := e.bucketTimes(b)
		if err != nil {
			return err
		}
		clear(hit)
		n := int64(0)
		visit := func(off uint32) {
			if int(off) >= len(data.times) || data.dead[off] {
				return
			}
			t := data.times[off]
			if t < lo || t >= hi {
				return
			}
			if bar := st.Bar(t); bar >= 0 {
				st.Counts[bar]++
				hit[off] = true
				n++
			}
		}
		if all {
			for off := range data.times {
				visit(uint32(off))
			}
		} else {
			for _, off := range set {
				visit(off)
			}
		}
		st.Total += n
		if n == 0 || len(fields) == 0 {
			continue
		}
		if err := e.countKeys(b.num, fields, hit, n == int64(len(data.times)), counts); err != nil {
			return err
		}
	}
	return nil
}

// countKeys adds to counts[field], per key of each field in the bucket, how
// many of its offsets are hit (every one, when whole): one statement for
// every field.
func (e *queryExec) countKeys(bucket int64, fields []any, hit []bool, whole bool, counts []map[string]int64) error {
	var offs []uint32
	return fieldLists(e.ctx, e.conn, e.org, bucket, fields, func(field int, key, list []byte) (err error) {
		n := int64(0)
		if whole {
			// One varint per offset: count the bytes that end one.
			for _, c := range list {
				if c < 0x80 {
					n++
				}
			}
		} else {
			if offs, err = decodeOffsets(offs[:0], list); err != nil {
				return fmt.Errorf("bucket %d: %w", bucket, err)
			}
			for _, o := range offs {
				if int(o) < len(hit) && hit[o] {
					n++
				}
			}
		}
		if n > 0 && field >= 0 && field < len(counts) && counts[field] != nil {
			counts[field][string(key)] += n
		}
		return nil
	})
}

// fieldLists calls fn with every postings list of a bucket of the fields
// (ints), whatever its run.
func fieldLists(ctx context.Context, q rowsQueryer, org, bucket int64, fields []any, fn func(field int, key, list []byte) error) error {
	args := append([]any{org, bucket}, fields...)
	rows, err := q.QueryContext(ctx, `SELECT field, key, list FROM postings WHERE org_id = ? AND bucket = ? AND field IN (?`+
		strings.Repeat(", ?", len(fields)-1)+`)`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var field int
	var key, list []byte
	for rows.Next() {
		if err := rows.Scan(&field, &key, &list); err != nil {
			return err
		}
		if err := fn(field, key, list); err != nil {
			return err
		}
	}
	return rows.Err()
}
