package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// ftsIndex is the full-text index: an FTS5 table in its own database file,
// filled from committed events by a background goroutine. It trails the
// commit by about one batch and is rebuilt from the events if lost, so it
// costs the commit path nothing and runs on the second core.
type ftsIndex struct {
	s    *Store
	db   *sql.DB
	wake chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once

	started bool
	mu      sync.Mutex // one catch-up at a time
}

// ftsVersion changes whenever what the index holds changes; an index of
// another version is dropped and rebuilt from the events.
const ftsVersion = 3

// The index is one column, detail=none (no positions: the cheapest FTS5
// index to write). Envelope words are indexed as they are; content words
// carry the private-use prefix contentMark, so a reader who may not see
// content searches for "word" only and can never match, or probe, content.
const ftsSchema = `
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
	text,
	content = '', contentless_delete = 1, detail = none,
	tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS fts_state (
	org_id  INTEGER PRIMARY KEY,
	indexed INTEGER NOT NULL -- events 0 .. indexed-1 are in fts
);`

// contentMark prefixes content tokens (U+E000, a private-use character,
// which unicode61 treats as part of a token).
const contentMark = "\ue000"

func openFTS(ctx context.Context, s *Store, path string, readOnly bool) (*ftsIndex, error) {
	q := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=secure_delete(ON)&_txlock=immediate"
	db, err := sql.Open("sqlite", q)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(0)
	if !readOnly {
		if err := migrateFTS(ctx, db); err != nil {
			db.Close()
			return nil, fmt.Errorf("full-text index %s: %w", path, err)
		}
	}
	return &ftsIndex{s: s, db: db, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// migrateFTS creates the index, or drops one of another version so that the
// indexer rebuilds it from the events.
func migrateFTS(ctx context.Context, db *sql.DB) error {
	var v int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	if v != ftsVersion {
		for _, stmt := range []string{`DROP TABLE IF EXISTS fts`, `DROP TABLE IF EXISTS fts_state`} {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
	}
	if _, err := db.ExecContext(ctx, ftsSchema); err != nil {
		return err
	}
	// Merge 16 segments at a time instead of 4: fewer, larger merges halve
	// the merge work per token, at the cost of more segments to read.
	for _, stmt := range []string{
		`INSERT INTO fts (fts, rank) VALUES ('automerge', 16)`,
		`INSERT INTO fts (fts, rank) VALUES ('crisismerge', 64)`,
		// Deleted entries leave the index pages at once (retention, erasure).
		`INSERT INTO fts (fts, rank) VALUES ('secure-delete', 1)`,
		fmt.Sprintf(`PRAGMA user_version = %d`, ftsVersion),
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

func (f *ftsIndex) start() {
	f.started = true
	go f.loop()
}

func (f *ftsIndex) notify() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *ftsIndex) close() error {
	f.once.Do(func() { close(f.stop) })
	if f.started {
		<-f.done
	}
	return f.db.Close()
}

// ftsInterval is the least time between two indexing rounds: under load
// each round takes many commits' events, which FTS5 indexes far more
// cheaply than one commit at a time. It bounds how far search trails.
const ftsInterval = 200 * time.Millisecond

func (f *ftsIndex) loop() {
	defer close(f.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := f.catchUp(context.Background()); err != nil {
			f.s.log.Error("full-text indexing failed; will retry", slog.Any("err", err))
		}
		select {
		case <-f.stop:
			return
		case <-time.After(ftsInterval):
		}
		select {
		case <-f.stop:
			return
		case <-f.wake:
		case <-tick.C:
		}
	}
}

// indexed returns how many of org's events the index holds.
func (f *ftsIndex) indexed(ctx context.Context, org int64) (int64, error) {
	var n int64
	err := f.db.QueryRowContext(ctx, `SELECT indexed FROM fts_state WHERE org_id = ?`, org).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// SyncFullText waits until the full-text index holds every committed event (tests
// and tools that need read-your-writes for q).
func (s *Store) SyncFullText(ctx context.Context) error {
	return s.fts.catchUp(ctx)
}

const ftsChunk = 5000

// catchUp indexes every committed event not yet in the index.
func (f *ftsIndex) catchUp(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	rows, err := f.s.rdb.QueryContext(ctx, `SELECT org_id, size FROM log_heads`)
	if err != nil {
		return err
	}
	heads := map[int64]int64{}
	for rows.Next() {
		var org, size int64
		if err := rows.Scan(&org, &size); err != nil {
			rows.Close()
			return err
		}
		heads[org] = size
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	lag := int64(0)
	for org, size := range heads {
		done, err := f.indexed(ctx, org)
		if err != nil {
			return err
		}
		lag += size - done
	}
	f.s.obs.FullTextLag(lag)
	for org, size := range heads {
		for {
			done, err := f.indexed(ctx, org)
			if err != nil {
				return err
			}
			if done >= size {
				break
			}
			if err := f.indexRange(ctx, org, done, min(size, done+ftsChunk)); err != nil {
				return err
			}
		}
	}
	f.s.obs.FullTextLag(0)
	return nil
}

// indexRange adds events [from, to) of org to the index in one transaction.
func (f *ftsIndex) indexRange(ctx context.Context, org, from, to int64) error {
	rows, err := f.s.rdb.QueryContext(ctx, `SELECT e.rid, e.envelope, c.body FROM events e
		LEFT JOIN contents c ON c.rid = e.rid WHERE e.rid >= ? AND e.rid < ? ORDER BY e.rid`,
		rid(org, from), rid(org, to))
	if err != nil {
		return err
	}
	type doc struct {
		rid  int64
		text string
	}
	var docs []doc
	var buf []byte
	for rows.Next() {
		var r int64
		var env, body []byte
		if err := rows.Scan(&r, &env, &body); err != nil {
			rows.Close()
			return err
		}
		buf = veritrail.AppendEnvelopeText(buf[:0], env)
		buf = veritrail.AppendContentText(buf, body, contentMark)
		docs = append(docs, doc{rid: r, text: string(buf)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Re-read the watermark under the write lock: another indexer may have
	// moved it (an admin process, a restarted server).
	var done int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce((SELECT indexed FROM fts_state WHERE org_id = ?), 0)`, org).Scan(&done); err != nil {
		return err
	}
	if done != from {
		return nil
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO fts (rowid, text) VALUES (?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, d := range docs {
		if _, err := ins.ExecContext(ctx, d.rid, d.text); err != nil {
			return fmt.Errorf("full-text insert: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO fts_state (org_id, indexed) VALUES (?, ?)
		ON CONFLICT (org_id) DO UPDATE SET indexed = excluded.indexed`, org, to); err != nil {
		return err
	}
	return tx.Commit()
}

// match returns the rids in [lo, hi) matching a full-text expression, ascending.
func (f *ftsIndex) match(ctx context.Context, expr string, lo, hi int64) ([]int64, error) {
	rows, err := f.db.QueryContext(ctx, `SELECT rowid FROM fts WHERE fts MATCH ? AND rowid >= ? AND rowid < ? ORDER BY rowid`, expr, lo, hi)
	if err != nil {
		return nil, veritrail.Errorf(veritrail.EInvalid, "parameter q: the search could not be run (%v); use plain words, optionally ending in *", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var r int64
		if err := rows.Scan(&r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ftsExpr turns a user's q into an FTS5 expression: every word must match,
// a trailing * makes the last token of a word a prefix. Words are split the
// way the unicode61 tokenizer splits text, and each token is quoted, so no
// user input is ever read as FTS5 syntax. With content access a token may
// match envelope or content; without, only the envelope.
func ftsExpr(q string, content bool) (string, error) {
	words, err := veritrail.ParseText(q, []rune(contentMark)[0])
	if err != nil {
		return "", err
	}
	terms := make([]string, len(words))
	for i, w := range words {
		star := ""
		if w.Prefix {
			star = "*"
		}
		terms[i] = `"` + w.Token + `"` + star
		if content {
			terms[i] = `(` + terms[i] + ` OR "` + contentMark + w.Token + `"` + star + `)`
		}
	}
	return strings.Join(terms, " AND "), nil
}

// remove takes removed events out of the index: whole events for removed
// envelopes; for removed content, the event is indexed again from its
// envelope alone. With FTS5's secure-delete option the entries leave the
// index's pages at once, not as tombstones to be merged later.
func (f *ftsIndex) remove(ctx context.Context, org int64, envelopes, contents [][2]int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	done, err := f.indexed(ctx, org)
	if err != nil {
		return err
	}
	type doc struct {
		rid  int64
		text string
	}
	var redo []doc
	for _, r := range contents {
		if r[0] >= done {
			continue // not indexed yet: the indexer will see no content
		}
		rows, err := f.s.rdb.QueryContext(ctx, `SELECT rid, envelope FROM events WHERE rid >= ? AND rid <= ?`,
			rid(org, r[0]), rid(org, min(r[1], done-1)))
		if err != nil {
			return err
		}
		for rows.Next() {
			var d doc
			var env []byte
			if err := rows.Scan(&d.rid, &env); err != nil {
				rows.Close()
				return err
			}
			d.text = string(veritrail.AppendEnvelopeText(nil, env))
			redo = append(redo, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, rs := range [][][2]int64{envelopes, contents} {
		for _, r := range rs {
			if _, err := tx.ExecContext(ctx, `DELETE FROM fts WHERE rowid >= ? AND rowid <= ?`, rid(org, r[0]), rid(org, r[1])); err != nil {
				return fmt.Errorf("full-text removal: %w", err)
			}
		}
	}
	for _, d := range redo {
		if _, err := tx.ExecContext(ctx, `INSERT INTO fts (rowid, text) VALUES (?, ?)`, d.rid, d.text); err != nil {
			return fmt.Errorf("full-text re-index: %w", err)
		}
	}
	return tx.Commit()
}

// optimize merges the index's segments into one, leaving out every
// deleted entry and every term left without documents: after removals,
// the words of removed content are then gone from the file too.
func (f *ftsIndex) optimize(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.db.ExecContext(ctx, `INSERT INTO fts (fts) VALUES ('optimize')`)
	return err
}
