package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// deadField holds, per bucket, the offsets whose envelopes retention
// removed (a tombstone list): their times stay in the times runs so that
// offsets keep their meaning, and queries skip them.
const deadField = 254

var deadKey = []byte{0}

// OrgSettings implements veritrail.SettingsStore.
func (s *Store) OrgSettings(ctx context.Context, org int64) (*veritrail.Settings, error) {
	var body string
	err := s.rdb.QueryRowContext(ctx, `SELECT body FROM settings WHERE org_id = ?`, org).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return veritrail.DefaultSettings(), nil
	}
	if err != nil {
		return nil, err
	}
	var st veritrail.Settings
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return nil, fmt.Errorf("settings of org %d: %w", org, err)
	}
	return &st, nil
}

// PutOrgSettings implements veritrail.SettingsStore.
func (s *Store) PutOrgSettings(ctx context.Context, org int64, st *veritrail.Settings) error {
	body, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = s.wdb.ExecContext(ctx, `INSERT INTO settings (org_id, body, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (org_id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`, org, string(body), s.now().UnixNano())
	return err
}

// Removals implements veritrail.RetentionStore.
func (s *Store) Removals(ctx context.Context, org int64, fromSeq int64, limit int) ([]*veritrail.Removal, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT seq_from, seq_to, what, reason, record, at FROM removals
		WHERE org_id = ? AND seq_to >= ? ORDER BY seq_from, what LIMIT ?`, org, fromSeq, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*veritrail.Removal
	for rows.Next() {
		var r veritrail.Removal
		var at int64
		if err := rows.Scan(&r.From, &r.To, &r.What, &r.Reason, &r.Record, &at); err != nil {
			return nil, err
		}
		r.At = time.Unix(0, at).UTC()
		out = append(out, &r)
	}
	return out, rows.Err()
}

// removalPlan is what one bucket loses in one run.
type removalPlan struct {
	bucket    int64
	envelopes []uint32 // offsets whose envelope (and content) go
	contents  []uint32 // offsets whose content goes, envelope kept
	// emptied: after the plan, no envelope of the bucket is left.
	emptied bool
	size    int // events in the bucket
	// category of each offset (expiry plans only)
	category []string
}

// Expire implements veritrail.RetentionStore. It works a bucket at a time:
// each bucket is planned from the index (times, types, tombstones) with a
// read, then changed in one short transaction of the commit loop, so
// memory stays bounded and ingest pauses only for that transaction.
func (s *Store) Expire(ctx context.Context, org int64, c *veritrail.Cutoffs, record string) (*veritrail.RemovalResult, error) {
	latest := c.Latest()
	res := &veritrail.RemovalResult{}
	if latest == 0 {
		return res, nil
	}
	buckets, err := s.bucketsBefore(ctx, org, latest)
	if err != nil {
		return nil, err
	}
	for _, b := range buckets {
		plan, err := s.planExpiry(ctx, org, b, c)
		if err != nil {
			return res, err
		}
		if err := s.applyRemoval(ctx, org, plan, "retention", record, res); err != nil {
			return res, err
		}
	}
	return res, s.afterRemoval(ctx, org, res)
}

// PreviewExpiry implements veritrail.RetentionStore: Expire's plans,
// counted instead of carried out.
func (s *Store) PreviewExpiry(ctx context.Context, org int64, c *veritrail.Cutoffs) (map[string]*veritrail.RemovalCounts, error) {
	out := map[string]*veritrail.RemovalCounts{}
	latest := c.Latest()
	if latest == 0 {
		return out, nil
	}
	buckets, err := s.bucketsBefore(ctx, org, latest)
	if err != nil {
		return nil, err
	}
	count := func(o uint32, p *removalPlan) *veritrail.RemovalCounts {
		cat := p.category[o]
		if out[cat] == nil {
			out[cat] = &veritrail.RemovalCounts{}
		}
		return out[cat]
	}
	for _, b := range buckets {
		plan, err := s.planExpiry(ctx, org, b, c)
		if err != nil {
			return nil, err
		}
		for _, o := range plan.envelopes {
			count(o, plan).Envelopes++
		}
		for _, o := range plan.contents {
			count(o, plan).Contents++
		}
	}
	return out, nil
}

// EraseContent implements veritrail.RetentionStore.
func (s *Store) EraseContent(ctx context.Context, org int64, f veritrail.Filter, held *veritrail.HeldSet, record string) (*veritrail.RemovalResult, error) {
	if f.Field != veritrail.FieldActorID && f.Field != veritrail.FieldActorEmail {
		return nil, veritrail.Errorf(veritrail.EInvalid, "erasure is by actor_id or actor_email")
	}
	res := &veritrail.RemovalResult{}
	buckets, err := s.bucketsBefore(ctx, org, 1<<62)
	if err != nil {
		return nil, err
	}
	for _, b := range buckets {
		offs, err := s.erasedOffsets(ctx, org, b, &f)
		if err != nil {
			return res, err
		}
		if len(offs) == 0 {
			continue
		}
		present, err := s.contentPresent(ctx, org, b)
		if err != nil {
			return res, err
		}
		plan := &removalPlan{bucket: b}
		for _, o := range offs {
			if present[o] && !held.Held(b<<s.shift+int64(o)) {
				plan.contents = append(plan.contents, o)
			}
		}
		if err := s.applyRemoval(ctx, org, plan, "erasure", record, res); err != nil {
			return res, err
		}
	}
	return res, s.afterRemoval(ctx, org, res)
}

// erasedOffsets returns the offsets in bucket b of the events that
// filter f's ranges select, in a snapshot of their own (postings and tail).
func (s *Store) erasedOffsets(ctx context.Context, org, b int64, f *veritrail.Filter) ([]uint32, error) {
	e, err := s.beginQuery(ctx, org, &veritrail.Query{})
	if err != nil {
		return nil, err
	}
	defer e.end()
	return e.postings(bucketRow{num: b}, f.Field, f.Ranges)
}

// bucketsBefore lists org's buckets holding events older than t.
func (s *Store) bucketsBefore(ctx context.Context, org, t int64) ([]int64, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT bucket FROM buckets WHERE org_id = ? AND min_time < ? ORDER BY bucket`, org, t)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var b int64
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// contentPresent returns which offsets of a bucket still have content.
func (s *Store) contentPresent(ctx context.Context, org, bucket int64) (map[uint32]bool, error) {
	base := bucket << s.shift
	rows, err := s.rdb.QueryContext(ctx, `SELECT rid FROM contents WHERE rid >= ? AND rid < ?`,
		rid(org, base), rid(org, base+1<<s.shift))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uint32]bool{}
	for rows.Next() {
		var r int64
		if err := rows.Scan(&r); err != nil {
			return nil, err
		}
		out[uint32(r-rid(org, base))] = true
	}
	return out, rows.Err()
}

