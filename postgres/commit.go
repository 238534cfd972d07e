package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/commitq"
	"github.com/veritrail/veritrail/tlog"
)

// Append implements veritrail.EventStore. The events go through the commit
// queue (internal/commitq): concurrent calls for the organizations of one
// commit lane share one transaction, and lanes commit side by side. The
// transaction locks the log head row of each organization it appends to,
// so appends of other nodes to the same organization wait for it; Append
// returns once PostgreSQL committed.
func (s *Store) Append(ctx context.Context, org int64, events []*veritrail.Event) ([]veritrail.AppendResult, error) {
	return s.queue.Append(ctx, org, events)
}

// Enqueue implements veritrail.EventStore. Any process may append to
// PostgreSQL, so the event is appended at once.
func (s *Store) Enqueue(ctx context.Context, org int64, e *veritrail.Event) error {
	if e.ID == "" {
		return errors.New("postgres: an enqueued event needs an id")
	}
	_, err := s.Append(ctx, org, []*veritrail.Event{e})
	return err
}

// writer is one commit lane's side of the queue. Lanes own disjoint sets
// of organizations, so each writer caches the heads of its own. The lane
// overlaps two batches (commitq.OverlappingWriter), so the writer's state
// is shared by two goroutines, under mu.
type writer struct {
	s *Store

	mu sync.Mutex
	// heads caches each organization's committed log head between
	// commits; it is checked against the locked row at every commit,
	// since other nodes append too. A cached head is never changed: a
	// batch appends to a clone.
	heads map[int64]*tlog.Head
	// last is the latest batch that assigned its seqs, which the next
	// batch builds on while it commits.
	last *flight
	// shared holds when another node was last seen appending to an
	// organization: for a while after, its batches do not build on the
	// batch in flight, which another node's append makes a wasted writing.
	shared map[int64]time.Time
}

// sharedFor is how long after another node's append to an organization
// its batches lock its head first again.
const sharedFor = 10 * time.Second

// sawOtherNode notes that another node appended to org.
func (w *writer) sawOtherNode(org int64) {
	w.mu.Lock()
	if w.shared == nil {
		w.shared = map[int64]time.Time{}
	}
	w.shared[org] = time.Now()
	w.mu.Unlock()
}

// flight is a batch from the assignment of its seqs to the end of its
// transaction.
type flight struct {
	// heads are the batch's heads after its events (clones), which the
	// next batch appends to before this one has committed.
	heads map[int64]*tlog.Head
	// done: the transaction ended, committed or not; committed: it
	// committed; void: its first writing was given up, to write the batch
	// again (under mu).
	done, committed, void bool
	settled               chan struct{} // closed once done or void is set
	once                  sync.Once
}

// settle sets done or void (under w.mu) and wakes the batch that waits on f.
func (w *writer) settle(f *flight, void bool) {
	w.mu.Lock()
	if void {
		f.void = true
	} else {
		f.done = true
	}
	w.mu.Unlock()
	f.once.Do(func() { close(f.settled) })
}

// WriteBatch implements commitq.Writer.
func (w *writer) WriteBatch(ctx context.Context, batch []*commitq.Request) (int, error) {
	return w.WriteBatchOverlapped(ctx, batch, func() {})
}

