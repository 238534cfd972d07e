package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

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
// of organizations, so each writer caches the heads of its own.
type writer struct {
	s *Store
	// heads caches each organization's log head between commits; it is
	// checked against the locked row at every commit, since other nodes
	// append too.
	heads map[int64]*tlog.Head
}

// WriteBatch implements commitq.Writer.
func (w *writer) WriteBatch(ctx context.Context, batch []*commitq.Request) (stored int, err error) {
	tx, err := w.s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	b := &batchTx{tx: tx, logs: map[int64]*orgLog{}, refused: map[int64]error{}}
	defer func() {
		if err != nil {
			tx.Rollback(ctx)
			for org := range b.logs {
				delete(w.heads, org)
			}
		}
	}()
	// Lock every organization's head, in id order (no deadlock between
	// nodes), and bring the cached heads up to date.
	var orgs []int64
	for _, r := range batch {
		if !slices.Contains(orgs, r.Org) {
			orgs = append(orgs, r.Org)
		}
	}
	slices.Sort(orgs)
	for _, org := range orgs {
		h, err := w.lockHead(ctx, tx, org)
		if veritrail.ErrorCode(err) == veritrail.ENotFound {
			b.refused[org] = err
			continue
		}
		if err != nil {
			return 0, err
		}
		b.logs[org] = &orgLog{org: org, head: h, enc: &b.enc}
	}
	if stored, err = commitq.Assign(ctx, b, batch, w.s.now()); err != nil {
		return 0, err
	}
	// The rows by COPY, then the counts, tiles and heads in one round
	// trip.
	var tail pgx.Batch
	if n := len(b.enc.events); n > 0 {
		if err := copyIn(ctx, tx, "events", eventColumns, n, b.enc.eventRow); err != nil {
			return 0, fmt.Errorf("insert events: %w", err)
		}
		var withContent []int
		for i, p := range b.enc.events {
			if len(p.e.Content) > 0 {
				withContent = append(withContent, i)
			}
		}
		if len(withContent) > 0 {
			if err := copyIn(ctx, tx, "contents", contentColumns, len(withContent), b.enc.contentRow(withContent)); err != nil {
				return 0, fmt.Errorf("insert contents: %w", err)
			}
		}
		queueCounts(&tail, b.enc.events)
	}
	for _, org := range orgs {
		if l := b.logs[org]; l != nil {
			queueHead(&tail, org, l.head)
		}
	}
	if tail.Len() > 0 {
		if err := tx.SendBatch(ctx, &tail).Close(); err != nil {
			return 0, fmt.Errorf("write counts, tiles and log heads: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	for org, l := range b.logs {
		w.heads[org] = l.head
	}
	return stored, nil
}

// lockHead locks org's log head row for the transaction and returns the
// head at the locked size: the cached one if no other node appended since,
// else rebuilt from the stored compact range and edge tiles.
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
	if h := w.heads[org]; h != nil && int64(h.Size()) == size {
		return h, nil
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
	l.enc.events = append(l.enc.events, pendingEvent{l.org, e, l.enc.keep(envelope)})
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
