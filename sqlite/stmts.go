package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// stmts are the commit path's statements, bound to one transaction.
type stmts struct {
	claimID, storedByID                     *sql.Stmt
	putPosting, putBucket, putTile, putHead *sql.Stmt
	bucketPostings, delBucketPostings       *sql.Stmt
	setBucketRuns, putFrontier              *sql.Stmt

	claims, events, contents, postings *rowBatcher
	counts                             *rowBatcher // upserts into event_counts
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
	setBucketRuns, putFrontier              *sql.Stmt

	claims, events, contents, postings *rowTable
	counts                             *rowTable
	arena                              arena // reset by bind
}

func prepareWriteStmts(ctx context.Context, db *sql.DB) (*writeStmts, error) {
	w := &writeStmts{}
	for _, p := range []struct {
		dst *(*sql.Stmt)
		sql string
	}{
		{&w.claimID, `INSERT INTO event_ids (org_id, id, seq, server_time) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`},
		{&w.storedByID, `SELECT i.seq, e.envelope, c.salt, i.server_time IS NOT NULL FROM event_ids i
			JOIN events e ON e.rid = (i.org_id << 40 | i.seq)
			LEFT JOIN contents c ON c.rid = e.rid
			WHERE i.org_id = ? AND i.id = ?`},
		{&w.putPosting, `INSERT INTO postings (org_id, bucket, field, key, run, list) VALUES (?, ?, ?, ?, ?, ?)`},
		{&w.putBucket, `INSERT INTO buckets (org_id, bucket, min_time, max_time, count, runs) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (org_id, bucket) DO UPDATE SET min_time = excluded.min_time, max_time = excluded.max_time,
			count = excluded.count`},
		{&w.setBucketRuns, `UPDATE buckets SET runs = ? WHERE org_id = ? AND bucket = ?`},
		{&w.putFrontier, `INSERT INTO postings_frontier (org_id, seq) VALUES (?, ?)
			ON CONFLICT (org_id) DO UPDATE SET seq = excluded.seq`},
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
		{&w.claims, `INSERT INTO event_ids (org_id, id, seq, server_time) VALUES`, 4, `ON CONFLICT DO NOTHING`},
		{&w.events, `INSERT INTO events (rid, envelope) VALUES`, 2, ``},
		{&w.contents, `INSERT INTO contents (rid, salt, body) VALUES`, 3, ``},
		{&w.postings, `INSERT INTO postings (org_id, bucket, field, key, run, list) VALUES`, 6, ``},
		{&w.counts, countsInsert, 6, countsAdd},
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
		w.putBucket, w.putTile, w.putHead, w.bucketPostings, w.delBucketPostings, w.setBucketRuns, w.putFrontier} {
		if s != nil {
			s.Close()
		}
	}
	for _, t := range []*rowTable{w.claims, w.events, w.contents, w.postings, w.counts} {
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
		setBucketRuns: b(w.setBucketRuns), putFrontier: b(w.putFrontier),
		claims: w.claims.batcher(ctx, tx), events: w.events.batcher(ctx, tx),
		contents: w.contents.batcher(ctx, tx), postings: w.postings.batcher(ctx, tx),
		counts: w.counts.batcher(ctx, tx),
	}
}
