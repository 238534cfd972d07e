package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// appendReq is one Append call waiting for the commit loop.
type appendReq struct {
	org     int64
	events  []*veritrail.Event
	results []veritrail.AppendResult
	err     error
	done    chan struct{}
}

// bucketState describes an organization's open bucket.
type bucketState struct {
	num        int64
	minT, maxT int64
	count      int64
	runs       []runInfo // the bucket's postings runs, in seq order
}

// runInfo is one run of a bucket's postings: the events [start, start+count).
type runInfo struct {
	start int64
	count int
}

// tier groups runs by size: 0 below 16 events, 1 below 256, and so on.
// Merging 16 runs of one tier makes a run of the next.
func tier(count int) int {
	t := 0
	for count >= mergeRuns {
		count /= mergeRuns
		t++
	}
	return t
}

// orgState is what the commit loop keeps in memory per organization: the
// head of its Merkle log and its open index bucket.
type orgState struct {
	org    int64
	size   int64 // events in the log: head.Size(), kept apart for BenchmarkTreeCost
	shift  uint  // bucket shift of the store
	head   *tlog.Head
	bucket bucketState
}

// Append implements veritrail.EventStore. The events are handed to the
// commit loop, which merges concurrent calls into one transaction; Append
// returns once that transaction is committed and synced.
func (s *Store) Append(ctx context.Context, orgID int64, events []*veritrail.Event) ([]veritrail.AppendResult, error) {
	if len(events) == 0 {
		return nil, nil
	}
	req := &appendReq{org: orgID, events: events, done: make(chan struct{})}
	s.closeMu.RLock()
	if s.closed || s.opts.NoWorkers {
		s.closeMu.RUnlock()
		return nil, veritrail.Errorf(veritrail.EUnavailable, "the store is closed; retry against a running server")
	}
	select {
	case s.queue <- req:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return nil, ctx.Err()
	}
	s.closeMu.RUnlock()
	// Once queued, the request will be committed or refused; wait for the
	// verdict even if the caller gives up, so no result is misreported.
	<-req.done
	return req.results, req.err
}

// commitLoop is the single writer. It takes every request waiting in the
// queue (up to MaxCommitEvents) and commits them together.
func (s *Store) commitLoop() {
	defer close(s.stopped)
	var batch []*appendReq
	for {
		batch = batch[:0]
		select {
		case j := <-s.jobs:
			s.runJob(j)
			continue
		case r := <-s.queue:
			batch = append(batch, r)
		case <-s.closing:
			// Close holds closeMu while closing, so nothing new can be
			// queued now: drain what is there and stop.
			for {
				select {
				case r := <-s.queue:
					batch = append(batch, r)
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				s.commit(batch)
			}
			return
		}
		n := len(batch[0].events)
	drain:
		for n < s.opts.MaxCommitEvents {
			select {
			case r := <-s.queue:
				batch = append(batch, r)
				n += len(r.events)
			default:
				break drain
			}
		}
		s.obs.Queued(len(s.queue))
		s.commit(batch)
	}
}

// writeJob is a write transaction other than an append (retention,
// erasure) run by the commit loop between group commits, so it never races
// the loop's cached log heads and appends go on between jobs.
type writeJob struct {
	org  int64
	fn   func(ctx context.Context, tx *sql.Tx) error
	err  error
	done chan struct{}
}

// runWrite runs fn in a transaction of the commit loop and waits for it.
func (s *Store) runWrite(ctx context.Context, org int64, fn func(ctx context.Context, tx *sql.Tx) error) error {
	j := &writeJob{org: org, fn: fn, done: make(chan struct{})}
	s.closeMu.RLock()
	if s.closed || s.opts.NoWorkers {
		s.closeMu.RUnlock()
		return veritrail.Errorf(veritrail.EUnavailable, "the store is closed; retry against a running server")
	}
	select {
	case s.jobs <- j:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return ctx.Err()
	}
	s.closeMu.RUnlock()
	<-j.done
	return j.err
}

func (s *Store) runJob(j *writeJob) {
	defer close(j.done)
	ctx := context.Background()
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		j.err = err
		return
	}
	if err := j.fn(ctx, tx); err != nil {
		tx.Rollback()
		j.err = err
		return
	}
	j.err = tx.Commit()
	// The job may have rewritten the open bucket's postings: reload.
	delete(s.heads, j.org)
}

