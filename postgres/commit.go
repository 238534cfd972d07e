package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"golang.org/x/text/unicode/norm"

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

// Append implements veritrail.EventStore. Concurrent calls on this node
// share one transaction (group commit); the transaction locks the log head
// row of each organization it appends to, so appends of other nodes to the
// same organization wait for it, and it returns once PostgreSQL committed.
func (s *Store) Append(ctx context.Context, org int64, events []*veritrail.Event) ([]veritrail.AppendResult, error) {
	if len(events) == 0 {
		return nil, nil
	}
	req := &appendReq{org: org, events: events, done: make(chan struct{})}
	s.closeMu.RLock()
	if s.closed {
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
	<-req.done
	return req.results, req.err
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

func (s *Store) commitLoop() {
	defer close(s.stopped)
	partitions := time.NewTicker(time.Hour)
	defer partitions.Stop()
	var batch []*appendReq
	for {
		batch = batch[:0]
		select {
		case r := <-s.queue:
			batch = append(batch, r)
		case <-partitions.C:
			if err := s.ensurePartitions(context.Background(), s.now()); err != nil {
				s.log.Error("creating the next months' partitions; will retry", slog.Any("err", err))
			}
			continue
		case <-s.closing:
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

func (s *Store) commit(batch []*appendReq) {
	start := time.Now()
	stored, err := s.commitTx(batch)
	if err != nil {
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
}

// rows are the events and contents of one transaction, written with COPY
// (binary): the cheapest way into PostgreSQL.
type rows struct {
	events   [][]any
	contents [][]any
}

// keyFields are the index-key columns, in table order.
var keyFields = [...]struct {
	col   string
	field veritrail.Field
}{
	{"type", veritrail.FieldType}, {"actor_id", veritrail.FieldActorID}, {"actor_email", veritrail.FieldActorEmail},
	{"actor_type", veritrail.FieldActorType}, {"agent_id", veritrail.FieldAgentID}, {"task_id", veritrail.FieldTaskID},
	{"session_id", veritrail.FieldSessionID}, {"outcome", veritrail.FieldOutcome}, {"connector", veritrail.FieldConnector},
	{"tool", veritrail.FieldTool}, {"status", veritrail.FieldStatus}, {"decision", veritrail.FieldDecision},
	{"ip", veritrail.FieldIP}, {"target_id", veritrail.FieldTargetID}, {"team_id", veritrail.FieldTeamID},
	{"target_type", veritrail.FieldTargetType},
}

// keyPos is 1 + the index in keyFields of each field that has a column,
// 0 for the others.
var keyPos = func() (p [256]uint8) {
	for i, k := range keyFields {
		p[k.field] = uint8(i + 1)
	}
	return p
}()

// column returns the column of an indexed field, "" if it has none.
func column(f veritrail.Field) string {
	if i := keyPos[f]; i > 0 {
		return keyFields[i-1].col
	}
	return ""
}

// eventColumns are the columns COPY fills, in rows.add's order.
var eventColumns = func() []string {
	cols := []string{"org_id", "seq", "time_ns", "id", "category"}
	for _, k := range keyFields {
		cols = append(cols, k.col)
	}
	return append(cols, "envelope", "tsv_env", "tsv_all")
}()

var contentColumns = []string{"org_id", "seq", "time_ns", "category", "salt", "body"}

// firstKey is the index of keyFields[0] in an events row.
const firstKey = 5

func (r *rows) add(org int64, e *veritrail.Event, env []byte) {
	cat := e.Category()
	t := e.Time.UnixNano()
	row := make([]any, firstKey+len(keyFields), len(eventColumns))
	row[0], row[1], row[2], row[3], row[4] = org, e.Seq, t, e.ID, cat
	// The keys Prepare computed (on the ingest goroutine, off this
	// loop); a column without a key stays nil: NULL.
	for _, k := range e.IndexKeys() {
		if i := keyPos[k.Field]; i > 0 {
			row[firstKey+int(i)-1] = []byte(k.Key)
		}
	}
	words := veritrail.AppendEnvelopeText(nil, env)
	var tsv tsvBuilder
	tsv.add(words)
	row = append(row, env, tsv.vector())
	if len(e.Content) > 0 {
		// The envelope's words, lowered and deduplicated once, then the
		// content's.
		tsv.add(veritrail.AppendContentText(words[:0], e.Content, ""))
		row = append(row, tsv.vector())
		r.contents = append(r.contents, []any{org, e.Seq, t, cat, e.ContentSalt, e.Content})
	} else {
		row = append(row, pgtype.TSVector{})
	}
	r.events = append(r.events, row)
}

// PostgreSQL's limits on a tsvector: the bytes of one lexeme, and of all
// its lexemes together. Longer words, and words past the total, are left
// out of the index: the event is stored all the same.
const (
	maxLexeme  = 2046
	maxLexemes = 1<<20 - 1
)

// tsvBuilder makes a tsvector of space-separated words: each word
// lower-cased, once, without positions; given as lexemes, so PostgreSQL's
// parser never re-splits them and the words are the same as the embedded
// store's.
type tsvBuilder struct {
	lexemes []pgtype.TSVectorLexeme
	seen    map[string]struct{}
	size    int
}

func (b *tsvBuilder) add(words []byte) {
	if b.seen == nil {
		b.seen = make(map[string]struct{}, 32)
	}
	for len(words) > 0 {
		var w []byte
		w, words, _ = bytes.Cut(words, []byte{' '})
		if len(w) == 0 {
			continue
		}
		// The length that counts is the lowered word's: ToLower can
		// lengthen a word (Ⱥ, 2 bytes, becomes ⱥ, 3).
		lw := lowerWord(w)
		if len(lw) > maxLexeme {
			continue
		}
		if _, dup := b.seen[string(lw)]; dup {
			continue
		}
		if b.size+len(lw) > maxLexemes {
			return
		}
		word := string(lw)
		b.seen[word] = struct{}{}
		b.lexemes = append(b.lexemes, pgtype.TSVectorLexeme{Word: word})
		b.size += len(lw)
	}
}

// vector returns the words added so far; later adds do not change it.
func (b *tsvBuilder) vector() pgtype.TSVector {
	return pgtype.TSVector{Lexemes: b.lexemes[:len(b.lexemes):len(b.lexemes)], Valid: true}
}

// lowerWord lower-cases a word and folds Latin letters' accents, without
// allocating when it is ASCII and already lower case.
func lowerWord(w []byte) []byte {
	upper := false
	for _, c := range w {
		if c >= utf8.RuneSelf {
			return foldAccents(bytes.ToLower(w))
		}
		upper = upper || c >= 'A' && c <= 'Z'
	}
	if upper {
		return bytes.ToLower(w)
	}
	return w
}

// foldAccents removes the combining marks that follow a Latin letter
// (é → e, Å → A; ø, ß and other letters without a decomposition stay), as
// SQLite's unicode61 tokenizer does with remove_diacritics 2, so that q
// matches the same words on both stores.
func foldAccents(w []byte) []byte {
	d := norm.NFD.Bytes(w)
	out := make([]byte, 0, len(d))
	latin := false
	for len(d) > 0 {
		r, n := utf8.DecodeRune(d)
		seg := d[:n]
		d = d[n:]
		if unicode.Is(unicode.Mn, r) {
			if latin {
				continue
			}
		} else {
			latin = unicode.Is(unicode.Latin, r)
		}
		out = append(out, seg...)
	}
	return norm.NFC.Bytes(out)
}

func (s *Store) commitTx(batch []*appendReq) (stored int, err error) {
	ctx := context.Background()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			tx.Rollback(ctx)
		}
	}()
	receivedAt := s.now().UTC().Truncate(time.Microsecond)

	// Lock every organization's head, in id order (no deadlock between
	// nodes), and bring the cached heads up to date.
	var orgs []int64
	for _, r := range batch {
		if !slices.Contains(orgs, r.org) {
			orgs = append(orgs, r.org)
		}
	}
	slices.Sort(orgs)
	heads := map[int64]*tlog.Head{}
	for _, org := range orgs {
		h, err := s.lockHead(ctx, tx, org)
		if veritrail.ErrorCode(err) == veritrail.ENotFound {
			for _, r := range batch {
				if r.org == org {
					r.err = err
				}
			}
			continue
		}
		if err != nil {
			return 0, err
		}
		heads[org] = h
	}

	var rs rows
	pending := map[int64]map[string]*veritrail.Event{}
	var envBuf []byte
	for _, r := range batch {
		head := heads[r.org]
		if head == nil {
			continue
		}
		if pending[r.org] == nil {
			pending[r.org] = map[string]*veritrail.Event{}
		}
		newIdx, err := s.resolveIDs(ctx, tx, r, int64(head.Size()), pending[r.org])
		if err != nil {
			return 0, err
		}
		if r.err != nil {
			continue
		}
		for _, i := range newIdx {
			e := r.events[i]
			if e.Seq != int64(head.Size()) {
				return 0, fmt.Errorf("postgres: seq drift for org %d: %d != %d", r.org, e.Seq, head.Size())
			}
			e.ReceivedAt = receivedAt
			e.SealContent()
			envBuf = veritrail.AppendEnvelope(append(envBuf[:0], 0), e)
			leaf := sha256.Sum256(envBuf)
			head.Append(leaf[:])
			rs.add(r.org, e, slices.Clone(envBuf[1:]))
			stored++
		}
	}
	if len(rs.events) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events"}, eventColumns, pgx.CopyFromRows(rs.events)); err != nil {
			return 0, fmt.Errorf("insert events: %w", err)
		}
	}
	if len(rs.contents) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"contents"}, contentColumns, pgx.CopyFromRows(rs.contents)); err != nil {
			return 0, fmt.Errorf("insert contents: %w", err)
		}
	}
	for _, org := range orgs {
		if h := heads[org]; h != nil {
			if err := writeHead(ctx, tx, org, h); err != nil {
				return 0, err
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	for org, h := range heads {
		s.heads[org] = h
	}
	return stored, nil
}

// lockHead locks org's log head row for the transaction and returns the
// head at the locked size: the cached one if no other node appended since,
// else rebuilt from the stored compact range and edge tiles.
func (s *Store) lockHead(ctx context.Context, tx pgx.Tx, org int64) (*tlog.Head, error) {
	var size int64
	var compact []byte
	err := tx.QueryRow(ctx, `SELECT size, compact FROM log_heads WHERE org_id = $1 FOR UPDATE`, org).Scan(&size, &compact)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, veritrail.Errorf(veritrail.ENotFound, "organization %d not found", org)
	}
	if err != nil {
		return nil, err
	}
	if h := s.heads[org]; h != nil && int64(h.Size()) == size {
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

// writeHead persists the tiles a transaction changed and the new head.
func writeHead(ctx context.Context, tx pgx.Tx, org int64, h *tlog.Head) error {
	dirty := h.TakeDirty()
	if len(dirty) > 0 {
		levels := make([]int16, len(dirty))
		idxs := make([]int64, len(dirty))
		hashes := make([][]byte, len(dirty))
		for i, t := range dirty {
			levels[i], idxs[i], hashes[i] = int16(t.ID.Level), int64(t.ID.Index), t.Hashes
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tiles (org_id, level, idx, hashes)
			SELECT $1, u.l, u.i, u.h FROM unnest($2::smallint[], $3::bigint[], $4::bytea[]) AS u(l, i, h)
			ON CONFLICT (org_id, level, idx) DO UPDATE SET hashes = excluded.hashes`, org, levels, idxs, hashes); err != nil {
			return fmt.Errorf("write tiles: %w", err)
		}
	}
	_, err := tx.Exec(ctx, `UPDATE log_heads SET size = $2, root = $3, compact = $4 WHERE org_id = $1`,
		org, int64(h.Size()), h.Root(), h.CompactHashes())
	return err
}

// resolveIDs claims the request's ids (next is the first free seq) and
// decides for each event whether it is new, a duplicate or a conflict, as
// the embedded store does. It returns the indexes of the new events, whose
// Seq it sets; on a conflict it sets r.err and undoes the request's claims.
func (s *Store) resolveIDs(ctx context.Context, tx pgx.Tx, r *appendReq, next int64, pending map[string]*veritrail.Event) ([]int, error) {
	sp, err := tx.Begin(ctx) // a savepoint
	if err != nil {
		return nil, err
	}
	r.results = make([]veritrail.AppendResult, len(r.events))
	// Fast path: every id new.
	ids := make([]string, len(r.events))
	seqs := make([]int64, len(r.events))
	fast := true
	seen := make(map[string]bool, len(r.events))
	for i, e := range r.events {
		if seen[e.ID] || pending[e.ID] != nil {
			fast = false
			break
		}
		seen[e.ID] = true
		ids[i], seqs[i] = e.ID, next+int64(i)
	}
	if fast {
		tag, err := sp.Exec(ctx, `INSERT INTO event_ids (org_id, id, seq) SELECT $1, u.id, u.seq FROM unnest($2::text[], $3::bigint[]) AS u(id, seq)
			ON CONFLICT DO NOTHING`, r.org, ids, seqs)
		if err != nil {
			sp.Rollback(ctx)
			return nil, fmt.Errorf("claim ids: %w", err)
		}
		if tag.RowsAffected() == int64(len(r.events)) {
			if err := sp.Commit(ctx); err != nil {
				return nil, err
			}
			newIdx := make([]int, len(r.events))
			for i, e := range r.events {
				e.Seq = seqs[i]
				r.results[i] = veritrail.AppendResult{Seq: e.Seq}
				pending[e.ID] = e
				newIdx[i] = i
			}
			return newIdx, nil
		}
		if err := sp.Rollback(ctx); err != nil {
			return nil, err
		}
		if sp, err = tx.Begin(ctx); err != nil {
			return nil, err
		}
	}
	// Event by event.
	local := map[string]*veritrail.Event{}
	var newIdx []int
	conflict := func(i int, seq int64) error {
		r.results = nil
		r.err = &veritrail.Error{Code: veritrail.EConflict, Index: i, Field: "id", Message: fmt.Sprintf(
			"event %d: id %q is already stored (seq %d) with different content; use a new id for a new event", i, r.events[i].ID, seq)}
		return sp.Rollback(ctx)
	}
	for i, e := range r.events {
		p := local[e.ID]
		if p == nil {
			p = pending[e.ID]
		}
		if p != nil {
			if !veritrail.SameSubmission(e, p) {
				return nil, conflict(i, p.Seq)
			}
			r.results[i] = veritrail.AppendResult{Seq: p.Seq, Duplicate: true}
			continue
		}
		tag, err := sp.Exec(ctx, `INSERT INTO event_ids (org_id, id, seq) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, r.org, e.ID, next)
		if err != nil {
			sp.Rollback(ctx)
			return nil, fmt.Errorf("claim id: %w", err)
		}
		if tag.RowsAffected() == 1 {
			e.Seq = next
			r.results[i] = veritrail.AppendResult{Seq: next}
			local[e.ID] = e
			newIdx = append(newIdx, i)
			next++
			continue
		}
		var seq int64
		var env, salt []byte
		if err := sp.QueryRow(ctx, `SELECT i.seq, e.envelope, c.salt FROM event_ids i
			JOIN events e ON e.org_id = i.org_id AND e.seq = i.seq
			LEFT JOIN contents c ON c.org_id = e.org_id AND c.seq = e.seq AND c.time_ns = e.time_ns
			WHERE i.org_id = $1 AND i.id = $2`, r.org, e.ID).Scan(&seq, &env, &salt); err != nil {
			sp.Rollback(ctx)
			return nil, fmt.Errorf("load stored event %q: %w", e.ID, err)
		}
		same, err := veritrail.SameAsStored(e, env, salt)
		if err != nil {
			sp.Rollback(ctx)
			return nil, err
		}
		if !same {
			return nil, conflict(i, seq)
		}
		r.results[i] = veritrail.AppendResult{Seq: seq, Duplicate: true}
	}
	if err := sp.Commit(ctx); err != nil {
		return nil, err
	}
	for id, e := range local {
		pending[id] = e
	}
	return newIdx, nil
}

// EventByID implements veritrail.EventStore: one statement, from the id
// to the event (and its content), in one snapshot.
func (s *Store) EventByID(ctx context.Context, org int64, id string, withContent bool) (*veritrail.StoredEvent, error) {
	start := time.Now()
	defer func() { s.obs.QueryDone("get", time.Since(start)) }()
	sql := `SELECT e.seq, e.time_ns, e.envelope, NULL::bytea, NULL::bytea FROM event_ids i
		JOIN events e ON e.org_id = i.org_id AND e.seq = i.seq
		WHERE i.org_id = $1 AND i.id = $2`
	if withContent {
		sql = `SELECT e.seq, e.time_ns, e.envelope, c.salt, c.body FROM event_ids i
			JOIN events e ON e.org_id = i.org_id AND e.seq = i.seq
			LEFT JOIN contents c ON c.org_id = e.org_id AND c.time_ns = e.time_ns AND c.seq = e.seq
			WHERE i.org_id = $1 AND i.id = $2`
	}
	var ev veritrail.StoredEvent
	err := s.pool.QueryRow(ctx, sql, org, id).Scan(&ev.Seq, &ev.TimeNS, &ev.Envelope, &ev.Salt, &ev.Content)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, veritrail.Errorf(veritrail.ENotFound, "event %q not found", id)
	}
	if err != nil {
		return nil, err
	}
	return &ev, nil
}