// planExpiry decides what a bucket loses under the cutoffs.
func (s *Store) planExpiry(ctx context.Context, org, bucket int64, c *veritrail.Cutoffs) (*removalPlan, error) {
	// One snapshot: the bucket's summary, postings and tail agree.
	e, err := s.beginQuery(ctx, org, &veritrail.Query{})
	if err != nil {
		return nil, err
	}
	defer e.end()
	var count int64
	if err := e.conn.QueryRowContext(ctx, `SELECT count FROM buckets WHERE org_id = ? AND bucket = ?`, org, bucket).Scan(&count); err != nil {
		return nil, err
	}
	data, err := loadBucketData(ctx, e.pc, org, bucket, count, e.tail)
	if err != nil {
		return nil, err
	}
	// The category of each offset, from the type postings.
	category := make([]string, len(data.times))
	first, tailEvs := e.tail.span(bucket)
	for i := range tailEvs {
		for _, ie := range tailEvs[i].keys {
			if ie.Field == veritrail.FieldType {
				category[first+int64(i)-bucket<<s.shift] = veritrail.Category(ie.Key)
			}
		}
	}
	rows, err := e.pc.QueryContext(ctx, `SELECT key, list FROM postings WHERE org_id = ? AND bucket = ? AND field = ?`,
		org, bucket, int(veritrail.FieldType))
	if err != nil {
		return nil, err
	}
	var key, list []byte
	var offs []uint32
	for rows.Next() {
		if err := rows.Scan(&key, &list); err != nil {
			rows.Close()
			return nil, err
		}
		cat := veritrail.Category(string(key))
		if offs, err = decodeOffsets(offs[:0], list); err != nil {
			rows.Close()
			return nil, err
		}
		for _, o := range offs {
			if int(o) < len(category) {
				category[o] = cat
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	present, err := s.contentPresent(ctx, org, bucket)
	if err != nil {
		return nil, err
	}
	plan := &removalPlan{bucket: bucket, size: len(data.times), category: category}
	base := bucket << s.shift
	for off, t := range data.times {
		o := uint32(off)
		if data.dead[o] || c.Held.Held(base+int64(off)) {
			continue
		}
		contentCut, metaCut := c.For(category[off])
		switch {
		case metaCut > 0 && t < metaCut:
			plan.envelopes = append(plan.envelopes, o)
		case contentCut > 0 && t < contentCut && present[o]:
			plan.contents = append(plan.contents, o)
		}
	}
	plan.emptied = len(data.dead)+len(plan.envelopes) == len(data.times)
	return plan, nil
}

// ranges groups sorted offsets into runs of consecutive seqs.
func ranges(base int64, offs []uint32) [][2]int64 {
	var out [][2]int64
	for i := 0; i < len(offs); {
		j := i
		for j+1 < len(offs) && offs[j+1] == offs[j]+1 {
			j++
		}
		out = append(out, [2]int64{base + int64(offs[i]), base + int64(offs[j])})
		i = j + 1
	}
	return out
}

// removalChunk bounds the events one transaction removes, so that ingest
// waits at most for one such transaction.
const removalChunk = 2048

// applyRemoval carries out a bucket's plan in short transactions of the
// commit loop: each removes up to removalChunk events' rows and records
// their ranges; a last one updates the bucket's postings. Then the same
// events leave the full-text index.
func (s *Store) applyRemoval(ctx context.Context, org int64, p *removalPlan, reason, record string, res *veritrail.RemovalResult) error {
	if len(p.envelopes) == 0 && len(p.contents) == 0 {
		return nil
	}
	base := p.bucket << s.shift
	now := s.now().UTC()
	envRanges, contentRanges := ranges(base, p.envelopes), ranges(base, p.contents)
	for _, chunk := range chunkRanges(envRanges, contentRanges, removalChunk) {
		err := s.runWrite(ctx, org, func(ctx context.Context, tx *sql.Tx) error {
			// The triggers let removals through only while this row exists.
			if _, err := tx.ExecContext(ctx, `INSERT INTO retention_gate (open) VALUES (1)`); err != nil {
				return err
			}
			for _, r := range chunk.ranges {
				lo, hi := rid(org, r.from), rid(org, r.to)
				if r.what == "envelope" {
					if _, err := tx.ExecContext(ctx, `DELETE FROM event_ids WHERE org_id = ? AND id IN (
						SELECT json_extract(envelope, '$.id') FROM events WHERE rid >= ? AND rid <= ?)`, org, lo, hi); err != nil {
						return fmt.Errorf("remove ids: %w", err)
					}
					if _, err := tx.ExecContext(ctx, `DELETE FROM events WHERE rid >= ? AND rid <= ?`, lo, hi); err != nil {
						return fmt.Errorf("remove events: %w", err)
					}
				}
				if _, err := tx.ExecContext(ctx, `DELETE FROM contents WHERE rid >= ? AND rid <= ?`, lo, hi); err != nil {
					return fmt.Errorf("remove contents: %w", err)
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO removals (org_id, seq_from, seq_to, what, reason, record, at)
					VALUES (?, ?, ?, ?, ?, ?, ?)`, org, r.from, r.to, r.what, reason, record, now.UnixNano()); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, `DELETE FROM retention_gate`)
			return err
		})
		if err != nil {
			return fmt.Errorf("bucket %d of org %d: %w", p.bucket, org, err)
		}
	}
	if len(p.envelopes) > 0 {
		err := s.runWrite(ctx, org, func(ctx context.Context, tx *sql.Tx) error {
			// The counts lose what the postings lose, in the same
			// transaction, read before the postings change.
			gone := make(map[uint32]bool, len(p.envelopes))
			for _, o := range p.envelopes {
				gone[o] = true
			}
			c := counter{}
			if err := countBucket(ctx, tx, org, p.bucket, func(o uint32) bool { return gone[o] }, -1, c); err != nil {
				return err
			}
			if err := c.apply(ctx, tx); err != nil {
				return err
			}
			if p.emptied {
				return emptyPostings(ctx, tx, org, p.bucket, p.size)
			}
			return dropFromPostings(ctx, tx, org, p.bucket, p.envelopes)
		})
		if err != nil {
			return fmt.Errorf("postings of bucket %d of org %d: %w", p.bucket, org, err)
		}
	}
	s.times.Forget(org)
	s.columns.Forget(org)
	res.Envelopes += int64(len(p.envelopes))
	res.Contents += int64(len(p.contents))
	for _, r := range envRanges {
		res.Ranges = append(res.Ranges, &veritrail.Removal{From: r[0], To: r[1], What: "envelope", Reason: reason, Record: record, At: now})
	}
	for _, r := range contentRanges {
		res.Ranges = append(res.Ranges, &veritrail.Removal{From: r[0], To: r[1], What: "content", Reason: reason, Record: record, At: now})
	}
	return s.fts.remove(ctx, org, envRanges, contentRanges)
}

type removalRange struct {
	from, to int64
	what     string
}

type removalTx struct{ ranges []removalRange }

// chunkRanges cuts ranges into transactions of at most n events.
func chunkRanges(envelopes, contents [][2]int64, n int64) []removalTx {
	var out []removalTx
	cur, size := removalTx{}, int64(0)
	for _, g := range []struct {
		what string
		rs   [][2]int64
	}{{"envelope", envelopes}, {"content", contents}} {
		for _, r := range g.rs {
			for from := r[0]; from <= r[1]; {
				to := min(r[1], from+(n-size)-1)
				cur.ranges = append(cur.ranges, removalRange{from, to, g.what})
				size += to - from + 1
				from = to + 1
				if size == n {
					out = append(out, cur)
					cur, size = removalTx{}, 0
				}
			}
		}
	}
	if size > 0 {
		out = append(out, cur)
	}
	return out
}

// emptyPostings clears a bucket whose every envelope is gone: all its
// postings go but the times, and every offset is a tombstone.
func emptyPostings(ctx context.Context, tx *sql.Tx, org, bucket int64, size int) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM postings WHERE org_id = ? AND bucket = ? AND field != 0`, org, bucket); err != nil {
		return err
	}
	all := make([]uint32, size)
	for i := range all {
		all[i] = uint32(i)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO postings (org_id, bucket, field, key, run, list) VALUES (?, ?, ?, ?, 0, ?)`,
		org, bucket, deadField, deadKey, appendOffsets(nil, all))
	return err
}

// dropFromPostings removes offsets from every posting list of a bucket and
// adds them to its tombstone list. The index keys of removed events (e-mail
// addresses, IPs, ids) go with them.
func dropFromPostings(ctx context.Context, tx *sql.Tx, org, bucket int64, gone []uint32) error {
	drop := make(map[uint32]bool, len(gone))
	for _, o := range gone {
		drop[o] = true
	}
	rows, err := tx.QueryContext(ctx, `SELECT field, key, run, list FROM postings WHERE org_id = ? AND bucket = ? AND field != 0`, org, bucket)
	if err != nil {
		return err
	}
	type row struct {
		field int
		key   []byte
		run   int64
		offs  []uint32
	}
	var changed []row
	var dead []uint32
	for rows.Next() {
		var r row
		var list []byte
		if err := rows.Scan(&r.field, &r.key, &r.run, &list); err != nil {
			rows.Close()
			return err
		}
		offs, err := decodeOffsets(nil, list)
		if err != nil {
			rows.Close()
			return err
		}
		if r.field == deadField {
			dead = append(dead, offs...)
			continue
		}
		kept := offs[:0:0]
		for _, o := range offs {
			if !drop[o] {
				kept = append(kept, o)
			}
		}
		if len(kept) != len(offs) {
			r.offs = kept
			changed = append(changed, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range changed {
		if _, err := tx.ExecContext(ctx, `DELETE FROM postings WHERE org_id = ? AND bucket = ? AND field = ? AND key = ? AND run = ?`,
			org, bucket, r.field, r.key, r.run); err != nil {
			return err
		}
		if len(r.offs) == 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO postings (org_id, bucket, field, key, run, list) VALUES (?, ?, ?, ?, ?, ?)`,
			org, bucket, r.field, r.key, r.run, appendOffsets(nil, r.offs)); err != nil {
			return err
		}
	}
	dead = append(dead, gone...)
	slices.Sort(dead)
	dead = slices.Compact(dead)
	if _, err := tx.ExecContext(ctx, `DELETE FROM postings WHERE org_id = ? AND bucket = ? AND field = ?`, org, bucket, deadField); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO postings (org_id, bucket, field, key, run, list) VALUES (?, ?, ?, ?, 0, ?)`,
		org, bucket, deadField, deadKey, appendOffsets(nil, dead))
	return err
}

// afterRemoval makes removed data gone from the disk: the full-text index
// is rewritten, and both write-ahead logs are folded into their databases
// and truncated (secure_delete overwrote the deleted rows in the database
// pages, but the WAL still held old page versions).
func (s *Store) afterRemoval(ctx context.Context, org int64, res *veritrail.RemovalResult) error {
	if res.Contents == 0 && res.Envelopes == 0 {
		return nil
	}
	// FTS5's secure-delete takes entries out of the doclists, but a term
	// can stay behind in the segment structure: rewrite the index.
	if err := s.fts.optimize(ctx); err != nil {
		return fmt.Errorf("full-text index after removal: %w", err)
	}
	for _, db := range []*sql.DB{s.cdb, s.fts.db} {
		// TRUNCATE waits for readers; retry a few times, it matters.
		var err error
		for i := 0; i < 20; i++ {
			var busy, logFrames, done int
			err = db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done)
			if err == nil && busy == 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			s.log.Warn("could not truncate the write-ahead log after a removal", slog.Any("err", err))
		}
	}
	return nil
}
