package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/statcol"
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
	lo, hi, counted := sq.CountedHours(st)
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
// put them in bars, and each top field's column (cached, or built from the
// bucket's postings) gives their values (bucketCounter.count). No envelope
// is read.
//
// The full buckets are shared with a second reader on its own connection
// when the pool has one free (it is not waited for), so that stats use two
// cores. A full bucket's events are fixed: both snapshots read the same
// times and postings for it, unless a removal commits between them, which
// the times cache (bucketTimes) mixes in the same way for a query. The
// bucket still filling is counted on this connection, in its snapshot.
func (e *queryExec) countEvents(st *veritrail.Stats, lo, hi int64, fields []any, counts []map[string]int64) error {
	e.since, e.until = lo, hi
	buckets, err := e.buckets()
	if err != nil {
		return err
	}
	var full, other []bucketRow
	for _, b := range buckets {
		// Only buckets wholly below the postings frontier: the helper's
		// snapshot may have a later frontier than this one's tail.
		if b.count == 1<<e.s.shift && (b.num+1)<<e.s.shift <= e.tail.from {
			full = append(full, b)
		} else {
			other = append(other, b)
		}
	}
	// next hands out the full buckets to whichever reader is free.
	var next atomic.Int64
	take := func() (bucketRow, bool) {
		i := next.Add(1) - 1
		if i >= int64(len(full)) {
			return bucketRow{}, false
		}
		return full[i], true
	}
	var helper chan *bucketCounter
	stopWaiting := func() {}
	if len(full) >= 2 {
		var waitCtx context.Context
		waitCtx, stopWaiting = context.WithCancel(e.ctx)
		helper = make(chan *bucketCounter, 1)
		go func() { helper <- e.helpCount(waitCtx, st, lo, hi, fields, take) }()
	}
	main, err := e.newBucketCounter(e.conn, st, lo, hi, fields)
	if err == nil {
		for _, b := range other {
			if err = main.count(b); err != nil {
				break
			}
		}
		for b, ok := take(); ok && err == nil; b, ok = take() {
			err = main.count(b)
		}
		main.close()
	}
	if err != nil {
		next.Store(int64(len(full))) // the helper takes no more
	}
	stopWaiting()
	counters := []*bucketCounter{main}
	if helper != nil {
		h := <-helper
		if err == nil {
			err = h.err
		}
		counters = append(counters, h)
	}
	if err != nil {
		return err
	}
	for _, c := range counters {
		for i, n := range c.bars {
			st.Counts[i] += n
		}
		st.Total += c.total
		for f, m := range c.counts {
			for k, n := range m {
				counts[f][k] += *n
			}
		}
	}
	return nil
}

// helpCount counts the full buckets take hands out on a connection of its
// own, in a snapshot of its own, once one is free; when none is free
// before waitCtx ends (the main reader is done), it counts nothing.
func (e *queryExec) helpCount(waitCtx context.Context, st *veritrail.Stats, lo, hi int64, fields []any, take func() (bucketRow, bool)) *bucketCounter {
	c := &bucketCounter{}
	conn, err := e.s.rdb.Conn(waitCtx)
	if err != nil {
		if e.ctx.Err() != nil {
			c.err = e.ctx.Err()
		}
		return c
	}
	defer conn.Close()
	if _, err := conn.ExecContext(e.ctx, `BEGIN`); err != nil {
		c.err = err
		return c
	}
	defer conn.ExecContext(context.Background(), `ROLLBACK`)
	h := *e
	h.conn, h.pc = conn, &preparedConn{conn: conn}
	defer h.pc.close()
	if c, err = h.newBucketCounter(conn, st, lo, hi, fields); err != nil {
		return &bucketCounter{err: err}
	}
	defer c.close()
	for b, ok := take(); ok; b, ok = take() {
		if c.err = c.count(b); c.err != nil {
			break
		}
	}
	return c
}

