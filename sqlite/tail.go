package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// The postings tail. A commit of a hundred events used to write one
// postings row per distinct (field, key) at its key's place in the open
// bucket's part of the postings B-tree: hundreds of dirtied leaf pages,
// half of the commit's CPU and four fifths of its bytes. Instead, per
// organization, the postings rows (times and keys) cover exactly the seqs
// below a durable frontier F (table postings_frontier); the events at
// F..head-1, the tail, are indexed in memory only (orgTail), and the
// writer writes the tail out as one run per key (as a commit of that size
// wrote before) and advances F in one transaction of its own:
//
//   - when the tail has reached tailIdleEvents events and the commit lane
//     has nothing waiting (writer.Idle, commitq.Idler), so that no
//     acknowledgement waits for the write-out (requests that arrive
//     during it wait for it, as they would for a commit);
//   - when the tail is older than tailMaxAge (idle organizations keep no
//     tail), and on Close;
//   - before every write job (retention, erasure), which rewrite postings.
//
// Only when the lane is never idle while the tail grows to tailFlushEvents
// (a saturated lane) does a commit write it out, in the commit's
// transaction: that bounds the tail's memory and the readers' scan of it.
//
// The bucket summaries (buckets) and the counts (event_counts) are still
// written by every commit: one row each, and readers list buckets from
// them. The tail is derived data: after a crash it is rebuilt from the
// stored events F..head-1 (scanTail), so nothing acknowledged is lost.
//
// Readers: a query, stats or retention plan begins its snapshot by
// reading F and the log head H (readTail) and takes the tail's entries for
// [F, H) from memory, or, when memory does not cover them (a flush or a
// commit raced it, or a store without a writer), from the events in its
// snapshot. Every reader of postings unions them (tailView).

// Tail limits; tests change them (export_test.go).
var (
	// tailIdleEvents is the tail size at which the idle lane writes it
	// out.
	tailIdleEvents = 2048
	// tailFlushEvents is the tail size at which a commit writes it out.
	tailFlushEvents = 4 * tailIdleEvents
	// tailMaxAge is how long a tail may wait for more events.
	tailMaxAge = 2 * time.Second
)

// tailEvent is one tail event's time and index keys. MUST NOT be modified
// once in an orgTail: readers share it without a lock.
type tailEvent struct {
	t    int64
	keys []veritrail.IndexEntry
}

// orgTail is the memory of one organization's tail: the events
// [from, from+len(evs)), with frontier (the durable F) in between. It keeps
// the events from the previous frontier on, so that a reader whose
// snapshot began before the last flush still finds its tail in memory.
// Only the writer changes it, under Store.tailMu; evs is only appended to,
// or replaced.
type orgTail struct {
	from     int64
	frontier int64
	evs      []tailEvent
	since    time.Time // when the oldest unflushed event was committed
}

// unflushed returns the events at and after the frontier.
func (t *orgTail) unflushed() []tailEvent { return t.evs[t.frontier-t.from:] }

// tailSet holds every organization's tail.
type tailSet struct {
	mu sync.Mutex
	m  map[int64]*orgTail
	// idleAt is the tail size the idle lane writes out (tailIdleEvents
	// when the store was opened); full holds the organizations whose tail
	// has reached it, so that the lane's check after each batch does not
	// visit every tail.
	idleAt int
	full   map[int64]bool
}

// put sets org's tail; ts.mu is held.
func (ts *tailSet) put(org int64, t *orgTail) {
	if ts.m == nil {
		ts.m, ts.full = map[int64]*orgTail{}, map[int64]bool{}
	}
	ts.m[org] = t
	if len(t.unflushed()) >= ts.idleAt {
		ts.full[org] = true
	} else {
		delete(ts.full, org)
	}
}

// set replaces org's tail (after a rebuild).
func (ts *tailSet) set(org int64, t *orgTail) {
	ts.mu.Lock()
	ts.put(org, t)
	ts.mu.Unlock()
}

// get returns org's tail (the writer's; nil if none).
func (ts *tailSet) get(org int64) *orgTail {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.m[org]
}

// committed records a committed batch of org: evs appended, and, when the
// batch wrote the tail out, the frontier moved to newFrontier.
func (ts *tailSet) committed(org int64, evs []tailEvent, flushed bool, newFrontier int64, now time.Time) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t := ts.m[org]
	if t == nil {
		return // rebuilt when the writer loads the log again
	}
	n := &orgTail{from: t.from, frontier: t.frontier, evs: append(t.evs, evs...), since: t.since}
	if flushed {
		// Keep from the old frontier on: readers of the snapshot before.
		n.evs = n.evs[t.frontier-t.from:]
		n.from, n.frontier, n.since = t.frontier, newFrontier, time.Time{}
		if n.frontier == n.from+int64(len(n.evs)) && len(n.evs) == 0 {
			n.evs = nil
		}
	}
	if len(n.unflushed()) > 0 && n.since.IsZero() {
		n.since = now
	}
	ts.put(org, n)
}

