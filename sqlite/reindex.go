package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"

	veritrail "github.com/veritrail/veritrail"
)

// goMigrations are the steps of the schema that SQL alone cannot take:
// they run in migrate's order (by version, among the SQL files), in the
// same transaction as the bookkeeping of their version.
var goMigrations = map[string]func(ctx context.Context, tx *sql.Tx) error{
	"0014_index_context":     reindexFields(veritrail.FieldRequestID, veritrail.FieldUserAgent),
	"0016_event_counts_fill": fillCounts,
}

// reindexFields returns a migration that indexes fields new to the search
// index (veritrail.Fields) on the events stored before: for each bucket,
// the fields' keys are read from the envelopes (veritrail.ScanEnvelopeIndex,
// as the commit does) and written as postings of the bucket's first run.
// Queries then find old events as they find new ones, and verify --data,
// which expects every field of every envelope in the index, passes.
func reindexFields(fields ...veritrail.Field) func(ctx context.Context, tx *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		var v string
		err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'bucket_shift'`).Scan(&v)
		if err == sql.ErrNoRows {
			return nil // a new store: nothing stored yet
		}
		if err != nil {
			return err
		}
		shift, err := strconv.Atoi(v)
		if err != nil || shift < MinBucketShift || shift > MaxBucketShift {
			return fmt.Errorf("store setting bucket_shift %q is invalid", v)
		}
		type bucketKey struct{ org, num, firstRun int64 }
		rows, err := tx.QueryContext(ctx, `SELECT org_id, bucket, min(run) FROM postings WHERE field = ? GROUP BY org_id, bucket ORDER BY org_id, bucket`, timesField)
		if err != nil {
			return err
		}
		var buckets []bucketKey
		for rows.Next() {
			var b bucketKey
			if err := rows.Scan(&b.org, &b.num, &b.firstRun); err != nil {
				rows.Close()
				return err
			}
			buckets = append(buckets, b)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		put, err := tx.PrepareContext(ctx, `INSERT INTO postings (org_id, bucket, field, key, run, list) VALUES (?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer put.Close()
		lists := map[postKey][]uint32{}
		var buf []byte
		for _, b := range buckets {
			clear(lists)
			base := b.num << shift
			rows, err := tx.QueryContext(ctx, `SELECT rid, envelope FROM events WHERE rid BETWEEN ? AND ? ORDER BY rid`,
				rid(b.org, base), rid(b.org, base+1<<shift-1))
			if err != nil {
				return err
			}
			for rows.Next() {
				var r int64
				var env []byte
				if err := rows.Scan(&r, &env); err != nil {
					rows.Close()
					return err
				}
				off := uint32(r - rid(b.org, base))
				if _, _, ok := veritrail.ScanEnvelopeIndex(env, func(f veritrail.Field, key []byte) {
					if slices.Contains(fields, f) {
						k := postKey{f, string(key)}
						lists[k] = append(lists[k], off)
					}
				}); !ok {
					rows.Close()
					return fmt.Errorf("organization %d, seq %d: the envelope does not read", b.org, r-rid(b.org, 0))
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			keys := make([]postKey, 0, len(lists))
			for k := range lists {
				keys = append(keys, k)
			}
			slices.SortFunc(keys, comparePostKeys)
			for _, k := range keys {
				buf = appendOffsets(buf[:0], lists[k])
				if _, err := put.ExecContext(ctx, b.org, b.num, int(k.field), []byte(k.key), b.firstRun, buf); err != nil {
					return fmt.Errorf("organization %d, bucket %d: %w", b.org, b.num, err)
				}
			}
		}
		return nil
	}
}
