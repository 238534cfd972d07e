package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

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

const ftsSchema = `
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
	meta, body,
	content = '', contentless_delete = 1, detail = column,
	tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS fts_state (
	org_id  INTEGER PRIMARY KEY,
	indexed INTEGER NOT NULL -- events 0 .. indexed-1 are in fts
);`

func openFTS(ctx context.Context, s *Store, path string, readOnly bool) (*ftsIndex, error) {
	q := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", q)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(0)
	if !readOnly {
		if _, err := db.ExecContext(ctx, ftsSchema); err != nil {
			db.Close()
			return nil, fmt.Errorf("full-text index %s: %w", path, err)
		}
	}
	return &ftsIndex{s: s, db: db, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}, nil
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

const ftsChunk = 2000

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
		rid        int64
		meta, body string
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
		e, err := veritrail.ParseEnvelope(env)
		if err != nil {
			rows.Close()
			return fmt.Errorf("full-text: event %d of org %d: %w", r&(1<<40-1), org, err)
		}
		buf = appendEnvelopeText(buf[:0], e)
		d := doc{rid: r, meta: string(buf)}
		if len(body) > 0 {
			d.body = string(appendContentText(buf[:0], body))
		}
		docs = append(docs, d)
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
	ins, err := tx.PrepareContext(ctx, `INSERT INTO fts (rowid, meta, body) VALUES (?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, d := range docs {
		if _, err := ins.ExecContext(ctx, d.rid, d.meta, d.body); err != nil {
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

// appendEnvelopeText is the searchable text of an envelope.
func appendEnvelopeText(dst []byte, e *veritrail.Event) []byte {
	add := func(s string) {
		if s != "" {
			dst = append(dst, s...)
			dst = append(dst, ' ')
		}
	}
	add(e.ID)
	add(e.Type)
	add(e.Actor.Type)
	add(e.Actor.ID)
	add(e.Actor.Email)
	add(e.Actor.Name)
	add(e.AgentID)
	add(e.TaskID)
	add(e.SessionID)
	add(e.Connector)
	add(e.Tool)
	if t := e.Target; t != nil {
		add(t.Type)
		add(t.ID)
		add(t.Name)
	}
	if c := e.Context; c != nil {
		add(c.TeamID)
		add(c.IP)
		add(c.UserAgent)
		add(c.RequestID)
	}
	add(e.Outcome)
	if e.Status != nil {
		add(strconv.FormatInt(*e.Status, 10))
	}
	if d := e.Decision; d != nil {
		add(d.Action)
		add(d.Policy)
		add(d.Reason)
	}
	return dst
}

// appendContentText extracts the string and number values of a canonical
// JSON object (keys are structure, not content, and are left out).
func appendContentText(dst, js []byte) []byte {
	for i := 0; i < len(js); {
		c := js[i]
		switch {
		case c == '"':
			j := i + 1
			for j < len(js) && js[j] != '"' {
				if js[j] == '\\' {
					j++
				}
				j++
			}
			str := js[i+1 : min(j, len(js))]
			i = j + 1
			if i < len(js) && js[i] == ':' {
				continue // an object key
			}
			dst = appendUnescaped(dst, str)
			dst = append(dst, ' ')
		case c == '-' || (c >= '0' && c <= '9'):
			j := i
			for j < len(js) && strings.IndexByte("+-.eE0123456789", js[j]) >= 0 {
				j++
			}
			dst = append(dst, js[i:j]...)
			dst = append(dst, ' ')
			i = j
		default:
			i++
		}
	}
	return dst
}

// appendUnescaped appends a JSON string body with escapes resolved enough
// for tokenizing (escaped characters become spaces).
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			if s[i+1] == 'u' {
				i += 5
			} else {
				i++
			}
			dst = append(dst, ' ')
			continue
		}
		dst = append(dst, s[i])
	}
	return dst
}

// ftsExpr turns a user's q into an FTS5 expression: every word must match,
// a trailing * makes the last token of a word a prefix. Words are split the
// way the unicode61 tokenizer splits text, and each token is quoted, so no
// user input is ever read as FTS5 syntax. Without content access the match
// is confined to envelope text.
func ftsExpr(q string, content bool) (string, error) {
	var terms []string
	for _, word := range strings.Fields(q) {
		word = strings.Trim(word, `"'`)
		prefix := strings.HasSuffix(word, "*")
		word = strings.TrimRight(word, "*")
		toks := strings.FieldsFunc(word, func(r rune) bool { return !isTokenRune(r) })
		for i, t := range toks {
			term := `"` + t + `"`
			if prefix && i == len(toks)-1 {
				term += "*"
			}
			terms = append(terms, term)
		}
	}
	if len(terms) == 0 {
		return "", veritrail.Errorf(veritrail.EInvalid, "parameter q: no searchable words in %q", q)
	}
	if len(terms) > 32 {
		return "", veritrail.Errorf(veritrail.EInvalid, "parameter q: at most 32 words")
	}
	expr := strings.Join(terms, " AND ")
	if !content {
		expr = "meta : (" + expr + ")"
	}
	return expr, nil
}

// isTokenRune mirrors unicode61: letters, numbers, marks and private-use
// characters are token characters, everything else separates tokens.
func isTokenRune(r rune) bool {
	return r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r) || unicode.Is(unicode.Co, r))
}
