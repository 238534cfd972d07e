package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	veritrail "github.com/veritrail/veritrail"
)

// removalChunk bounds the events one removal transaction takes, so appends
// to the organization (which lock its log head) wait for one chunk at most.
const removalChunk = 2048

// Removals implements veritrail.RetentionStore.
func (s *Store) Removals(ctx context.Context, org int64, fromSeq int64, limit int) ([]*veritrail.Removal, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq_from, seq_to, what, reason, record, at FROM removals
		WHERE org_id = $1 AND seq_to >= $2 ORDER BY seq_from, what LIMIT $3`, org, fromSeq, limit)
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

// Expire implements veritrail.RetentionStore: per category, envelopes
// (with their content, ids and words) older than the metadata cutoff, then
// contents older than the content cutoff, in chunks; then month partitions
// that no organization keeps anything of are dropped whole.
func (s *Store) Expire(ctx context.Context, org int64, c *veritrail.Cutoffs, record string) (*veritrail.RemovalResult, error) {
	res := &veritrail.RemovalResult{}
	latest := c.Latest()
	if latest == 0 {
		return res, nil
	}
	cats, err := s.categoriesBefore(ctx, org, latest)
	if err != nil {
		return nil, err
	}
	for _, cat := range cats {
		contentCut, metaCut := c.For(cat)
		if metaCut > 0 {
			from, args := keepHeld(`FROM events WHERE org_id = $1 AND category = $2 AND time_ns < $3`, c.Held, cat, metaCut)
			if err := s.removeWhere(ctx, org, "envelope", "retention", record, res, from, args...); err != nil {
				return res, err
			}
		}
		if contentCut > 0 {
			from, args := keepHeld(`FROM contents WHERE org_id = $1 AND category = $2 AND time_ns < $3`, c.Held, cat, contentCut)
			if err := s.removeWhere(ctx, org, "content", "retention", record, res, from, args...); err != nil {
				return res, err
			}
		}
	}
	if res.Envelopes > 0 || res.Contents > 0 {
		if _, err := s.dropEmptyPartitions(ctx, time.Unix(0, latest)); err != nil {
			s.log.Warn("dropping emptied partitions; retention removed the rows anyway", "err", err)
		}
	}
	return res, nil
}

// keepHeld adds to a FROM … WHERE clause over events or contents (whose
// first parameter is the organization, then args) the condition that
// leaves out what held keeps.
func keepHeld(from string, held *veritrail.HeldSet, args ...any) (string, []any) {
	if held == nil {
		return from, args
	}
	n := len(args) + 2
	return from + fmt.Sprintf(` AND seq < $%d AND seq <> ALL($%d::bigint[])`, n, n+1), append(args, held.Through, held.Seqs())
}

// PreviewExpiry implements veritrail.RetentionStore: Expire's selections,
// counted. Content counts leave out events whose envelope goes too (as
// Expire's own counts do).
func (s *Store) PreviewExpiry(ctx context.Context, org int64, c *veritrail.Cutoffs) (map[string]*veritrail.RemovalCounts, error) {
	out := map[string]*veritrail.RemovalCounts{}
	latest := c.Latest()
	if latest == 0 {
		return out, nil
	}
	cats, err := s.categoriesBefore(ctx, org, latest)
	if err != nil {
		return nil, err
	}
	for _, cat := range cats {
		contentCut, metaCut := c.For(cat)
		var n veritrail.RemovalCounts
		if metaCut > 0 {
			from, args := keepHeld(`FROM events WHERE org_id = $1 AND category = $2 AND time_ns < $3`, c.Held, cat, metaCut)
			if err := s.pool.QueryRow(ctx, `SELECT count(*) `+from, append([]any{org}, args...)...).Scan(&n.Envelopes); err != nil {
				return nil, err
			}
		}
		if contentCut > 0 {
			from, args := keepHeld(`FROM contents WHERE org_id = $1 AND category = $2 AND time_ns < $3 AND time_ns >= $4`, c.Held, cat, contentCut, metaCut)
			if err := s.pool.QueryRow(ctx, `SELECT count(*) `+from, append([]any{org}, args...)...).Scan(&n.Contents); err != nil {
				return nil, err
			}
		}
		if n.Envelopes > 0 || n.Contents > 0 {
			out[cat] = &n
		}
	}
	return out, nil
}

// categoriesBefore lists the categories of org's events older than t.
func (s *Store) categoriesBefore(ctx context.Context, org, t int64) ([]string, error) {
	rows, err := s.pool.Query(ctx, `WITH RECURSIVE cats AS (
			(SELECT category FROM events WHERE org_id = $1 AND time_ns < $2 ORDER BY category LIMIT 1)
			UNION ALL
			SELECT (SELECT category FROM events WHERE org_id = $1 AND time_ns < $2 AND category > cats.category ORDER BY category LIMIT 1)
			FROM cats WHERE cats.category IS NOT NULL)
		SELECT category FROM cats WHERE category IS NOT NULL
		UNION SELECT DISTINCT category FROM contents WHERE org_id = $1 AND time_ns < $2`, org, t)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// EraseContent implements veritrail.RetentionStore.
func (s *Store) EraseContent(ctx context.Context, org int64, f veritrail.Filter, held *veritrail.HeldSet, record string) (*veritrail.RemovalResult, error) {
	if f.Field != veritrail.FieldActorID && f.Field != veritrail.FieldActorEmail {
		return nil, veritrail.Errorf(veritrail.EInvalid, "erasure is by actor_id or actor_email")
	}
	res := &veritrail.RemovalResult{}
	for _, r := range f.Ranges {
		var args []any // after $1, the organization
		cond := rangeCond(column(f.Field), r, func(v any) string {
			args = append(args, v)
			return fmt.Sprintf("$%d", len(args)+1)
		})
		from, args := keepHeld(`FROM contents c WHERE c.org_id = $1 AND EXISTS (SELECT 1 FROM events e WHERE e.org_id = c.org_id
				AND e.time_ns = c.time_ns AND e.seq = c.seq AND `+cond+`)`, held, args...)
		if err := s.removeWhere(ctx, org, "content", "erasure", record, res, from, args...); err != nil {
			return res, err
		}
	}
	return res, nil
}

// removeWhere removes, chunk by chunk, the rows that from selects (a FROM
// … WHERE … clause over events or contents whose first parameter is the
// organization), and records each chunk's seq ranges in removals in the
// same transaction. what is "envelope" (the event goes: envelope, content,
// id) or "content" (the envelope stays and loses its content words).
func (s *Store) removeWhere(ctx context.Context, org int64, what, reason, record string, res *veritrail.RemovalResult, from string, args ...any) error {
	for {
		n, err := s.removeChunk(ctx, org, what, reason, record, res, from, args)
		if err != nil {
			return err
		}
		if n < removalChunk {
			return nil
		}
	}
}

func (s *Store) removeChunk(ctx context.Context, org int64, what, reason, record string, res *veritrail.RemovalResult, from string, args []any) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	if err := openRemovalGate(ctx, tx); err != nil {
		return 0, err
	}
	all := append([]any{org}, args...)
	rows, err := tx.Query(ctx, `SELECT seq, time_ns `+from+` ORDER BY seq LIMIT `+fmt.Sprint(removalChunk), all...)
	if err != nil {
		return 0, err
	}
	type key struct{ seq, t int64 }
	var keys []key
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.seq, &k.t); err != nil {
			rows.Close()
			return 0, err
		}
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(keys) == 0 {
		return 0, nil
	}
	seqs := make([]int64, len(keys))
	times := make([]int64, len(keys))
	for i, k := range keys {
		seqs[i], times[i] = k.seq, k.t
	}
	const match = `FROM unnest($2::bigint[], $3::bigint[]) AS u(seq, t) WHERE x.org_id = $1 AND x.time_ns = u.t AND x.seq = u.seq`
	if what == "envelope" {
		if _, err := tx.Exec(ctx, `DELETE FROM event_ids i USING events x, unnest($2::bigint[], $3::bigint[]) AS u(seq, t)
			WHERE x.org_id = $1 AND x.time_ns = u.t AND x.seq = u.seq AND i.org_id = x.org_id AND i.id = x.id`, org, seqs, times); err != nil {
			return 0, fmt.Errorf("remove ids: %w", err)
		}
		// The counts lose the events; their hours' changes grow by as many.
		if _, err := tx.Exec(ctx, `UPDATE event_counts c SET n = c.n + CASE WHEN c.field = `+fmt.Sprint(changesField)+` THEN d.n ELSE -d.n END FROM (`+countsOf(`FROM events x, `+match[len("FROM "):])+`) d
			WHERE c.org_id = $1 AND c.field = d.field AND c.slot = d.slot AND c.key = d.key`, org, seqs, times); err != nil {
			return 0, fmt.Errorf("remove counts: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM events x USING `+match[len("FROM "):], org, seqs, times); err != nil {
			return 0, fmt.Errorf("remove events: %w", err)
		}
	} else {
		// The event keeps its envelope words only.
		if _, err := tx.Exec(ctx, `UPDATE events x SET tsv_all = NULL `+match, org, seqs, times); err != nil {
			return 0, fmt.Errorf("remove content words: %w", err)
		}
		// What a text search matches in their hours changes.
		if err := addChanges(ctx, tx, org, times); err != nil {
			return 0, fmt.Errorf("count changes: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM contents x USING `+match[len("FROM "):], org, seqs, times); err != nil {
		return 0, fmt.Errorf("remove contents: %w", err)
	}
	now := s.now().UTC()
	slices.Sort(seqs)
	var ranges []*veritrail.Removal
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		ranges = append(ranges, &veritrail.Removal{From: seqs[i], To: seqs[j], What: what, Reason: reason, Record: record, At: now})
		i = j + 1
	}
	for _, r := range ranges {
		if _, err := tx.Exec(ctx, `INSERT INTO removals (org_id, seq_from, seq_to, what, reason, record, at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			org, r.From, r.To, r.What, r.Reason, r.Record, now.UnixNano()); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	if what == "envelope" {
		res.Envelopes += int64(len(seqs))
	} else {
		res.Contents += int64(len(seqs))
	}
	res.Ranges = append(res.Ranges, ranges...)
	return len(keys), nil
}

// openRemovalGate lets the guard triggers pass this transaction's
// removals (veritrail.removal, read by veritrail_refuse), and only its.
// On Citus the triggers run on the workers that hold the shards, and a
// SET LOCAL reaches them only with citus.propagate_set_commands = 'local'
// set first in the same transaction (Citus then sends it to every worker
// the transaction uses). On PostgreSQL without Citus that setting is an
// unused name and does nothing.
func openRemovalGate(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SET LOCAL citus.propagate_set_commands = 'local'`); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `SET LOCAL veritrail.removal = 'on'`)
	return err
}