// commit writes a batch of requests in one transaction and reports to each.
func (s *Store) commit(batch []*appendReq) {
	start := time.Now()
	stored, err := s.commitTx(batch)
	if err != nil {
		// The transaction rolled back: forget cached heads so they are
		// reloaded from what is durable.
		for _, r := range batch {
			delete(s.heads, r.org)
		}
		s.log.Error("commit failed", slog.Any("err", err), slog.Int("requests", len(batch)))
		for _, r := range batch {
			if r.err == nil {
				r.results = nil
				if veritrail.ErrorCode(err) == veritrail.EInternal {
					r.err = veritrail.Errorf(veritrail.EUnavailable, "the events could not be committed; retry with the same ids")
				} else {
					r.err = err
				}
			}
		}
	}
	s.obs.CommitDone(len(batch), stored, time.Since(start), err)
	for _, r := range batch {
		close(r.done)
	}
	if err == nil && stored > 0 {
		s.fts.notify()
	}
}

// batchState is the per-organization state of one transaction.
type batchState struct {
	st      *orgState
	pending map[string]*veritrail.Event // new events of this batch, by id
	post    postingsBuilder
}

func (s *Store) commitTx(batch []*appendReq) (stored int, err error) {
	ctx := context.Background()
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	// Bound statements are closed by the commit or rollback.
	st := s.ws.bind(ctx, tx)

	receivedAt := s.now().UTC().Truncate(time.Microsecond)
	orgs := map[int64]*batchState{}
	var order []*batchState
	var envBuf []byte
	for _, r := range batch {
		bs := orgs[r.org]
		if bs == nil {
			ost, err := s.loadOrgState(ctx, tx, r.org)
			if err != nil {
				if veritrail.ErrorCode(err) != veritrail.EInternal {
					r.err = err
					continue
				}
				return 0, err
			}
			bs = &batchState{st: ost, pending: map[string]*veritrail.Event{}}
			bs.post.reset(uint64(ost.size), ost.shift)
			orgs[r.org] = bs
			order = append(order, bs)
		}
		newIdx, err := s.resolveIDs(ctx, tx, st, bs, r)
		if err != nil {
			return 0, err
		}
		if r.err != nil {
			continue
		}
		for _, i := range newIdx {
			e := r.events[i]
			seq := bs.st.size
			if seq != r.results[i].Seq {
				return 0, fmt.Errorf("sqlite: seq drift for org %d: %d != %d", r.org, seq, r.results[i].Seq)
			}
			e.Seq = seq
			e.ReceivedAt = receivedAt
			e.SealContent()
			// The buffer starts with the RFC 6962 leaf prefix, so the leaf
			// hash is one SHA-256 over it, without a copy or allocation.
			envBuf = veritrail.AppendEnvelope(append(envBuf[:0], 0), e)
			if !benchmarkWithoutTree {
				leaf := sha256.Sum256(envBuf)
				bs.st.head.Append(leaf[:])
			}
			envBuf := envBuf[1:]
			bs.st.size++
			key := rid(r.org, seq)
			if err := st.events.add(key, st.arena.copy(envBuf)); err != nil {
				return 0, err
			}
			if len(e.Content) > 0 {
				if err := st.contents.add(key, e.ContentSalt, e.Content); err != nil {
					return 0, err
				}
			}
			if err := bs.post.add(ctx, st, bs.st, e); err != nil {
				return 0, err
			}
			stored++
		}
	}
	for _, bs := range order {
		if err := bs.post.flush(ctx, st, bs.st); err != nil {
			return 0, err
		}
		if err := s.writeHead(ctx, st, bs.st); err != nil {
			return 0, err
		}
	}
	for _, b := range []*rowBatcher{st.events, st.contents, st.postings} {
		if err := b.flush(); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	for _, bs := range order {
		s.heads[bs.st.org] = bs.st
	}
	return stored, nil
}

// resolveIDs claims the request's event ids and decides, for each event,
// whether it is new, a duplicate of a stored event, or a conflict. It returns
// the indexes of the new events, whose seqs are in r.results. On a conflict
// it sets r.err and undoes the request's claims.
func (s *Store) resolveIDs(ctx context.Context, tx *sql.Tx, st *stmts, bs *batchState, r *appendReq) ([]int, error) {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT req`); err != nil {
		return nil, err
	}
	r.results = make([]veritrail.AppendResult, len(r.events))
	if newIdx, ok, err := claimAll(ctx, tx, st, bs, r); err != nil || ok {
		return newIdx, err
	}
	next := bs.st.size
	var newIdx []int
	local := map[string]*veritrail.Event{}
	conflict := func(i int, seq int64) error {
		r.results = nil
		r.err = &veritrail.Error{Code: veritrail.EConflict, Index: i, Field: "id", Message: fmt.Sprintf(
			"event %d: id %q is already stored (seq %d) with different content; use a new id for a new event", i, r.events[i].ID, seq)}
		if _, err := tx.ExecContext(ctx, `ROLLBACK TO req`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `RELEASE req`)
		return err
	}
	for i, e := range r.events {
		if p := local[e.ID]; p != nil {
			if !veritrail.SameSubmission(e, p) {
				return nil, conflict(i, p.Seq)
			}
			r.results[i] = veritrail.AppendResult{Seq: p.Seq, Duplicate: true}
			continue
		}
		if p := bs.pending[e.ID]; p != nil {
			if !veritrail.SameSubmission(e, p) {
				return nil, conflict(i, p.Seq)
			}
			r.results[i] = veritrail.AppendResult{Seq: p.Seq, Duplicate: true}
			continue
		}
		res, err := st.claimID.ExecContext(ctx, r.org, e.ID, next)
		if err != nil {
			return nil, fmt.Errorf("claim id: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			r.results[i] = veritrail.AppendResult{Seq: next}
			e.Seq = next
			local[e.ID] = e
			newIdx = append(newIdx, i)
			next++
			continue
		}
		// Stored by an earlier batch: compare with what is stored.
		var seq int64
		var env, salt []byte
		if err := st.storedByID.QueryRowContext(ctx, r.org, e.ID).Scan(&seq, &env, &salt); err != nil {
			return nil, fmt.Errorf("load stored event %q: %w", e.ID, err)
		}
		same, err := veritrail.SameAsStored(e, env, salt)
		if err != nil {
			return nil, err
		}
		if !same {
			return nil, conflict(i, seq)
		}
		r.results[i] = veritrail.AppendResult{Seq: seq, Duplicate: true}
	}
	if _, err := tx.ExecContext(ctx, `RELEASE req`); err != nil {
		return nil, err
	}
	for id, e := range local {
		bs.pending[id] = e
	}
	return newIdx, nil
}

// claimAll is the fast path of resolveIDs, for the common request whose ids
// are all new: it claims them with multi-row inserts. If any id is already
// taken (by this batch or before) it undoes its claims and returns false,
// and resolveIDs decides event by event.
func claimAll(ctx context.Context, tx *sql.Tx, st *stmts, bs *batchState, r *appendReq) ([]int, bool, error) {
	seen := make(map[string]struct{}, len(r.events))
	for _, e := range r.events {
		if _, dup := seen[e.ID]; dup || bs.pending[e.ID] != nil {
			return nil, false, nil
		}
		seen[e.ID] = struct{}{}
	}
	next := bs.st.size
	st.claims.total = 0
	for i, e := range r.events {
		if err := st.claims.add(r.org, e.ID, next+int64(i)); err != nil {
			return nil, false, err
		}
	}
	if err := st.claims.flush(); err != nil {
		return nil, false, err
	}
	if st.claims.total != int64(len(r.events)) {
		if _, err := tx.ExecContext(ctx, `ROLLBACK TO req`); err != nil {
			return nil, false, err
		}
		return nil, false, nil
	}
	if _, err := tx.ExecContext(ctx, `RELEASE req`); err != nil {
		return nil, false, err
	}
	newIdx := make([]int, len(r.events))
	for i, e := range r.events {
		e.Seq = next + int64(i)
		r.results[i] = veritrail.AppendResult{Seq: e.Seq}
		bs.pending[e.ID] = e
		newIdx[i] = i
	}
	return newIdx, true, nil
}

// loadOrgState returns the committed state of an organization's log.
func (s *Store) loadOrgState(ctx context.Context, tx *sql.Tx, org int64) (*orgState, error) {
	if st := s.heads[org]; st != nil {
		return st, nil
	}
	var exists int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM orgs WHERE id = ?`, org).Scan(&exists); err != nil {
		return nil, err
	}
	if exists == 0 {
		return nil, veritrail.Errorf(veritrail.ENotFound, "organization %d not found", org)
	}
	var size int64
	var compact []byte
	err := tx.QueryRowContext(ctx, `SELECT size, compact FROM log_heads WHERE org_id = ?`, org).Scan(&size, &compact)
	if errors.Is(err, sql.ErrNoRows) {
		size, compact, err = 0, nil, nil
	}
	if err != nil {
		return nil, err
	}
	var edge []*tlog.Tile
	for _, id := range tlog.EdgeTiles(uint64(size)) {
		var hashes []byte
		if err := tx.QueryRowContext(ctx, `SELECT hashes FROM tiles WHERE org_id = ? AND level = ? AND idx = ?`,
			org, id.Level, id.Index).Scan(&hashes); err != nil {
			return nil, fmt.Errorf("load tile %v of org %d: %w", id, org, err)
		}
		edge = append(edge, &tlog.Tile{ID: id, Hashes: hashes})
	}
	head, err := tlog.LoadHead(uint64(size), compact, edge)
	if err != nil {
		return nil, err
	}
	ost := &orgState{org: org, size: size, shift: s.shift, head: head, bucket: bucketState{num: size >> s.shift}}
	b := &ost.bucket
	err = tx.QueryRowContext(ctx, `SELECT min_time, max_time, count FROM buckets WHERE org_id = ? AND bucket = ?`,
		org, b.num).Scan(&b.minT, &b.maxT, &b.count)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if b.runs, err = loadRuns(ctx, tx, org, b.num); err != nil {
		return nil, err
	}
	if want := size - b.num<<s.shift; b.count != want {
		return nil, fmt.Errorf("sqlite: org %d bucket %d holds %d events, log size says %d", org, b.num, b.count, want)
	}
	return ost, nil
}

