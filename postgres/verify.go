package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/verify"
)

// VerifySource is a PostgreSQL store opened for veritrail verify --db: a
// verify.Source that only reads. Every transaction is READ ONLY, nothing is
// migrated or created, and every read shares one snapshot, exported by a
// transaction held open until Close: the logs are checked as they stood at
// one instant while nodes go on appending.
type VerifySource struct {
	pool     *pgxpool.Pool
	leader   pgx.Tx // holds the snapshot
	snapshot string
}

// snapshotID is the form of pg_export_snapshot's result, checked before it
// is spliced into SET TRANSACTION SNAPSHOT.
var snapshotID = regexp.MustCompile(`^[0-9A-Fa-f-]+$`)

// OpenVerifySource connects to the database at url for verification.
func OpenVerifySource(ctx context.Context, url string) (*VerifySource, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: the database URL: %w (expected postgres://user:password@host:5432/db)", err)
	}
	// Belt and braces: the server refuses any write from these sessions.
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	v := &VerifySource{pool: pool}
	if err := v.start(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return v, nil
}

func (v *VerifySource) start(ctx context.Context) error {
	var ok bool
	if err := v.pool.QueryRow(ctx, `SELECT to_regclass('log_heads') IS NOT NULL AND to_regclass('events') IS NOT NULL`).Scan(&ok); err != nil {
		return fmt.Errorf("postgres: cannot reach the database: %w", err)
	}
	if !ok {
		return errors.New("postgres: this database holds no Veritrail store (no log_heads or events table)")
	}
	tx, err := v.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&v.snapshot); err != nil {
		tx.Rollback(ctx)
		return fmt.Errorf("postgres: export a snapshot: %w", err)
	}
	if !snapshotID.MatchString(v.snapshot) {
		tx.Rollback(ctx)
		return fmt.Errorf("postgres: unexpected snapshot id %q", v.snapshot)
	}
	v.leader = tx
	return nil
}

// Close ends the snapshot and closes the connections.
func (v *VerifySource) Close() error {
	v.leader.Rollback(context.Background())
	v.pool.Close()
	return nil
}

// begin starts a read-only transaction on the shared snapshot; the caller
// rolls it back.
func (v *VerifySource) begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := v.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `SET TRANSACTION SNAPSHOT '`+v.snapshot+`'`); err != nil {
		tx.Rollback(ctx)
		return nil, fmt.Errorf("postgres: join the snapshot: %w", err)
	}
	return tx, nil
}

// read runs fn in a transaction on the shared snapshot.
func (v *VerifySource) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := v.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	return fn(tx)
}

// Logs implements verify.Source: every organization.
func (v *VerifySource) Logs(ctx context.Context) ([]verify.LogRef, error) {
	var out []verify.LogRef
	err := v.read(ctx, func(tx pgx.Tx) error {
		var prefix string
		err := tx.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'x_log_origin_prefix'`).Scan(&prefix)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, name FROM orgs ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var ref verify.LogRef
			if err := rows.Scan(&ref.ID, &ref.Org); err != nil {
				return err
			}
			if prefix != "" {
				ref.Origin = prefix + "/" + ref.Org
			}
			out = append(out, ref)
		}
		return rows.Err()
	})
	return out, err
}

// Open implements verify.Source.
func (v *VerifySource) Open(_ context.Context, ref verify.LogRef) (verify.LogReader, error) {
	return &verifyLog{v: v, org: ref.ID, tiles: map[int64][]byte{}}, nil
}

// verifyLog reads one organization's log as stored.
type verifyLog struct {
	v   *VerifySource
	org int64
	// derived: an IndexChecker was made, so Events reads the derived
	// columns too.
	derived bool
	tiles   map[int64][]byte // level-0 tiles read ahead
}

// Info implements verify.LogReader.
func (l *verifyLog) Info(ctx context.Context) (*verify.Info, error) {
	info := &verify.Info{StoredLeaves: true}
	err := l.v.read(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT size FROM log_heads WHERE org_id = $1`, l.org).Scan(&info.Size)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT note FROM checkpoints WHERE org_id = $1 ORDER BY size`, l.org)
		if err != nil {
			return err
		}
		info.Checkpoints, err = pgx.CollectRows(rows, pgx.RowTo[[]byte])
		return err
	})
	return info, err
}

// Removals implements verify.LogReader.
func (l *verifyLog) Removals(ctx context.Context) ([]*veritrail.Removal, error) {
	var out []*veritrail.Removal
	err := l.v.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT seq_from, seq_to, what, reason, record FROM removals WHERE org_id = $1 ORDER BY seq_from, what`, l.org)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r veritrail.Removal
			if err := rows.Scan(&r.From, &r.To, &r.What, &r.Reason, &r.Record); err != nil {
				return err
			}
			out = append(out, &r)
		}
		return rows.Err()
	})
	return out, err
}

