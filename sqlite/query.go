package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/statcol"
)

type bucketRow struct {
	num        int64
	minT, maxT int64
	count      int64
}

// cand is a matching event's position.
type cand struct {
	t   int64
	seq int64
}

// Query implements veritrail.EventStore.
//
// The plan: list the buckets whose time range overlaps the query window (in
// the order of the results: newest max_time first for desc, oldest min_time
// first for asc, seq for polling); in each, intersect the posting lists of
// the filters (and the full-text matches), look up the times of the
// survivors, and keep the best limit+1. Buckets are visited until the next
// one cannot hold anything better than what is kept. Everything is read in
// one snapshot, so a page is consistent however commits interleave.
func (s *Store) Query(ctx context.Context, org int64, q *veritrail.Query) (*veritrail.Page, error) {
	start := time.Now()
	defer func() { s.obs.QueryDone("list", time.Since(start)) }()

	limit := q.Limit
	if limit <= 0 {
		limit = veritrail.DefaultLimit
	}
	limit = min(limit, veritrail.MaxLimit)

	e, err := s.beginQuery(ctx, org, q)
	if err != nil {
		return nil, err
	}
	defer e.end()

	buckets, err := e.buckets()
	if err != nil {
		return nil, err
	}
	// best holds the best limit+1 matches so far, in result order.
	var best []cand
	for _, b := range buckets {
		var bound *cand
		if len(best) > limit {
			kth := best[limit]
			if q.Order == veritrail.OrderSeq ||
				(q.Order == veritrail.OrderDesc && b.maxT < kth.t) ||
				(q.Order == veritrail.OrderAsc && b.minT > kth.t) {
				break
			}
			bound = &kth
		}
		got, err := e.bucket(b, bound)
		if err != nil {
			return nil, err
		}
		if len(got) == 0 {
			continue
		}
		best = keepBest(append(best, got...), limit+1, e.compare)
	}
	cands := best

	page := &veritrail.Page{}
	more := len(cands) > limit
	if more {
		cands = cands[:limit]
	}
	if page.Events, err = e.loadPage(cands); err != nil {
		return nil, err
	}
	fp := q.Fingerprint()
	switch {
	case len(cands) > 0 && (more || q.Order == veritrail.OrderSeq):
		last := cands[len(cands)-1]
		page.Next = &veritrail.Cursor{Order: q.Order, TimeNS: last.t, Seq: last.seq, Fingerprint: fp}
	case q.Order == veritrail.OrderSeq:
		// Nothing new: the poller keeps its place (the same cursor).
		page.Next = &veritrail.Cursor{Order: q.Order, Seq: -1, Fingerprint: fp}
		if q.After != nil {
			c := *q.After
			page.Next = &c
		}
	}
	return page, nil
}

// beginQuery opens the snapshot that a query (or stats) reads; the caller
// MUST call end.
func (s *Store) beginQuery(ctx context.Context, org int64, q *veritrail.Query) (*queryExec, error) {
	// Before the snapshot begins: see statcol.Cache.Put.
	gen, colGen := s.times.Generation(), s.columns.Generation()
	conn, err := s.rdb.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		conn.Close()
		return nil, err
	}
	e := &queryExec{s: s, ctx: ctx, conn: conn, pc: &preparedConn{conn: conn}, org: org, q: q, cacheGen: gen, colGen: colGen, filters: selectiveFirst(q.Filters)}
	// The first read: it begins the snapshot.
	if e.tail, err = s.readTail(ctx, conn, org); err != nil {
		e.end()
		return nil, err
	}
	e.since, e.until = int64(math.MinInt64), int64(math.MaxInt64)
	if !q.Since.IsZero() {
		e.since = q.Since.UnixNano()
	}
	if !q.Until.IsZero() {
		e.until = q.Until.UnixNano()
	}
	e.seqCap = math.MaxInt64
	if q.Text != "" {
		if e.textExpr, err = ftsExpr(q.Text, q.TextInContent); err == nil {
			// Full text trails the commit: never page a poller past it.
			e.seqCap, err = s.fts.indexed(ctx, org)
		}
		if err != nil {
			e.end()
			return nil, err
		}
	}
	return e, nil
}