// stale lists the organizations whose tail waited longer than age.
func (ts *tailSet) stale(now time.Time, age time.Duration) []int64 {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var out []int64
	for org, t := range ts.m {
		if len(t.unflushed()) > 0 && now.Sub(t.since) >= age {
			out = append(out, org)
		}
	}
	return out
}

// ready returns an organization whose tail holds at least idleAt
// events, and whether there is one.
func (ts *tailSet) ready() (int64, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for org := range ts.full {
		return org, true
	}
	return 0, false
}

// withTail lists the organizations with a tail.
func (ts *tailSet) withTail() []int64 {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var out []int64
	for org, t := range ts.m {
		if len(t.unflushed()) > 0 {
			out = append(out, org)
		}
	}
	return out
}

// view returns the tail entries [from, to) if memory holds them.
func (ts *tailSet) view(org, from, to int64) ([]tailEvent, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t := ts.m[org]
	if t == nil || t.from > from || t.from+int64(len(t.evs)) < to {
		return nil, false
	}
	return t.evs[from-t.from : to-t.from], true
}

// scanTail reads the index entries of org's stored events [from, to) from
// their envelopes, as the commit computes them.
func scanTail(ctx context.Context, db rowsQueryer, org, from, to int64) ([]tailEvent, error) {
	if from >= to {
		return nil, nil
	}
	rows, err := db.QueryContext(ctx, `SELECT rid, envelope FROM events WHERE rid >= ? AND rid < ? ORDER BY rid`, rid(org, from), rid(org, to))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]tailEvent, 0, to-from)
	var r int64
	var env []byte
	for rows.Next() {
		if err := rows.Scan(&r, &env); err != nil {
			return nil, err
		}
		if seq := r - rid(org, 0); seq != from+int64(len(out)) {
			return nil, fmt.Errorf("sqlite: organization %d: event %d of the index tail is missing", org, from+int64(len(out)))
		}
		var ev tailEvent
		_, t, ok := veritrail.ScanEnvelopeIndex(env, func(f veritrail.Field, key []byte) {
			ev.keys = append(ev.keys, veritrail.IndexEntry{Field: f, Key: string(key)})
		})
		if !ok {
			return nil, fmt.Errorf("sqlite: organization %d, seq %d: the envelope does not read", org, r-rid(org, 0))
		}
		ev.t = t
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if int64(len(out)) != to-from {
		return nil, fmt.Errorf("sqlite: organization %d: the index tail holds %d of %d events", org, len(out), to-from)
	}
	return out, nil
}

// frontierAndHead reads org's postings frontier and log size.
func frontierAndHead(ctx context.Context, db queryer, org int64) (f, h int64, err error) {
	err = db.QueryRowContext(ctx, `SELECT coalesce((SELECT seq FROM postings_frontier WHERE org_id = ?), 0),
		coalesce((SELECT size FROM log_heads WHERE org_id = ?), 0)`, org, org).Scan(&f, &h)
	return f, h, err
}

// tailView is the tail of one reader's snapshot: the events [from, to)
// that the postings rows of the snapshot do not cover. A nil view is empty.
type tailView struct {
	from, to int64
	shift    uint
	evs      []tailEvent
}

// readTail begins a reader's view of org's index on conn, in the
// snapshot its transaction reads (the first read of a deferred
// transaction begins the snapshot: call it first).
func (s *Store) readTail(ctx context.Context, conn interface {
	queryer
	rowsQueryer
}, org int64) (*tailView, error) {
	f, h, err := frontierAndHead(ctx, conn, org)
	if err != nil {
		return nil, err
	}
	v := &tailView{from: f, to: max(f, h), shift: s.shift}
	if f >= h {
		return v, nil
	}
	evs, ok := s.tails.view(org, f, h)
	if !ok {
		if evs, err = scanTail(ctx, conn, org, f, h); err != nil {
			return nil, err
		}
	}
	v.evs = evs
	return v, nil
}

// span returns the view's events in bucket b: the index in evs of the
// first, and how many.
func (v *tailView) span(b int64) (first int64, evs []tailEvent) {
	if v == nil || len(v.evs) == 0 {
		return 0, nil
	}
	lo, hi := max(v.from, b<<v.shift), min(v.to, (b+1)<<v.shift)
	if lo >= hi {
		return 0, nil
	}
	return lo, v.evs[lo-v.from : hi-v.from]
}

// appendTimes appends the times of the view's events in bucket b.
func (v *tailView) appendTimes(dst []int64, b int64) []int64 {
	_, evs := v.span(b)
	for i := range evs {
		dst = append(dst, evs[i].t)
	}
	return dst
}