// tilesAhead is how many level-0 tiles one read fetches: the checker asks
// for them in order, so one round trip serves 64 × 256 positions.
const tilesAhead = 64

// LeafTile implements verify.LogReader.
func (l *verifyLog) LeafTile(ctx context.Context, index int64) ([]byte, error) {
	if t, ok := l.tiles[index]; ok {
		return t, nil
	}
	clear(l.tiles)
	err := l.v.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT idx, hashes FROM tiles WHERE org_id = $1 AND level = 0 AND idx >= $2 AND idx < $3 ORDER BY idx`,
			l.org, index, index+tilesAhead)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var i int64
			var h []byte
			if err := rows.Scan(&i, &h); err != nil {
				return err
			}
			l.tiles[i] = h
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	for i := index; i < index+tilesAhead; i++ {
		if _, ok := l.tiles[i]; !ok {
			l.tiles[i] = nil // none stored: not asked again
		}
	}
	if l.tiles[index] == nil {
		return nil, veritrail.Errorf(veritrail.ENotFound, "tile 0/%d not found", index)
	}
	return l.tiles[index], nil
}

// Record implements verify.RecordReader.
func (l *verifyLog) Record(ctx context.Context, id string) (envelope, content []byte, err error) {
	err = l.v.read(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT e.envelope, c.body FROM event_ids i
			JOIN events e ON e.org_id = i.org_id AND e.seq = i.seq
			LEFT JOIN contents c ON c.org_id = e.org_id AND c.time_ns = e.time_ns AND c.seq = e.seq
			WHERE i.org_id = $1 AND i.id = $2`, l.org, id).Scan(&envelope, &content)
		if errors.Is(err, pgx.ErrNoRows) {
			return veritrail.Errorf(veritrail.ENotFound, "event %q not found", id)
		}
		return err
	})
	return envelope, content, err
}

// derivedRow is what the store keeps derived from one event: its events
// row's columns besides the envelope, and its contents row's copies of
// time and category.
type derivedRow struct {
	timeNS         int64
	id, category   string
	keys           [len(keyFields)][]byte // nil: NULL
	tsvEnv, tsvAll pgtype.TSVector
	hasContent     bool
	contentTimeNS  int64
	contentCat     string
}

