package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync/atomic"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/commitq"
	"github.com/veritrail/veritrail/tlog"
)

// Append implements veritrail.EventStore. The events go through the commit
// queue (internal/commitq), whose one lane is this store's single writer:
// concurrent calls share one transaction, and Append returns once that
// transaction is committed and synced.
func (s *Store) Append(ctx context.Context, orgID int64, events []*veritrail.Event) ([]veritrail.AppendResult, error) {
	if s.queue == nil {
		return nil, commitq.ClosedError()
	}
	return s.queue.Append(ctx, orgID, events)
}

// runWrite runs fn in a transaction of the single writer, between two
// group commits, and waits for it. Write jobs other than appends
// (retention, erasure) go through it, so they never race the writer's
// cached log heads, and appends go on between jobs.
func (s *Store) runWrite(ctx context.Context, org int64, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if s.queue == nil {
		return commitq.ClosedError()
	}
	return s.queue.Do(ctx, org, func(ctx context.Context) error { return s.writer.job(ctx, org, fn) })
}

// writer is the store's side of the commit queue: it writes batches and
// jobs on the write connection. Only the queue's one lane uses it.
type writer struct {
	s     *Store
	stmts *writeStmts
	heads map[int64]*orgState // committed state of each log touched so far
	// tailWrites counts the tails written out in commits (0) and by Idle
	// (1), for tests.
	tailWrites [2]atomic.Int64
}