// end closes the query's snapshot.
func (e *queryExec) end() {
	e.pc.close()
	e.conn.ExecContext(context.Background(), `ROLLBACK`)
	e.conn.Close()
}

// queryExec is the state of one query.
type queryExec struct {
	s            *Store
	ctx          context.Context
	conn         *sql.Conn
	pc           *preparedConn // conn, for the statements run per bucket
	org          int64
	q            *veritrail.Query
	since, until int64
	textExpr     string
	seqCap       int64              // seqs at or past this are not full-text indexed yet
	cacheGen     uint64             // the times cache's generation before the snapshot
	colGen       uint64             // the columns cache's
	filters      []veritrail.Filter // the query's, selecting ones first
	tail         *tailView          // the index entries the snapshot's postings rows lack
}

// selectiveFirst orders filters so that those selecting values come
// before those that only exclude: an exclusion then narrows a set instead
// of starting from the whole bucket.
func selectiveFirst(fs []veritrail.Filter) []veritrail.Filter {
	out := slices.Clone(fs)
	slices.SortStableFunc(out, func(a, b veritrail.Filter) int {
		return cmpBool(onlyExcludes(a), onlyExcludes(b))
	})
	return out
}

func onlyExcludes(f veritrail.Filter) bool {
	return len(f.Ranges) == 0 && len(f.Exclude) > 0 && f.Field != veritrail.FieldClass
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func (e *queryExec) compare(a, b cand) int {
	switch e.q.Order {
	case veritrail.OrderAsc:
		if a.t != b.t {
			return cmp.Compare(a.t, b.t)
		}
		return cmp.Compare(a.seq, b.seq)
	case veritrail.OrderSeq:
		return cmp.Compare(a.seq, b.seq)
	}
	if a.t != b.t {
		return cmp.Compare(b.t, a.t)
	}
	return cmp.Compare(b.seq, a.seq)
}

// after reports whether c comes after the query's cursor.
func (e *queryExec) after(c cand) bool {
	cur := e.q.After
	if cur == nil {
		return true
	}
	switch e.q.Order {
	case veritrail.OrderAsc:
		return c.t > cur.TimeNS || (c.t == cur.TimeNS && c.seq > cur.Seq)
	case veritrail.OrderSeq:
		return c.seq > cur.Seq
	}
	return c.t < cur.TimeNS || (c.t == cur.TimeNS && c.seq < cur.Seq)
}

// buckets lists the candidate buckets in visiting order.
func (e *queryExec) buckets() ([]bucketRow, error) {
	var query string
	args := []any{e.org, e.since, e.until}
	cur := e.q.After
	switch e.q.Order {
	case veritrail.OrderDesc:
		query = `SELECT bucket, min_time, max_time, count FROM buckets
			WHERE org_id = ? AND max_time >= ? AND min_time < ? AND min_time <= ? ORDER BY max_time DESC, bucket DESC`
		args = append(args, int64(math.MaxInt64))
		if cur != nil {
			args[3] = cur.TimeNS
		}
	case veritrail.OrderAsc:
		query = `SELECT bucket, min_time, max_time, count FROM buckets
			WHERE org_id = ? AND max_time >= ? AND min_time < ? AND max_time >= ? ORDER BY min_time ASC, bucket ASC`
		args = append(args, int64(math.MinInt64))
		if cur != nil {
			args[3] = cur.TimeNS
		}
	default:
		query = `SELECT bucket, min_time, max_time, count FROM buckets
			WHERE org_id = ? AND max_time >= ? AND min_time < ? AND bucket >= ? AND bucket <= ? ORDER BY bucket ASC`
		first := int64(0)
		if cur != nil {
			first = (cur.Seq + 1) >> e.s.shift
		}
		args = append(args, first, e.seqCap>>e.s.shift)
	}
	rows, err := e.conn.QueryContext(e.ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []bucketRow
	for rows.Next() {
		var b bucketRow
		if err := rows.Scan(&b.num, &b.minT, &b.maxT, &b.count); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// bucket returns the matches in one bucket that sort before bound (all of
// them if bound is nil), in no particular order.
func (e *queryExec) bucket(b bucketRow, bound *cand) ([]cand, error) {
	set, all, err := e.match(b)
	if err != nil || (!all && len(set) == 0) {
		return nil, err
	}
	data, err := e.bucketTimes(b)
	if err != nil {
		return nil, err
	}
	times := data.times
	base := b.num << e.s.shift
	var out []cand
	consider := func(off uint32) {
		if int(off) >= len(times) || data.dead[off] {
			return
		}
		c := cand{t: times[off], seq: base + int64(off)}
		if c.t >= e.since && c.t < e.until && e.after(c) && (bound == nil || e.compare(c, *bound) < 0) {
			out = append(out, c)
		}
	}
	if all {
		for off := range times {
			consider(uint32(off))
		}
	} else {
		for _, off := range set {
			consider(off)
		}
	}
	return out, nil
}

// match returns the offsets, ascending, in bucket b that pass the query's
// filters and text (not its window, cursor or tombstones), or all == true
// when the query has neither filters nor text.
func (e *queryExec) match(b bucketRow) (set []uint32, all bool, err error) {
	all = true
	for _, f := range e.filters {
		if f.Field == veritrail.FieldClass {
			pass, err := e.classPostings(b, &f)
			if err != nil {
				return nil, false, err
			}
			set, all = narrow(set, all, pass), false
			if len(set) == 0 {
				return nil, false, nil
			}
			continue
		}
		if len(f.Ranges) == 0 && len(f.Exclude) == 0 {
			return nil, false, nil
		}
		var excluded []uint32
		if len(f.Exclude) > 0 {
			l, err := e.postings(b, f.Field, f.Exclude)
			if err != nil {
				return nil, false, err
			}
			excluded = l
		}
		if len(f.Ranges) == 0 {
			// Exclusions only: what is left of the set (filters with
			// values come first, so it is rarely the whole bucket).
			if all {
				set, all = complementSorted(excluded, b.count), false
			} else {
				set = subtractSorted(set, excluded)
			}
		} else {
			pass, err := e.postings(b, f.Field, f.Ranges)
			if err != nil {
				return nil, false, err
			}
			set, all = narrow(set, all, subtractSorted(pass, excluded)), false
		}
		if len(set) == 0 {
			return nil, false, nil
		}
	}

	base := b.num << e.s.shift
	if e.textExpr != "" {
		if base >= e.seqCap {
			return nil, false, nil
		}
		hits, err := e.s.fts.match(e.ctx, e.textExpr, rid(e.org, base), rid(e.org, min(base+1<<e.s.shift, e.seqCap)))
		if err != nil {
			return nil, false, err
		}
		offs := make([]uint32, len(hits))
		for i, h := range hits {
			offs[i] = uint32(h - rid(e.org, base))
		}
		if all {
			set, all = offs, false
		} else {
			set = intersectSorted(set, offs)
		}
	}
	return set, all, nil
}

// narrow intersects the set so far with pass (the set is pass itself when
// no filter narrowed it yet, all).
func narrow(set []uint32, all bool, pass []uint32) []uint32 {
	if all {
		return pass
	}
	return intersectSorted(set, pass)
}

// postings returns the offsets, ascending, in bucket b whose field key is
// in any of rs.
func (e *queryExec) postings(b bucketRow, f veritrail.Field, rs []veritrail.KeyRange) ([]uint32, error) {
	var lists [][]uint32
	for _, r := range rs {
		l, err := keyPostings(e.ctx, e.pc, e.org, b.num, f, r, e.tail)
		if err != nil {
			return nil, err
		}
		if len(l) > 0 {
			lists = append(lists, l)
		}
	}
	return unionSorted(lists), nil
}

// classPostings returns the offsets, ascending, in bucket b of the events
// whose class passes the class filter f: the postings of the bucket's
// types of those classes (a class is a set of types; there is no index of
// classes).
func (e *queryExec) classPostings(b bucketRow, f *veritrail.Filter) ([]uint32, error) {
	rows, err := e.pc.QueryContext(e.ctx, `SELECT key, list FROM postings
		WHERE org_id = ? AND bucket = ? AND field = ? ORDER BY key, run`, e.org, b.num, int(veritrail.FieldType))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []uint32
	keys := 0
	var key, list []byte
	lastKey, pass, first := "", false, true
	for rows.Next() {
		if err := rows.Scan(&key, &list); err != nil {
			return nil, err
		}
		if first || string(key) != lastKey {
			lastKey, first = string(key), false
			pass = f.MatchKey(veritrail.ClassKey(veritrail.ClassOf(lastKey)), true)
		}
		if !pass {
			continue
		}
		if out, err = decodeOffsets(out, list); err != nil {
			return nil, fmt.Errorf("bucket %d: %w", b.num, err)
		}
		keys++
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if keys > 1 {
		slices.Sort(out)
		out = slices.Compact(out)
	}
	// The tail's offsets all follow the rows'.
	return e.tail.appendOffsets(out, b.num, func(ie *veritrail.IndexEntry) bool {
		return ie.Field == veritrail.FieldType && f.MatchKey(veritrail.ClassKey(veritrail.ClassOf(ie.Key)), true)
	}), nil
}

// keyPostings returns the offsets, ascending, in a bucket whose field key
// is in r, from the postings rows and the reader's tail.
func keyPostings(ctx context.Context, db rowsQueryer, org, bucket int64, f veritrail.Field, r veritrail.KeyRange, tail *tailView) ([]uint32, error) {
	var rows *sql.Rows
	var err error
	if r.Hi == "" {
		rows, err = db.QueryContext(ctx, `SELECT list FROM postings
			WHERE org_id = ? AND bucket = ? AND field = ? AND key >= ? ORDER BY key, run`,
			org, bucket, int(f), []byte(r.Lo))
	} else {
		rows, err = db.QueryContext(ctx, `SELECT list FROM postings
			WHERE org_id = ? AND bucket = ? AND field = ? AND key >= ? AND key < ? ORDER BY key, run`,
			org, bucket, int(f), []byte(r.Lo), []byte(r.Hi))
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []uint32
	keys := 0
	var list []byte
	for rows.Next() {
		if err := rows.Scan(&list); err != nil {
			return nil, err
		}
		if out, err = decodeOffsets(out, list); err != nil {
			return nil, fmt.Errorf("bucket %d: %w", bucket, err)
		}
		keys++
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if keys > 1 {
		// Several keys or runs: restore ascending order.
		slices.Sort(out)
		out = slices.Compact(out)
	}
	// The tail's offsets all follow the rows'.
	return tail.appendOffsets(out, bucket, func(ie *veritrail.IndexEntry) bool {
		return ie.Field == f && inRange(ie.Key, r)
	}), nil
}

// bucketData is what a query needs of a bucket besides postings: the time
// of every offset, and the offsets whose envelopes retention removed.
type bucketData struct {
	times []int64
	dead  map[uint32]bool
}

// bucketTimes returns a bucket's data. It is shared with the cache and must
// not be modified.
func (e *queryExec) bucketTimes(b bucketRow) (*bucketData, error) {
	k := statcol.Key{Org: e.org, Bucket: b.num, Field: timesField}
	if d, _ := e.s.times.Get(k, b.count).(*bucketData); d != nil {
		return d, nil
	}
	d, err := loadBucketData(e.ctx, e.pc, e.org, b.num, b.count, e.tail)
	if err != nil {
		return nil, err
	}
	e.s.times.Put(k, b.count, d, 8*len(d.times)+16*len(d.dead), e.cacheGen)
	return d, nil
}

type rowsQueryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// preparedConn runs queries on one connection, preparing each text once:
// a query or stats runs the same few statements for every bucket, and
// preparing one costs as much as running it. Not for concurrent use.
type preparedConn struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
}

func (p *preparedConn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st := p.stmts[query]
	if st == nil {
		var err error
		if st, err = p.conn.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		if p.stmts == nil {
			p.stmts = map[string]*sql.Stmt{}
		}
		p.stmts[query] = st
	}
	return st.QueryContext(ctx, args...)
}

func (p *preparedConn) close() {
	for _, st := range p.stmts {
		st.Close()
	}
	p.stmts = nil
}

// loadBucketData reads a bucket's times and tombstones, the times of its
// events in tail (the reader's; nil for none) after the rows'.
func loadBucketData(ctx context.Context, db rowsQueryer, org, bucket, count int64, tail *tailView) (*bucketData, error) {
	rows, err := db.QueryContext(ctx, `SELECT field, list FROM postings
		WHERE org_id = ? AND bucket = ? AND field IN (0, ?) ORDER BY field, run`, org, bucket, deadField)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	d := &bucketData{times: make([]int64, 0, count)}
	var field int
	var list []byte
	var dead []uint32
	for rows.Next() {
		if err := rows.Scan(&field, &list); err != nil {
			return nil, err
		}
		if field == deadField {
			if dead, err = decodeOffsets(dead, list); err != nil {
				return nil, fmt.Errorf("bucket %d: %w", bucket, err)
			}
			continue
		}
		if d.times, err = decodeTimes(d.times, list); err != nil {
			return nil, fmt.Errorf("bucket %d: %w", bucket, err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	d.times = tail.appendTimes(d.times, bucket)
	if int64(len(d.times)) != count {
		return nil, fmt.Errorf("sqlite: bucket %d of org %d has %d times for %d events", bucket, org, len(d.times), count)
	}
	if len(dead) > 0 {
		d.dead = make(map[uint32]bool, len(dead))
		for _, o := range dead {
			d.dead[o] = true
		}
	}
	return d, nil
}

// keepBest returns the k best of cs (by cmp), sorted.
func keepBest(cs []cand, k int, cmp func(a, b cand) int) []cand {
	if len(cs) > k {
		selectBest(cs, k, cmp)
		cs = cs[:k]
	}
	slices.SortFunc(cs, cmp)
	return cs
}

// selectBest reorders cs so that its first k elements are the k best
// (quickselect, median-of-three pivots).
func selectBest(cs []cand, k int, cmp func(a, b cand) int) {
	lo, hi := 0, len(cs)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if cmp(cs[mid], cs[lo]) < 0 {
			cs[mid], cs[lo] = cs[lo], cs[mid]
		}
		if cmp(cs[hi], cs[lo]) < 0 {
			cs[hi], cs[lo] = cs[lo], cs[hi]
		}
		if cmp(cs[hi], cs[mid]) < 0 {
			cs[hi], cs[mid] = cs[mid], cs[hi]
		}
		pivot := cs[mid]
		i, j := lo, hi
		for i <= j {
			for cmp(cs[i], pivot) < 0 {
				i++
			}
			for cmp(pivot, cs[j]) < 0 {
				j--
			}
			if i <= j {
				cs[i], cs[j] = cs[j], cs[i]
				i++
				j--
			}
		}
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			return
		}
	}
}

// loadPage reads the candidates' events in one statement (a range scan
// when they are dense, as in exports and polls; a list of keys otherwise),
// in the candidates' order, leaving out any that are gone.
func (e *queryExec) loadPage(cands []cand) ([]veritrail.StoredEvent, error) {
	out := make([]veritrail.StoredEvent, 0, len(cands))
	if len(cands) == 0 {
		return out, nil
	}
	lo, hi := cands[0].seq, cands[0].seq
	for _, c := range cands {
		lo, hi = min(lo, c.seq), max(hi, c.seq)
	}
	cols := `e.rid, e.envelope, NULL, NULL FROM events e`
	if e.q.WithContent {
		cols = `e.rid, e.envelope, c.salt, c.body FROM events e LEFT JOIN contents c ON c.rid = e.rid`
	}
	var rows *sql.Rows
	var err error
	if hi-lo < int64(2*len(cands)) {
		rows, err = e.conn.QueryContext(e.ctx, `SELECT `+cols+` WHERE e.rid BETWEEN ? AND ?`, rid(e.org, lo), rid(e.org, hi))
	} else {
		var b strings.Builder
		args := make([]any, len(cands))
		b.WriteString(`SELECT ` + cols + ` WHERE e.rid IN (`)
		for i, c := range cands {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('?')
			args[i] = rid(e.org, c.seq)
		}
		b.WriteByte(')')
		rows, err = e.conn.QueryContext(e.ctx, b.String(), args...)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	want := make(map[int64]int, len(cands)) // seq -> position
	for i, c := range cands {
		want[c.seq] = i
	}
	// Scanned as sql.RawBytes and copied into an arena shared by the
	// page's events: a row costs the driver's one copy and a share of a
	// block, where scanning into []byte cost a second copy and an
	// allocation per column. got is by candidate; a gone one has no
	// envelope (never empty when stored).
	got := make([]veritrail.StoredEvent, len(cands))
	rowBytes := arena{blockSize: 32 << 10}
	keep := func(b sql.RawBytes) []byte {
		if b == nil {
			return nil // NULL: no content
		}
		return rowBytes.copy(b)
	}
	var env, salt, content sql.RawBytes
	for rows.Next() {
		var r int64
		if err := rows.Scan(&r, &env, &salt, &content); err != nil {
			return nil, err
		}
		seq := r - rid(e.org, 0)
		if i, ok := want[seq]; ok {
			got[i] = veritrail.StoredEvent{Seq: seq, Envelope: keep(env), Salt: keep(salt), Content: keep(content)}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, ev := range got {
		if ev.Envelope != nil {
			out = append(out, ev)
		}
	}
	return out, nil
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func loadEvent(ctx context.Context, db queryer, org, seq int64, withContent bool) (*veritrail.StoredEvent, error) {
	ev := &veritrail.StoredEvent{Seq: seq}
	var err error
	if withContent {
		err = db.QueryRowContext(ctx, `SELECT e.envelope, c.salt, c.body FROM events e
			LEFT JOIN contents c ON c.rid = e.rid WHERE e.rid = ?`, rid(org, seq)).Scan(&ev.Envelope, &ev.Salt, &ev.Content)
	} else {
		err = db.QueryRowContext(ctx, `SELECT envelope FROM events WHERE rid = ?`, rid(org, seq)).Scan(&ev.Envelope)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ev, nil
}

// EventByID implements veritrail.EventStore.
func (s *Store) EventByID(ctx context.Context, org int64, id string, withContent bool) (*veritrail.StoredEvent, error) {
	start := time.Now()
	defer func() { s.obs.QueryDone("get", time.Since(start)) }()
	var seq int64
	err := s.rdb.QueryRowContext(ctx, `SELECT seq FROM event_ids WHERE org_id = ? AND id = ?`, org, id).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, veritrail.Errorf(veritrail.ENotFound, "event %q not found", id)
	}
	if err != nil {
		return nil, err
	}
	ev, err := loadEvent(ctx, s.rdb, org, seq, withContent)
	if err != nil {
		return nil, err
	}
	if ev == nil {
		return nil, veritrail.Errorf(veritrail.ENotFound, "event %q not found", id)
	}
	return ev, nil
}