// Events implements verify.LogReader: the events and contents tables read
// as two sequential scans in seq order (on two connections of the
// snapshot), merged by seq.
func (l *verifyLog) Events(ctx context.Context, from, to int64, fn func(*verify.Event) error) error {
	evTx, err := l.v.begin(ctx)
	if err != nil {
		return err
	}
	defer evTx.Rollback(ctx)
	ctTx, err := l.v.begin(ctx)
	if err != nil {
		return err
	}
	defer ctTx.Rollback(ctx)
	ecols, ccols := "seq, envelope", "seq, salt, body"
	if l.derived {
		ecols += ", time_ns, id, category"
		for _, k := range keyFields {
			ecols += ", " + k.col
		}
		ecols += ", tsv_env, tsv_all"
		ccols += ", time_ns, category"
	}
	evs, err := evTx.Query(ctx, `SELECT `+ecols+` FROM events WHERE org_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq`, l.org, from, to)
	if err != nil {
		return err
	}
	defer evs.Close()
	cts, err := ctTx.Query(ctx, `SELECT `+ccols+` FROM contents WHERE org_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq`, l.org, from, to)
	if err != nil {
		return err
	}
	defer cts.Close()
	var (
		cseq         int64 = -1
		salt, body   pgtype.DriverBytes
		ctime        int64
		ccat         string
		contentsLeft = true
	)
	nextContent := func() error {
		if !cts.Next() {
			contentsLeft, cseq = false, to
			return cts.Err()
		}
		if l.derived {
			return cts.Scan(&cseq, &salt, &body, &ctime, &ccat)
		}
		return cts.Scan(&cseq, &salt, &body)
	}
	if err := nextContent(); err != nil {
		return err
	}
	var seq int64
	var env pgtype.DriverBytes
	for evs.Next() {
		ev := verify.Event{}
		if l.derived {
			d := &derivedRow{}
			dest := []any{&seq, &env, &d.timeNS, &d.id, &d.category}
			for i := range d.keys {
				dest = append(dest, &d.keys[i])
			}
			if err := evs.Scan(append(dest, &d.tsvEnv, &d.tsvAll)...); err != nil {
				return err
			}
			ev.Derived = d
		} else if err := evs.Scan(&seq, &env); err != nil {
			return err
		}
		for contentsLeft && cseq < seq {
			if err := nextContent(); err != nil {
				return err
			}
		}
		ev.Seq, ev.Envelope = seq, env
		if contentsLeft && cseq == seq {
			ev.Content, ev.Salt = []byte(body), salt
			if ev.Content == nil {
				ev.Content = []byte{} // a row with an empty body is still content
			}
			if d, ok := ev.Derived.(*derivedRow); ok {
				d.hasContent, d.contentTimeNS, d.contentCat = true, ctime, ccat
			}
		}
		if err := fn(&ev); err != nil {
			return err
		}
	}
	return evs.Err()
}