// job runs fn in its own transaction, after writing out org's postings
// tail in it (fn may rewrite postings, and MUST find every event indexed
// in the table). With fn nil it only writes the tail out.
func (w *writer) job(ctx context.Context, org int64, fn func(ctx context.Context, tx *sql.Tx) error) (err error) {
	tx, err := w.s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	var ost *orgState
	flushed := false
	t := w.s.tails.get(org)
	if t == nil {
		// Not written since Open: the tail (if any) is in the events.
		if ost, err = w.loadState(ctx, tx, org); err != nil && (fn == nil || veritrail.ErrorCode(err) != veritrail.ENotFound) {
			tx.Rollback()
			return err
		}
		t = w.s.tails.get(org)
	}
	if t != nil && len(t.unflushed()) > 0 {
		if ost == nil {
			ost = w.heads[org]
		}
		if ost == nil {
			if ost, err = w.loadState(ctx, tx, org); err != nil {
				tx.Rollback()
				return err
			}
		}
		if flushed, err = w.flushTail(ctx, tx, w.stmts.bind(ctx, tx), ost); err != nil {
			tx.Rollback()
			delete(w.heads, org)
			return err
		}
	}
	if fn != nil {
		// The job may rewrite the open bucket's postings: reload the state.
		delete(w.heads, org)
		if err := fn(ctx, tx); err != nil {
			tx.Rollback()
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		delete(w.heads, org)
		return err
	}
	if flushed {
		w.s.tails.committed(org, nil, true, ost.frontier, w.s.now())
	}
	return nil
}

// loadState reads the committed state of org's log in tx and rebuilds its
// postings tail in memory from the stored events past the frontier.
func (w *writer) loadState(ctx context.Context, tx *sql.Tx, org int64) (*orgState, error) {
	ost, err := loadOrgState(ctx, tx, org, w.s.shift)
	if err != nil {
		return nil, err
	}
	evs, err := scanTail(ctx, tx, org, ost.frontier, int64(ost.head.Size()))
	if err != nil {
		return nil, err
	}
	t := &orgTail{from: ost.frontier, frontier: ost.frontier, evs: evs}
	if len(evs) > 0 {
		t.since = w.s.now()
	}
	w.s.tails.set(org, t)
	return ost, nil
}

// WriteBatch implements commitq.Writer: one transaction, committed with
// synchronous=FULL (the WAL is fsynced before it returns).
func (w *writer) WriteBatch(ctx context.Context, batch []*commitq.Request) (stored int, err error) {
	tx, err := w.s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	b := &batchTx{w: w, tx: tx, st: w.stmts.bind(ctx, tx), logs: map[int64]*orgLog{}, counts: counter{}}
	defer func() {
		if err != nil {
			tx.Rollback()
			// The logs' heads moved in memory only: reload them from what
			// is durable.
			for org := range b.logs {
				delete(w.heads, org)
			}
		}
	}()
	if stored, err = commitq.Assign(ctx, b, batch, w.s.now()); err != nil {
		return 0, err
	}
	for _, l := range b.order {
		if err := l.finish(ctx, b.tx); err != nil {
			return 0, err
		}
		if err := writeHead(ctx, b.st, l.state); err != nil {
			return 0, err
		}
	}
	if err := b.counts.write(b.st.counts, b.st.arena); err != nil {
		return 0, err
	}
	for _, rb := range []*rowBatcher{b.st.events, b.st.contents, b.st.postings, b.st.counts} {
		if err := rb.flush(); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	now := w.s.now()
	for _, l := range b.order {
		w.heads[l.state.org] = l.state
		w.s.tails.committed(l.state.org, l.pending, l.flushed, l.state.frontier, now)
		if l.flushed {
			w.tailWrites[0].Add(1)
		}
	}
	if stored > 0 {
		w.s.fts.notify()
	}
	return stored, nil
}

// batchTx is one batch's transaction, as commitq.Assign sees it.
type batchTx struct {
	w     *writer
	tx    *sql.Tx
	st    *stmts
	logs  map[int64]*orgLog
	order []*orgLog // logs in the order the batch opened them
	// counts sums the batch's events per slot and value (counts.go), so
	// that a batch writes one row for each.
	counts counter
}

// orgLog is one organization's log in a batch: its state and the index
// entries of the batch's events (added to the postings tail once the
// batch is committed).
type orgLog struct {
	state   *orgState
	st      *stmts
	tails   *tailSet
	flushAt int     // the tail length a commit writes out (Store.tailEvents)
	counts  counter // the batch's
	pending []tailEvent
	// bucketDirty: the open bucket's summary changed.
	bucketDirty bool
	// flushed: the batch writes the tail out (with its own events).
	flushed bool
}

// Log implements commitq.Tx.
func (b *batchTx) Log(ctx context.Context, org int64) (commitq.Log, error) {
	if l := b.logs[org]; l != nil {
		return l, nil
	}
	state := b.w.heads[org]
	if state == nil {
		var err error
		if state, err = b.w.loadState(ctx, b.tx, org); err != nil {
			return nil, err
		}
	}
	l := &orgLog{state: state, st: b.st, tails: &b.w.s.tails, flushAt: b.w.s.tailEvents, counts: b.counts}
	b.logs[org] = l
	b.order = append(b.order, l)
	return l, nil
}

// Head implements commitq.Log.
func (l *orgLog) Head() *tlog.Head { return l.state.head }

// Add implements commitq.Log: the event's rows and postings.
func (l *orgLog) Add(ctx context.Context, e *veritrail.Event, envelope []byte) error {
	key := rid(l.state.org, e.Seq)
	if err := l.st.events.add(key, l.st.arena.copy(envelope)); err != nil {
		return err
	}
	if len(e.Content) > 0 {
		if err := l.st.contents.add(key, e.ContentSalt, e.Content); err != nil {
			return err
		}
	}
	l.counts.addEvent(l.state.org, e)
	b := &l.state.bucket
	if num := e.Seq >> l.state.shift; num != b.num {
		if err := l.writeBucket(ctx); err != nil {
			return err
		}
		*b = bucketState{num: num}
	}
	t := e.Time.UnixNano()
	if b.count == 0 {
		b.minT, b.maxT = t, t
	}
	b.minT, b.maxT = min(b.minT, t), max(b.maxT, t)
	b.count++
	l.bucketDirty = true
	l.pending = append(l.pending, tailEvent{t: t, keys: slices.Clone(e.IndexKeys())})
	return nil
}

// writeBucket writes the open bucket's summary if it changed.
func (l *orgLog) writeBucket(ctx context.Context) error {
	if !l.bucketDirty {
		return nil
	}
	b := &l.state.bucket
	if _, err := l.st.putBucket.ExecContext(ctx, l.state.org, b.num, b.minT, b.maxT, b.count, 0); err != nil {
		return fmt.Errorf("write bucket: %w", err)
	}
	l.bucketDirty = false
	return nil
}

// finish writes the batch's bucket summary, and the postings tail with
// the batch's events when they make it tailFlushEvents long (the lane was
// not idle while it grew past tailIdleEvents).
func (l *orgLog) finish(ctx context.Context, tx *sql.Tx) error {
	if err := l.writeBucket(ctx); err != nil {
		return err
	}
	t := l.tails.get(l.state.org)
	if t == nil || t.frontier != l.state.frontier {
		return fmt.Errorf("sqlite: organization %d: the index tail is not the writer's", l.state.org)
	}
	old := t.unflushed()
	if len(old)+len(l.pending) < l.flushAt {
		return nil
	}
	evs := make([]tailEvent, 0, len(old)+len(l.pending))
	evs = append(append(evs, old...), l.pending...)
	if err := writeTail(ctx, tx, l.st, l.state, t.frontier, evs); err != nil {
		return err
	}
	l.flushed = true
	return nil
}

// The id index, for commitq's resolution of event ids. Each request's
// claims sit in a savepoint so that a refused request leaves none.

// Savepoint implements commitq.IDIndex.
func (b *batchTx) Savepoint(ctx context.Context) error {
	_, err := b.tx.ExecContext(ctx, `SAVEPOINT req`)
	return err
}

// RollbackSavepoint implements commitq.IDIndex.
func (b *batchTx) RollbackSavepoint(ctx context.Context) error {
	if _, err := b.tx.ExecContext(ctx, `ROLLBACK TO req`); err != nil {
		return err
	}
	return b.ReleaseSavepoint(ctx)
}

// ReleaseSavepoint implements commitq.IDIndex.
func (b *batchTx) ReleaseSavepoint(ctx context.Context) error {
	_, err := b.tx.ExecContext(ctx, `RELEASE req`)
	return err
}

// ClaimIDs implements commitq.IDIndex with multi-row inserts.
func (b *batchTx) ClaimIDs(ctx context.Context, org int64, events []*veritrail.Event, first int64) (int64, error) {
	c := b.st.claims
	c.total = 0
	for i, e := range events {
		if err := c.add(org, e.ID, first+int64(i), serverTime(e)); err != nil {
			return 0, err
		}
	}
	if err := c.flush(); err != nil {
		return 0, err
	}
	return c.total, nil
}

// ClaimID implements commitq.IDIndex.
func (b *batchTx) ClaimID(ctx context.Context, org int64, e *veritrail.Event, seq int64) (bool, error) {
	res, err := b.st.claimID.ExecContext(ctx, org, e.ID, seq, serverTime(e))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// StoredByID implements commitq.IDIndex.
func (b *batchTx) StoredByID(ctx context.Context, org int64, id string) (st commitq.Stored, err error) {
	err = b.st.storedByID.QueryRowContext(ctx, org, id).Scan(&st.Seq, &st.Envelope, &st.Salt, &st.ServerTime)
	return st, err
}

// serverTime is event_ids.server_time for e: 1 or NULL, so that the common
// row (a time the client sent) stores nothing more.
func serverTime(e *veritrail.Event) any {
	if e.ServerTime {
		return 1
	}
	return nil
}
