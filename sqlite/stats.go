package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// Stats implements veritrail.StatsStore from the search index alone: per
// bucket overlapping the window, the filters' postings give the matching
// offsets (as for a query), the bucket's times put them in bars, and the
// postings of each top field, intersected with them, count its values. No
// envelope is read. A bucket wholly inside the window with no filter
// counts its postings' lengths without intersecting.
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
	e.since, e.until = st.Since.UnixNano(), st.Until.UnixNano()
	buckets, err := e.buckets()
	if err != nil {
		return nil, err
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
	hit := make([]bool, 1<<s.shift)
	for _, b := range buckets {
		set, all, err := e.match(b)
		if err != nil {
			return nil, err
		}
		if !all && len(set) == 0 {
			continue
		}
		data, err := e.bucketTimes(b)
		if err != nil {
			return nil, err
		}
		clear(hit)
		n := int64(0)
		visit := func(off uint32) {
			if int(off) >= len(data.times) || data.dead[off] {
				return
			}
			if bar := st.Bar(data.times[off]); bar >= 0 {
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
		if n == 0 {
			continue
		}
		if len(sq.Top) > 0 {
			if err := e.countKeys(b.num, fields, hit, n == int64(len(data.times)), counts); err != nil {
				return nil, err
			}
		}
	}
	for _, f := range sq.Top {
		st.SetTop(f, counts[f], sq.TopLimit)
	}
	return st, nil
}

// countKeys adds to counts[field], per key of each field in the bucket, how
// many of its offsets are hit (every one, when whole): one statement for
// every field.
func (e *queryExec) countKeys(bucket int64, fields []any, hit []bool, whole bool, counts []map[string]int64) error {
	args := append([]any{e.org, bucket}, fields...)
	rows, err := e.conn.QueryContext(e.ctx, `SELECT field, key, list FROM postings WHERE org_id = ? AND bucket = ? AND field IN (?`+
		strings.Repeat(", ?", len(fields)-1)+`)`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var field int
	var key, list []byte
	var offs []uint32
	for rows.Next() {
		if err := rows.Scan(&field, &key, &list); err != nil {
			return err
		}
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
	}
	return rows.Err()
}