// IndexChecker implements verify.IndexSource: every column of events and
// contents derived from the envelope (time, id, category, the index-key
// columns, the full-text vectors) re-derived and compared row by row, and
// the id index read in seq order beside the events.
func (l *verifyLog) IndexChecker(ctx context.Context, opts verify.IndexOptions) (verify.IndexChecker, error) {
	tx, err := l.v.begin(ctx)
	if err != nil {
		return nil, err
	}
	ids, err := tx.Query(ctx, `SELECT seq, id FROM event_ids WHERE org_id = $1 ORDER BY seq, id`, l.org)
	if err != nil {
		tx.Rollback(ctx)
		return nil, err
	}
	l.derived = true
	c := &indexChecker{ctx: ctx, tx: tx, ids: ids, fail: opts.Fail, strays: map[string]int64{}}
	if err := c.nextID(); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// indexChecker compares a PostgreSQL store's derived data with the events.
type indexChecker struct {
	ctx  context.Context
	tx   pgx.Tx
	ids  pgx.Rows // event_ids in seq order
	fail func(seq int64, kind, detail string)
	// The id index row ahead (idSeq is 1<<62 past the end).
	idSeq int64
	id    string
	// strays are id index rows whose seq holds an event with another id:
	// reported with the event whose id they hold, if it is stored, or at
	// the end.
	strays map[string]int64
}

func (c *indexChecker) nextID() error {
	if !c.ids.Next() {
		c.idSeq = 1 << 62
		return c.ids.Err()
	}
	return c.ids.Scan(&c.idSeq, &c.id)
}

func (c *indexChecker) close() {
	c.ids.Close()
	c.tx.Rollback(c.ctx)
}

// Event implements verify.IndexChecker.
func (c *indexChecker) Event(ev *verify.Checked) error {
	d, _ := ev.Derived.(*derivedRow)
	if d == nil {
		return fmt.Errorf("postgres: event %d was read without its derived columns", ev.Seq)
	}
	seq, e := ev.Seq, ev.Event
	// The id index rows up to this seq.
	found := false
	for c.idSeq <= seq {
		switch {
		case c.idSeq < seq:
			c.strays[c.id] = c.idSeq // no event stored there
		case e == nil:
			// Unreadable envelope (reported): its id is unknown.
		case c.id == e.ID:
			found = true
		default:
			c.strays[c.id] = c.idSeq
		}
		if err := c.nextID(); err != nil {
			return err
		}
	}
	if e == nil {
		return nil // the log check reports unreadable envelopes
	}
	if !found {
		if at, ok := c.strays[e.ID]; ok {
			delete(c.strays, e.ID)
			c.fail(seq, verify.KindIDIndex, fmt.Sprintf("the id index sends id %q to seq %d", e.ID, at))
		} else {
			c.fail(seq, verify.KindIDIndex, fmt.Sprintf("id %q is missing from the id index: GET /events/{id} would not find it", e.ID))
		}
	}
	column := func(col string) {
		c.fail(seq, verify.KindIndex, fmt.Sprintf("the events column %s differs from what the envelope gives: a search or retention by it would miss the event or take it wrongly", col))
	}
	if d.timeNS != e.Time.UnixNano() {
		column("time_ns")
	}
	if d.id != e.ID {
		column("id")
	}
	if d.category != e.Category() {
		column("category")
	}
	var want [len(keyFields)]*string
	keys := e.IndexKeys()
	for i := range keys {
		if p := keyPos[keys[i].Field]; p > 0 {
			want[p-1] = &keys[i].Key
		}
	}
	for i, k := range keyFields {
		got := d.keys[i]
		if (want[i] == nil) != (got == nil) || want[i] != nil && string(got) != *want[i] {
			column(k.col)
		}
	}
	// The words, as rows.add makes them at commit.
	words := veritrail.AppendEnvelopeText(nil, ev.Envelope)
	var tsv tsvBuilder
	tsv.add(words)
	if !sameWords(tsv.vector(), d.tsvEnv) {
		c.fail(seq, verify.KindIndex, "the full-text words of the envelope (tsv_env) differ from the envelope's: a text search would miss the event or find it wrongly")
	}
	if len(ev.Content) > 0 {
		tsv.add(veritrail.AppendContentText(words[:0], ev.Content, ""))
		if !sameWords(tsv.vector(), d.tsvAll) {
			c.fail(seq, verify.KindIndex, "the full-text words of envelope and content (tsv_all) differ from theirs: a text search would miss the event or find it wrongly")
		}
	} else if d.tsvAll.Valid {
		c.fail(seq, verify.KindIndex, "the event has full-text words of content (tsv_all) but no content is stored")
	}
	if d.hasContent && (d.contentTimeNS != e.Time.UnixNano() || d.contentCat != e.Category()) {
		c.fail(seq, verify.KindIndex, "the contents row's time_ns or category differs from the envelope's: retention would keep or drop the content wrongly")
	}
	return nil
}

// sameWords reports whether a stored tsvector holds exactly the words of
// want (PostgreSQL keeps lexemes sorted; the builder keeps them in order
// of appearance).
func sameWords(want, got pgtype.TSVector) bool {
	if !got.Valid || len(want.Lexemes) != len(got.Lexemes) {
		return false
	}
	w := make([]string, len(want.Lexemes))
	for i, l := range want.Lexemes {
		w[i] = l.Word
	}
	slices.Sort(w)
	g := make([]string, len(got.Lexemes))
	for i, l := range got.Lexemes {
		g[i] = l.Word
	}
	slices.Sort(g)
	return slices.Equal(w, g)
}

// Finish implements verify.IndexChecker: the id index rows past the last
// event, and those that hold the id of no stored event.
func (c *indexChecker) Finish() error {
	defer c.close()
	for c.idSeq < 1<<62 {
		c.strays[c.id] = c.idSeq
		if err := c.nextID(); err != nil {
			return err
		}
	}
	type stray struct {
		id  string
		seq int64
	}
	var left []stray
	for id, seq := range c.strays {
		left = append(left, stray{id, seq})
	}
	slices.SortFunc(left, func(a, b stray) int { return cmp.Or(cmp.Compare(a.seq, b.seq), strings.Compare(a.id, b.id)) })
	for _, s := range left {
		c.fail(s.seq, verify.KindIDIndex, fmt.Sprintf("the id index holds id %q at seq %d, which no stored event has", s.id, s.seq))
	}
	return nil
}