// WriteBatchOverlapped implements commitq.OverlappingWriter. With no batch
// in flight, the transaction locks the organizations' log heads first, as
// ever. While the previous batch commits, the transaction instead builds on
// that batch's heads: it claims the ids and inserts the rows with the seqs
// that follow them (the previous batch's inserts and this one's run side by
// side, on two connections), and only then locks the heads, which waits for
// the previous batch's commit. It commits only if every locked head is the
// one it built on (same size and root): otherwise (the previous batch
// failed, or another node appended) it rolls back and writes the batch
// again the first way. Seqs stay gap-free and each tree moves with its
// leaves in one transaction.
func (w *writer) WriteBatchOverlapped(ctx context.Context, batch []*commitq.Request, assigned func()) (stored int, err error) {
	f := &flight{settled: make(chan struct{})}
	defer w.settle(f, false)
	var orgs []int64
	for _, r := range batch {
		if !slices.Contains(orgs, r.Org) {
			orgs = append(orgs, r.Org)
		}
	}
	slices.Sort(orgs)
	prev, bases := w.speculate(orgs)
	if prev != nil && bases == nil {
		// Not built on the batch in flight: begin once it ended, as if
		// the lane ran one batch at a time (a transaction begun now would
		// only wait for the heads' lock, holding a connection).
		select {
		case <-prev.settled:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if bases != nil {
		stored, built, err := w.write(ctx, batch, orgs, bases, prev, f, assigned)
		if err != nil || built {
			return stored, err
		}
		// Built on heads that were not committed: again, on what is. The
		// batch built on this one gives up first, so that no claim of it
		// holds up this one's claims while it waits for this one.
		w.settle(f, true)
		for _, r := range batch {
			r.Results, r.Err = nil, nil
		}
		w.s.rewritten.Add(1)
	}
	stored, _, err = w.write(ctx, batch, orgs, nil, nil, f, assigned)
	return stored, err
}

// speculate returns the batch in flight and the heads a batch of orgs may
// build on while it commits: that batch's heads, or the cached committed
// ones for organizations it did not write. It returns nil heads (and the
// batch in flight, if any) when no batch is in flight, another lane's is,
// another node appended to one of orgs lately, or some organization has
// no head to build on.
func (w *writer) speculate(orgs []int64) (*flight, map[int64]*tlog.Head) {
	// Only while one batch of the whole node is in flight (this lane's
	// previous one): when other lanes commit too, their transactions keep
	// PostgreSQL busy already, and two more inserting side by side cost
	// more CPU per event than they add (measured: BENCHMARKS.md, "Overlapped
	// commits of one organization").
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil || w.last.done {
		return nil, nil
	}
	if w.last.void || w.s.openBatches.Load() > 1 {
		// (A void batch is being written again: its heads will not be.)
		return w.last, nil
	}
	bases := make(map[int64]*tlog.Head, len(orgs))
	for _, org := range orgs {
		if t, ok := w.shared[org]; ok && time.Since(t) < sharedFor {
			return w.last, nil
		}
		h := w.last.heads[org]
		if h == nil {
			h = w.heads[org]
		}
		if h == nil {
			return w.last, nil
		}
		bases[org] = h.Clone()
	}
	return w.last, bases
}

// write writes batch in one transaction: with bases nil, the heads are
// locked first; else the batch is built on bases and the heads are locked
// before the commit, which happens only if they are still bases (built
// reports whether they were; if not, nothing is stored), after prev, the
// batch they come from, ended. f is published, and assigned called, once
// the seqs are assigned.
func (w *writer) write(ctx context.Context, batch []*commitq.Request, orgs []int64, bases map[int64]*tlog.Head, prev, f *flight, assigned func()) (stored int, built bool, err error) {
	w.s.openBatches.Add(1)
	defer w.s.openBatches.Add(-1)
	tx, err := w.s.pool.Begin(ctx)
	if err != nil {
		return 0, false, err
	}
	b := &batchTx{tx: tx, logs: map[int64]*orgLog{}, refused: map[int64]error{}}
	defer func() {
		if err != nil || !built {
			tx.Rollback(ctx)
		}
		if err != nil {
			w.mu.Lock()
			for _, org := range orgs {
				delete(w.heads, org)
			}
			w.mu.Unlock()
		}
	}()
	if bases == nil {
		// Lock every organization's head, in id order (no deadlock
		// between nodes), and bring the cached heads up to date.
		for _, org := range orgs {
			h, err := w.lockHead(ctx, tx, org)
			if veritrail.ErrorCode(err) == veritrail.ENotFound {
				b.refused[org] = err
				continue
			}
			if err != nil {
				return 0, false, err
			}
			b.logs[org] = &orgLog{org: org, head: h, enc: &b.enc}
		}
	} else {
		for org, h := range bases {
			b.logs[org] = &orgLog{org: org, head: h.Clone(), enc: &b.enc}
		}
	}
	if stored, err = commitq.Assign(ctx, b, batch, w.s.now()); err != nil {
		return 0, false, err
	}
	if f.heads == nil {
		f.heads = make(map[int64]*tlog.Head, len(b.logs))
		for org, l := range b.logs {
			f.heads[org] = l.head.Clone()
		}
		w.mu.Lock()
		w.last = f
		w.mu.Unlock()
		assigned()
	}
	// The rows by COPY, then the counts, tiles and heads in one round
	// trip.
	var tail pgx.Batch
	if n := len(b.enc.events); n > 0 {
		if err := copyIn(ctx, tx, "events", eventColumns, n, b.enc.eventRow); err != nil {
			return 0, false, fmt.Errorf("insert events: %w", err)
		}
		var withContent []int
		for i, p := range b.enc.events {
			if len(p.e.Content) > 0 {
				withContent = append(withContent, i)
			}
		}
		if len(withContent) > 0 {
			if err := copyIn(ctx, tx, "contents", contentColumns, len(withContent), b.enc.contentRow(withContent)); err != nil {
				return 0, false, fmt.Errorf("insert contents: %w", err)
			}
		}
		queueCounts(&tail, b.enc.events)
	}
	if bases != nil {
		// The heads now, in id order, once the previous batch ended: it
		// may itself lock its heads only before its commit, and this
		// batch's lock MUST come after. If it writes its batch again,
		// the heads built on will not be committed: this batch gives up
		// at once (its claims could hold up the other's).
		select {
		case <-prev.settled:
		case <-ctx.Done():
			return 0, false, ctx.Err()
		}
		w.mu.Lock()
		void, prevCommitted := prev.void, prev.committed
		w.mu.Unlock()
		if void {
			return 0, false, nil
		}
		for _, org := range orgs {
			var size int64
			var root []byte
			if err := tx.QueryRow(ctx, `SELECT size, root FROM log_heads WHERE org_id = $1 FOR UPDATE`, org).Scan(&size, &root); err != nil {
				return 0, false, fmt.Errorf("lock the log head of org %d: %w", org, err)
			}
			base := bases[org]
			if uint64(size) != base.Size() || (size > 0 && !bytes.Equal(root, base.Root())) {
				if prevCommitted {
					w.sawOtherNode(org)
				}
				return 0, false, nil
			}
		}
	}
	for _, org := range orgs {
		if l := b.logs[org]; l != nil {
			queueHead(&tail, org, l.head)
		}
	}
	if tail.Len() > 0 {
		if err := tx.SendBatch(ctx, &tail).Close(); err != nil {
			return 0, false, fmt.Errorf("write counts, tiles and log heads: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, false, fmt.Errorf("commit: %w", err)
	}
	built = true
	w.mu.Lock()
	f.committed = true
	for org, l := range b.logs {
		if c := w.heads[org]; c == nil || c.Size() < l.head.Size() {
			w.heads[org] = l.head
		}
	}
	w.mu.Unlock()
	return stored, true, nil
}

// lockHead locks org's log head row for the transaction and returns (a
// clone of) the head at the locked size: the cached one if no other node
// appended since, else rebuilt from the stored compact range and edge
// tiles.
func (w *writer) lockHead(ctx context.Context, tx pgx.Tx, org int64) (*tlog.Head, error) {
	var size int64
	var compact []byte
	err := tx.QueryRow(ctx, `SELECT size, compact FROM log_heads WHERE org_id = $1 FOR UPDATE`, org).Scan(&size, &compact)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, veritrail.Errorf(veritrail.ENotFound, "organization %d not found", org)
	}
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	h := w.heads[org]
	w.mu.Unlock()
	if h != nil && int64(h.Size()) == size {
		return h.Clone(), nil
	}
	if h != nil {
		w.sawOtherNode(org)
	}
	var edge []*tlog.Tile
	for _, id := range tlog.EdgeTiles(uint64(size)) {
		var hashes []byte
		if err := tx.QueryRow(ctx, `SELECT hashes FROM tiles WHERE org_id = $1 AND level = $2 AND idx = $3`,
			org, int16(id.Level), int64(id.Index)).Scan(&hashes); err != nil {
			return nil, fmt.Errorf("load tile %v of org %d: %w", id, org, err)
		}
		edge = append(edge, &tlog.Tile{ID: id, Hashes: hashes})
	}
	return tlog.LoadHead(uint64(size), compact, edge)
}

// queueHead queues the statements that persist the tiles a transaction
// changed and the new head.
func queueHead(b *pgx.Batch, org int64, h *tlog.Head) {
	if dirty := h.TakeDirty(); len(dirty) > 0 {
		levels := make([]int16, len(dirty))
		idxs := make([]int64, len(dirty))
		hashes := make([][]byte, len(dirty))
		for i, t := range dirty {
			levels[i], idxs[i], hashes[i] = int16(t.ID.Level), int64(t.ID.Index), t.Hashes
		}
		b.Queue(`INSERT INTO tiles (org_id, level, idx, hashes)
			SELECT $1, u.l, u.i, u.h FROM unnest($2::smallint[], $3::bigint[], $4::bytea[]) AS u(l, i, h)
			ON CONFLICT (org_id, level, idx) DO UPDATE SET hashes = excluded.hashes`, org, levels, idxs, hashes)
	}
	b.Queue(`UPDATE log_heads SET size = $2, root = $3, compact = $4 WHERE org_id = $1`,
		org, int64(h.Size()), h.Root(), h.CompactHashes())
}

// batchTx is one batch's transaction, as commitq.Assign sees it. Events
// are collected and written with COPY (events, then contents) before the
// commit.
type batchTx struct {
	tx      pgx.Tx
	logs    map[int64]*orgLog // the organizations whose heads are locked
	refused map[int64]error   // the organizations that do not exist
	enc     eventEncoder
}

// orgLog is one organization's log in a batch.
type orgLog struct {
	org  int64
	head *tlog.Head
	enc  *eventEncoder
}

// Log implements commitq.Tx.
func (b *batchTx) Log(ctx context.Context, org int64) (commitq.Log, error) {
	if err := b.refused[org]; err != nil {
		return nil, err
	}
	if l := b.logs[org]; l != nil {
		return l, nil
	}
	return nil, fmt.Errorf("postgres: org %d of the batch has no locked head", org)
}

// Head implements commitq.Log.
func (l *orgLog) Head() *tlog.Head { return l.head }

// Add implements commitq.Log.
func (l *orgLog) Add(ctx context.Context, e *veritrail.Event, envelope []byte) error {
	// Assign reuses envelope's memory for the next event.
	l.enc.events = append(l.enc.events, pendingEvent{l.org, e, slices.Clone(envelope)})
	return nil
}

// The id index, for commitq's resolution of event ids. Each request's
// claims sit in a savepoint so that a refused request leaves none.

// Savepoint implements commitq.IDIndex.
func (b *batchTx) Savepoint(ctx context.Context) error {
	_, err := b.tx.Exec(ctx, `SAVEPOINT req`)
	return err
}

// RollbackSavepoint implements commitq.IDIndex.
func (b *batchTx) RollbackSavepoint(ctx context.Context) error {
	if _, err := b.tx.Exec(ctx, `ROLLBACK TO SAVEPOINT req`); err != nil {
		return err
	}
	return b.ReleaseSavepoint(ctx)
}

// ReleaseSavepoint implements commitq.IDIndex.
func (b *batchTx) ReleaseSavepoint(ctx context.Context) error {
	_, err := b.tx.Exec(ctx, `RELEASE SAVEPOINT req`)
	return err
}

// ClaimIDs implements commitq.IDIndex in one statement.
func (b *batchTx) ClaimIDs(ctx context.Context, org int64, events []*veritrail.Event, first int64) (int64, error) {
	ids := make([]string, len(events))
	seqs := make([]int64, len(events))
	stamped := make([]bool, len(events))
	for i, e := range events {
		ids[i], seqs[i], stamped[i] = e.ID, first+int64(i), e.ServerTime
	}
	// The claimed rows are counted as they come back, not taken from the
	// command tag: Citus runs an INSERT … SELECT into a distributed table
	// through the coordinator and its tag counts the rows it sent, claimed
	// or not (tested on Citus 12.1: "INSERT 0 2" for one new id and one
	// taken), which stored an event a second time under an id it had.
	rows, err := b.tx.Query(ctx, `INSERT INTO event_ids (org_id, id, seq, server_time)
		SELECT $1, u.id, u.seq, NULLIF(u.st, false) FROM unnest($2::text[], $3::bigint[], $4::boolean[]) AS u(id, seq, st)
		ON CONFLICT DO NOTHING RETURNING seq`, org, ids, seqs, stamped)
	if err != nil {
		return 0, err
	}
	var n int64
	for rows.Next() {
		n++
	}
	rows.Close()
	return n, rows.Err()
}

// ClaimID implements commitq.IDIndex.
func (b *batchTx) ClaimID(ctx context.Context, org int64, e *veritrail.Event, seq int64) (bool, error) {
	tag, err := b.tx.Exec(ctx, `INSERT INTO event_ids (org_id, id, seq, server_time) VALUES ($1, $2, $3, NULLIF($4, false))
		ON CONFLICT DO NOTHING`, org, e.ID, seq, e.ServerTime)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// StoredByID implements commitq.IDIndex.
func (b *batchTx) StoredByID(ctx context.Context, org int64, id string) (st commitq.Stored, err error) {
	err = b.tx.QueryRow(ctx, `SELECT i.seq, e.envelope, c.salt, i.server_time IS NOT NULL FROM event_ids i
		JOIN events e ON e.org_id = i.org_id AND e.seq = i.seq
		LEFT JOIN contents c ON c.org_id = e.org_id AND c.seq = e.seq AND c.time_ns = e.time_ns
		WHERE i.org_id = $1 AND i.id = $2`, org, id).Scan(&st.Seq, &st.Envelope, &st.Salt, &st.ServerTime)
	return st, err
}
