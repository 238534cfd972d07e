package postgres

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"

	veritrail "github.com/veritrail/veritrail"
)

// goMigrations are the steps SQL alone cannot take, run right after the
// SQL file they are named after, in its transaction.
var goMigrations = map[string]func(ctx context.Context, tx pgx.Tx) error{
	"migrations/0010_index_context.sql": reindexContext,
}

// reindexContext fills the request_id and user_agent columns (0010) of
// the events stored before, from their envelopes, with the keys
// veritrail.ScanEnvelopeIndex reads (as the commit's Event.Prepare derives
// them), an organization at a time. Only envelopes that hold one of the
// two members are read back: the canonical envelope escapes every quote
// inside a value, so `"request_id":` matches the member's key only.
func reindexContext(ctx context.Context, tx pgx.Tx) error {
	// The guard triggers let this transaction's updates through, as they
	// do retention's: the columns are derived from the envelope, which
	// stays as it is. (On Citus a SET LOCAL reaches the workers only with
	// propagate_set_commands; without Citus that name is unused.)
	for _, set := range []string{`SET LOCAL citus.propagate_set_commands = 'local'`, `SET LOCAL veritrail.removal = 'on'`} {
		if _, err := tx.Exec(ctx, set); err != nil {
			return err
		}
	}
	rows, err := tx.Query(ctx, `SELECT id FROM orgs ORDER BY id`)
	if err != nil {
		return err
	}
	orgs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	for _, org := range orgs {
		afterT, afterSeq := int64(-1<<63), int64(-1)
		for {
			rows, err := tx.Query(ctx, `SELECT time_ns, seq, envelope FROM events
				WHERE org_id = $1 AND (time_ns, seq) > ($2, $3)
				  AND (position('"request_id":'::bytea in envelope) > 0 OR position('"user_agent":'::bytea in envelope) > 0)
				ORDER BY time_ns, seq LIMIT 2000`, org, afterT, afterSeq)
			if err != nil {
				return err
			}
			var ts, seqs []int64
			var reqs, uas [][]byte
			for rows.Next() {
				var env []byte
				if err := rows.Scan(&afterT, &afterSeq, &env); err != nil {
					rows.Close()
					return err
				}
				var req, ua []byte
				veritrail.ScanEnvelopeIndex(env, func(f veritrail.Field, key []byte) {
					switch f {
					case veritrail.FieldRequestID:
						req = slices.Clone(key)
					case veritrail.FieldUserAgent:
						ua = slices.Clone(key)
					}
				})
				ts, seqs, reqs, uas = append(ts, afterT), append(seqs, afterSeq), append(reqs, req), append(uas, ua)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if len(ts) == 0 {
				break
			}
			if _, err := tx.Exec(ctx, `UPDATE events e SET request_id = v.req, user_agent = v.ua
				FROM unnest($2::bigint[], $3::bigint[], $4::bytea[], $5::bytea[]) AS v(t, seq, req, ua)
				WHERE e.org_id = $1 AND e.time_ns = v.t AND e.seq = v.seq`, org, ts, seqs, reqs, uas); err != nil {
				return err
			}
		}
	}
	return nil
}