// bucketCounter counts buckets on one connection into bars and values of
// its own, merged when every bucket is counted.
type bucketCounter struct {
	e      *queryExec
	st     *veritrail.Stats // the plan: bars and window
	lo, hi int64
	lists  *sql.Stmt // the postings lists of the top fields of a bucket
	args   []any     // lists' arguments, the bucket's second
	bars   []int64
	total  int64
	counts map[int]map[string]*int64 // per field, per key
	fields []any                     // the top fields
	hits   []uint32                  // the bucket's offsets counted
	tally  []int64                   // per key of a column
	err    error
}

func (e *queryExec) newBucketCounter(conn *sql.Conn, st *veritrail.Stats, lo, hi int64, fields []any) (*bucketCounter, error) {
	c := &bucketCounter{e: e, st: st, lo: lo, hi: hi, bars: make([]int64, len(st.Counts)),
		counts: map[int]map[string]*int64{}}
	if len(fields) > 0 {
		stmt, err := conn.PrepareContext(e.ctx, `SELECT field, key, list FROM postings
			WHERE org_id = ? AND bucket = ? AND field IN (?`+strings.Repeat(", ?", len(fields)-1)+`)`)
		if err != nil {
			return nil, err
		}
		c.lists = stmt
		c.args, c.fields = append([]any{e.org, 0}, fields...), fields
		for _, f := range fields {
			c.counts[f.(int)] = map[string]*int64{}
		}
	}
	return c, nil
}

func (c *bucketCounter) close() {
	if c.lists != nil {
		c.lists.Close()
	}
}