// appendOffsets appends, ascending, the offsets in bucket b of the view's
// events that have a key match accepts.
func (v *tailView) appendOffsets(dst []uint32, b int64, match func(ie *veritrail.IndexEntry) bool) []uint32 {
	first, evs := v.span(b)
	base := b << v.shift
	for i := range evs {
		for j := range evs[i].keys {
			if match(&evs[i].keys[j]) {
				dst = append(dst, uint32(first+int64(i)-base))
				break
			}
		}
	}
	return dst
}

// lists returns the view's postings lists in bucket b of the fields (ints).
func (v *tailView) lists(b int64, fields []any) map[postKey][]uint32 {
	first, evs := v.span(b)
	if len(evs) == 0 {
		return nil
	}
	base := b << v.shift
	// The fields as a set: a key's field is looked up, not compared with
	// each boxed one.
	want := map[veritrail.Field]bool{}
	for _, f := range fields {
		want[veritrail.Field(f.(int))] = true
	}
	out := map[postKey][]uint32{}
	for i := range evs {
		for _, ie := range evs[i].keys {
			if want[ie.Field] {
				k := postKey{ie.Field, ie.Key}
				out[k] = append(out[k], uint32(first+int64(i)-base))
			}
		}
	}
	return out
}

// inRange reports whether key is in r.
func inRange(key string, r veritrail.KeyRange) bool {
	return key >= r.Lo && (r.Hi == "" || key < r.Hi)
}

// The writer's side.

// writeTail writes the events evs, the seqs from first on, as one run per
// bucket they fall in (times, one row per key, the bucket's merges) and
// moves the frontier past them, in the writer's transaction.
func writeTail(ctx context.Context, tx *sql.Tx, st *stmts, ost *orgState, first int64, evs []tailEvent) error {
	var p postingsBuilder
	for i := int64(0); i < int64(len(evs)); {
		seq := first + i
		b := seq >> ost.shift
		end := min(int64(len(evs)), (b+1)<<ost.shift-first)
		p.reset(seq, ost.shift)
		for j := i; j < end; j++ {
			p.add(uint32(first+j-b<<ost.shift), &evs[j])
		}
		if err := p.write(ctx, tx, st, ost); err != nil {
			return err
		}
		i = end
	}
	ost.frontier = first + int64(len(evs))
	_, err := st.putFrontier.ExecContext(ctx, ost.org, ost.frontier)
	return err
}

// flushTail writes org's whole tail out in tx (a job's), if it has one.
func (w *writer) flushTail(ctx context.Context, tx *sql.Tx, st *stmts, ost *orgState) (bool, error) {
	t := w.s.tails.get(ost.org)
	if t == nil || len(t.unflushed()) == 0 {
		return false, nil
	}
	if err := writeTail(ctx, tx, st, ost, t.frontier, t.unflushed()); err != nil {
		return false, err
	}
	return true, st.postings.flush()
}

// Idle implements commitq.Idler: it writes out one tail of tailIdleEvents
// or more events in a transaction of its own, and reports whether it did
// (another may be ready). A failed write-out is logged and left for the
// next idle moment after a batch (or the age job, or a commit).
func (w *writer) Idle(ctx context.Context) bool {
	org, ok := w.s.tails.ready()
	if !ok {
		return false
	}
	if err := w.job(ctx, org, nil); err != nil {
		w.s.log.Warn("write the index tail", "org", org, "err", err)
		return false
	}
	w.tailWrites[1].Add(1)
	return true
}

// tailLoop writes out, every half second, the tails older than
// tailMaxAge, in jobs of the writer.
func (s *Store) tailLoop() {
	defer close(s.tailDone)
	tick := time.NewTicker(s.tailAge / 4)
	defer tick.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-tick.C:
		}
		for _, org := range s.tails.stale(time.Now(), s.tailAge) {
			if err := s.runWrite(context.Background(), org, nil); err != nil {
				s.log.Warn("write the index tail", "org", org, "err", err)
			}
		}
	}
}

// flushTails writes out every tail (on Close).
func (s *Store) flushTails() {
	for _, org := range s.tails.withTail() {
		if err := s.runWrite(context.Background(), org, nil); err != nil {
			s.log.Warn("write the index tail", "org", org, "err", err)
		}
	}
}

// flushStoredTails writes out the tails that the stored frontiers show
// (left by a process that stopped before writing them).
func (s *Store) flushStoredTails(ctx context.Context) error {
	rows, err := s.wdb.QueryContext(ctx, `SELECT h.org_id FROM log_heads h
		LEFT JOIN postings_frontier f ON f.org_id = h.org_id WHERE coalesce(f.seq, 0) < h.size`)
	if err != nil {
		return err
	}
	var orgs []int64
	for rows.Next() {
		var org int64
		if err := rows.Scan(&org); err != nil {
			rows.Close()
			return err
		}
		orgs = append(orgs, org)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, org := range orgs {
		if err := s.runWrite(ctx, org, nil); err != nil {
			return fmt.Errorf("write the index tail of organization %d: %w", org, err)
		}
	}
	return nil
}