// benchmarkWithoutTree turns the Merkle tree off, for one benchmark only
// (BenchmarkTreeCost measures what the tree costs ingest). Never set
// outside tests: a log without its tree cannot be verified.
var benchmarkWithoutTree = false

// writeHead persists the log head and the tiles the batch changed.
func (s *Store) writeHead(ctx context.Context, st *stmts, ost *orgState) error {
	if benchmarkWithoutTree {
		// The size still moves: the full-text indexer follows it.
		_, err := st.putHead.ExecContext(ctx, ost.org, ost.size, nil, []byte{})
		return err
	}
	for _, t := range ost.head.TakeDirty() {
		if _, err := st.putTile.ExecContext(ctx, ost.org, t.ID.Level, int64(t.ID.Index), t.Hashes); err != nil {
			return fmt.Errorf("write tile: %w", err)
		}
	}
	_, err := st.putHead.ExecContext(ctx, ost.org, int64(ost.head.Size()), ost.head.Root(), ost.head.CompactHashes())
	return err
}

// postingsBuilder collects one batch's postings for one bucket.
type postingsBuilder struct {
	shift  uint
	bucket int64
	run    int64 // first seq of this batch in the bucket
	times  []int64
	lists  map[postKey][]uint32
}

type postKey struct {
	field veritrail.Field
	key   string
}