// count counts the events of bucket b that the query matches in [lo, hi).
func (c *bucketCounter) count(b bucketRow) error {
	e := c.e
	set, all, err := e.match(b)
	if err != nil || (!all && len(set) == 0) {
		return err
	}
	data, err := e.bucketTimes(b)
	if err != nil {
		return err
	}
	c.hits = c.hits[:0]
	visit := func(off uint32) {
		if int(off) >= len(data.times) || data.dead[off] {
			return
		}
		t := data.times[off]
		if t < c.lo || t >= c.hi {
			return
		}
		if bar := c.st.Bar(t); bar >= 0 {
			c.bars[bar]++
			c.hits = append(c.hits, off)
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
	c.total += int64(len(c.hits))
	if len(c.hits) == 0 || len(c.fields) == 0 {
		return nil
	}
	cols, err := c.columns(b)
	if err != nil {
		return err
	}
	whole := len(c.hits) == len(data.times)
	var rest []any // fields without a column
	for i, col := range cols {
		if !col.Ok() {
			rest = append(rest, c.fields[i])
			continue
		}
		c.countColumn(int(c.fields[i].(int)), col, whole)
	}
	if len(rest) > 0 {
		return c.countLists(b.num, rest, whole)
	}
	return nil
}

// countColumn adds the values of field f among the hits to the counts.
func (c *bucketCounter) countColumn(f int, col *statcol.Column, whole bool) {
	m := c.counts[f]
	c.tally = col.Count(c.hits, whole, c.tally, func(key string, n int64) {
		if p := m[key]; p != nil {
			*p += n
		} else {
			m[key] = &n
		}
	})
}

// countLists adds, per key of each of fields (top fields without a column
// in the bucket), how many of its offsets are hit (every one, when whole),
// from the postings.
func (c *bucketCounter) countLists(bucket int64, fields []any, whole bool) error {
	hit := make([]uint64, (1<<c.e.s.shift+63)/64)
	for _, off := range c.hits {
		hit[off>>6] |= 1 << (off & 63)
	}
	return fieldLists(c.e.ctx, c.e.pc, c.e.org, bucket, fields, c.e.tail, func(field int, key, list []byte) error {
		var n int64
		if whole {
			n = countOffsets(list)
		} else {
			var err error
			if n, err = countHits(list, hit); err != nil {
				return fmt.Errorf("bucket %d: %w", bucket, err)
			}
		}
		if m := c.counts[field]; n > 0 && m != nil {
			if p := m[string(key)]; p != nil {
				*p += n
			} else {
				m[string(key)] = &n
			}
		}
		return nil
	})
}

// The columns (statcol.Column) of a bucket give each offset's key of a
// field, as the bucket's postings give them. They are built from the
// postings the first time stats count a bucket, and cached (Store.columns,
// valid for the bucket's event count), so that counting a field's values
// among the matching events is one look-up per event instead of decoding
// all of the field's postings again. A field without a column in a bucket
// (several keys for an event, or too many keys) is counted from the
// postings (countLists).

// columns returns the columns of the top fields in bucket b, from the
// cache or built from the bucket's postings in this snapshot (all the
// missing ones in one statement).
func (c *bucketCounter) columns(b bucketRow) ([]*statcol.Column, error) {
	e := c.e
	cols := make([]*statcol.Column, len(c.fields))
	building := map[int]*statcol.Builder{}
	for i, f := range c.fields {
		k := statcol.Key{Org: e.org, Bucket: b.num, Field: veritrail.Field(f.(int))}
		if col, _ := e.s.columns.Get(k, b.count).(*statcol.Column); col != nil {
			cols[i] = col
		} else {
			building[f.(int)] = statcol.NewBuilder(int(b.count))
		}
	}
	if len(building) == 0 {
		return cols, nil
	}
	c.args[1] = b.num
	rows, err := c.lists.QueryContext(e.ctx, c.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var field int
	var key, list sql.RawBytes
	var offs []uint32
	for rows.Next() {
		if err := rows.Scan(&field, &key, &list); err != nil {
			return nil, err
		}
		if cb := building[field]; cb != nil && !cb.None() {
			if offs, err = addList(cb, key, list, offs); err != nil {
				return nil, fmt.Errorf("bucket %d: %w", b.num, err)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for k, offs := range e.tail.lists(b.num, c.fields) {
		cb := building[int(k.field)]
		if cb == nil || cb.None() {
			continue
		}
		i, ok := cb.Key([]byte(k.key))
		if !ok {
			continue
		}
		for _, off := range offs {
			if !cb.Set(off, i) {
				return nil, fmt.Errorf("bucket %d: %w", b.num, errCorruptPostings)
			}
			if cb.None() {
				break
			}
		}
	}
	for i, f := range c.fields {
		if cols[i] == nil {
			col := building[f.(int)].Column()
			e.s.columns.Put(statcol.Key{Org: e.org, Bucket: b.num, Field: veritrail.Field(f.(int))}, b.count, col, col.Size(), e.colGen)
			cols[i] = col
		}
	}
	return cols, nil
}

// addList gives the offsets of a postings list of key the key in the
// column cb builds; offs is scratch space, returned for reuse.
func addList(cb *statcol.Builder, key, list []byte, offs []uint32) ([]uint32, error) {
	i, ok := cb.Key(key)
	if !ok {
		return offs, nil
	}
	offs, err := decodeOffsets(offs[:0], list)
	if err != nil {
		return offs, err
	}
	for _, off := range offs {
		if !cb.Set(off, i) {
			return offs, errCorruptPostings
		}
		if cb.None() {
			break
		}
	}
	return offs, nil
}

// fieldLists calls fn with every postings list of a bucket of the fields
// (ints), whatever its run, then with the lists of the reader's tail.
func fieldLists(ctx context.Context, q rowsQueryer, org, bucket int64, fields []any, tail *tailView, fn func(field int, key, list []byte) error) error {
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
	if err := rows.Err(); err != nil {
		return err
	}
	var buf []byte
	for k, offs := range tail.lists(bucket, fields) {
		buf = appendOffsets(buf[:0], offs)
		if err := fn(int(k.field), []byte(k.key), buf); err != nil {
			return err
		}
	}
	return nil
}