// comparePostKeys orders keys as the postings table does: by field, then key.
func comparePostKeys(a, b postKey) int {
	if a.field != b.field {
		return int(a.field) - int(b.field)
	}
	return strings.Compare(a.key, b.key)
}

func (p *postingsBuilder) reset(nextSeq uint64, shift uint) {
	p.shift = shift
	p.bucket = int64(nextSeq) >> shift
	p.run = int64(nextSeq)
	p.times = p.times[:0]
	if p.lists == nil {
		p.lists = map[postKey][]uint32{}
	} else {
		clear(p.lists)
	}
}

func (p *postingsBuilder) add(ctx context.Context, st *stmts, ost *orgState, e *veritrail.Event) error {
	if b := e.Seq >> p.shift; b != p.bucket {
		if err := p.flush(ctx, st, ost); err != nil {
			return err
		}
		p.reset(uint64(e.Seq), p.shift)
	}
	off := uint32(e.Seq - p.bucket<<p.shift)
	p.times = append(p.times, e.Time.UnixNano())
	for _, ie := range e.IndexKeys() {
		pk := postKey{ie.Field, ie.Key}
		p.lists[pk] = append(p.lists[pk], off)
	}
	return nil
}

// flush writes the collected run and updates the bucket, merging its runs
// when there are many or when the bucket is full.
func (p *postingsBuilder) flush(ctx context.Context, st *stmts, ost *orgState) error {
	if len(p.times) == 0 {
		return nil
	}
	st.buf = appendTimes(st.buf[:0], p.times)
	if err := st.postings.add(ost.org, p.bucket, timesField, timesKey, p.run, st.arena.copy(st.buf)); err != nil {
		return err
	}
	keys := make([]postKey, 0, len(p.lists))
	for k := range p.lists {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, comparePostKeys)
	for _, k := range keys {
		st.buf = appendOffsets(st.buf[:0], p.lists[k])
		list := st.arena.copy(st.buf)
		if err := st.postings.add(ost.org, p.bucket, int(k.field), st.arena.copy([]byte(k.key)), p.run, list); err != nil {
			return err
		}
	}
	b := &ost.bucket
	if b.num != p.bucket || b.count == 0 {
		*b = bucketState{num: p.bucket, minT: p.times[0], maxT: p.times[0]}
	}
	for _, t := range p.times {
		b.minT = min(b.minT, t)
		b.maxT = max(b.maxT, t)
	}
	b.count += int64(len(p.times))
	b.runs = append(b.runs, runInfo{start: p.run, count: len(p.times)})
	full := b.count == 1<<p.shift
	// Size-tiered merging: when the newest runs include 16 of one tier,
	// merge them into one run of the next tier. Each event is rewritten
	// about once per tier, and a bucket keeps at most ~16 runs per tier.
	for {
		k := len(b.runs)
		t := tier(b.runs[k-1].count)
		i := k - 1
		for i > 0 && tier(b.runs[i-1].count) <= t {
			i--
		}
		if k-i < mergeRuns {
			break
		}
		// The rows just queued must be in the table before merging.
		if err := st.postings.flush(); err != nil {
			return err
		}
		if err := mergeRunsFrom(ctx, st, ost.org, p.bucket, b.runs[i].start); err != nil {
			return err
		}
		total := 0
		for _, r := range b.runs[i:] {
			total += r.count
		}
		b.runs = append(b.runs[:i], runInfo{start: b.runs[i].start, count: total})
	}
	if _, err := st.putBucket.ExecContext(ctx, ost.org, b.num, b.minT, b.maxT, b.count, len(b.runs)); err != nil {
		return fmt.Errorf("write bucket: %w", err)
	}
	p.times = p.times[:0]
	clear(p.lists)
	if full {
		// The bucket is full: the next event opens a new one.
		*b = bucketState{num: p.bucket + 1}
	}
	return nil
}

// loadRuns lists a bucket's runs from its times rows.
func loadRuns(ctx context.Context, tx *sql.Tx, org, bucket int64) ([]runInfo, error) {
	rows, err := tx.QueryContext(ctx, `SELECT run, list FROM postings WHERE org_id = ? AND bucket = ? AND field = 0 ORDER BY run`, org, bucket)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var runs []runInfo
	var times []int64
	for rows.Next() {
		var start int64
		var list []byte
		if err := rows.Scan(&start, &list); err != nil {
			return nil, err
		}
		if times, err = decodeTimes(times[:0], list); err != nil {
			return nil, err
		}
		runs = append(runs, runInfo{start: start, count: len(times)})
	}
	return runs, rows.Err()
}

// mergeRunsFrom rewrites the runs of a bucket starting at seq from (the
// newest ones) as one run per key.
func mergeRunsFrom(ctx context.Context, st *stmts, org, bucket, from int64) error {
	rows, err := st.bucketPostings.QueryContext(ctx, org, bucket, from)
	if err != nil {
		return err
	}
	type merged struct {
		field int
		key   []byte
		run   int64
		times []int64
		offs  []uint32
	}
	var out []*merged
	var cur *merged
	for rows.Next() {
		var field int
		var key, list []byte
		var run int64
		if err := rows.Scan(&field, &key, &run, &list); err != nil {
			rows.Close()
			return err
		}
		if cur == nil || cur.field != field || !bytes.Equal(cur.key, key) {
			cur = &merged{field: field, key: key, run: run}
			out = append(out, cur)
		}
		if field == timesField {
			cur.times, err = decodeTimes(cur.times, list)
		} else {
			cur.offs, err = decodeOffsets(cur.offs, list)
		}
		if err != nil {
			rows.Close()
			return fmt.Errorf("merge runs of bucket %d of org %d: %w", bucket, org, err)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if _, err := st.delBucketPostings.ExecContext(ctx, org, bucket, from); err != nil {
		return err
	}
	var buf []byte
	for _, m := range out {
		if m.field == timesField {
			buf = appendTimes(buf[:0], m.times)
		} else {
			buf = appendOffsets(buf[:0], m.offs)
		}
		if _, err := st.putPosting.ExecContext(ctx, org, bucket, m.field, m.key, m.run, buf); err != nil {
			return err
		}
	}
	return nil
}

// stmts are the commit path's statements, bound to one transaction.
type stmts struct {
	claimID, storedByID                     *sql.Stmt
	putPosting, putBucket, putTile, putHead *sql.Stmt
	bucketPostings, delBucketPostings       *sql.Stmt

	claims, events, contents, postings *rowBatcher
	arena                              *arena
	buf                                []byte // scratch for one encoded list
}

// writeStmts are the commit path's statements, prepared once on the
// writer's connection (preparing them per transaction cost more than
// small commits themselves).
type writeStmts struct {
	claimID, storedByID                     *sql.Stmt
	putPosting, putBucket, putTile, putHead *sql.Stmt
	bucketPostings, delBucketPostings       *sql.Stmt

	claims, events, contents, postings *rowTable
	arena                              arena // reset by bind
}

func prepareWriteStmts(ctx context.Context, db *sql.DB) (*writeStmts, error) {
	w := &writeStmts{}
	for _, p := range []struct {
		dst *(*sql.Stmt)
		sql string
	}{
		{&w.claimID, `INSERT INTO event_ids (org_id, id, seq) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`},
		{&w.storedByID, `SELECT i.seq, e.envelope, c.salt FROM event_ids i
			JOIN events e ON e.rid = (i.org_id << 40 | i.seq)
			LEFT JOIN contents c ON c.rid = e.rid
			WHERE i.org_id = ? AND i.id = ?`},
		{&w.putPosting, `INSERT INTO postings (org_id, bucket, field, key, run, list) VALUES (?, ?, ?, ?, ?, ?)`},
		{&w.putBucket, `INSERT INTO buckets (org_id, bucket, min_time, max_time, count, runs) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (org_id, bucket) DO UPDATE SET min_time = excluded.min_time, max_time = excluded.max_time,
			count = excluded.count, runs = excluded.runs`},
		{&w.putTile, `INSERT INTO tiles (org_id, level, idx, hashes) VALUES (?, ?, ?, ?)
			ON CONFLICT (org_id, level, idx) DO UPDATE SET hashes = excluded.hashes`},
		{&w.putHead, `INSERT INTO log_heads (org_id, size, root, compact) VALUES (?, ?, ?, ?)
			ON CONFLICT (org_id) DO UPDATE SET size = excluded.size, root = excluded.root, compact = excluded.compact`},
		{&w.bucketPostings, `SELECT field, key, run, list FROM postings WHERE org_id = ? AND bucket = ? AND run >= ? ORDER BY field, key, run`},
		{&w.delBucketPostings, `DELETE FROM postings WHERE org_id = ? AND bucket = ? AND run >= ?`},
	} {
		s, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("prepare %q: %w", p.sql, err)
		}
		*p.dst = s
	}
	var err error
	for _, t := range []struct {
		dst  **rowTable
		head string
		cols int
		tail string
	}{
		{&w.claims, `INSERT INTO event_ids (org_id, id, seq) VALUES`, 3, `ON CONFLICT DO NOTHING`},
		{&w.events, `INSERT INTO events (rid, envelope) VALUES`, 2, ``},
		{&w.contents, `INSERT INTO contents (rid, salt, body) VALUES`, 3, ``},
		{&w.postings, `INSERT INTO postings (org_id, bucket, field, key, run, list) VALUES`, 6, ``},
	} {
		if *t.dst, err = prepareRowTable(ctx, db, t.head, t.cols, t.tail); err != nil {
			w.close()
			return nil, err
		}
	}
	return w, nil
}

func (w *writeStmts) close() {
	for _, s := range []*sql.Stmt{w.claimID, w.storedByID, w.putPosting,
		w.putBucket, w.putTile, w.putHead, w.bucketPostings, w.delBucketPostings} {
		if s != nil {
			s.Close()
		}
	}
	for _, t := range []*rowTable{w.claims, w.events, w.contents, w.postings} {
		if t != nil {
			t.close()
		}
	}
}

// bind returns the statements bound to tx. Only the commit loop calls it,
// one transaction at a time.
func (w *writeStmts) bind(ctx context.Context, tx *sql.Tx) *stmts {
	b := func(s *sql.Stmt) *sql.Stmt { return tx.StmtContext(ctx, s) }
	w.arena.reset()
	return &stmts{arena: &w.arena,
		claimID: b(w.claimID), storedByID: b(w.storedByID), putPosting: b(w.putPosting),
		putBucket: b(w.putBucket), putTile: b(w.putTile), putHead: b(w.putHead),
		bucketPostings: b(w.bucketPostings), delBucketPostings: b(w.delBucketPostings),
		claims: w.claims.batcher(ctx, tx), events: w.events.batcher(ctx, tx),
		contents: w.contents.batcher(ctx, tx), postings: w.postings.batcher(ctx, tx),
	}
}
