package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// orgState is what the writer keeps in memory per organization between
// batches: the head of its Merkle log, its open index bucket, and its
// postings frontier (tail.go).
type orgState struct {
	org    int64
	shift  uint // bucket shift of the store
	head   *tlog.Head
	bucket bucketState
	// frontier is the durable postings frontier: postings cover the seqs
	// below it.
	frontier int64
	// runs are the postings runs, in seq order, of bucket runsBucket (the
	// one the last tail write wrote to; -1 when not loaded yet).
	runsBucket int64
	runs       []runInfo
}

// bucketState describes an organization's open bucket (its summary row).
type bucketState struct {
	num        int64
	minT, maxT int64
	count      int64
}

// loadOrgState reads the committed state of an organization's log.
func loadOrgState(ctx context.Context, tx *sql.Tx, org int64, shift uint) (*orgState, error) {
	var exists int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM orgs WHERE id = ?`, org).Scan(&exists); err != nil {
		return nil, err
	}
	if exists == 0 {
		return nil, veritrail.Errorf(veritrail.ENotFound, "organization %d not found", org)
	}
	var size int64
	var compact []byte
	err := tx.QueryRowContext(ctx, `SELECT size, compact FROM log_heads WHERE org_id = ?`, org).Scan(&size, &compact)
	if errors.Is(err, sql.ErrNoRows) {
		size, compact, err = 0, nil, nil
	}
	if err != nil {
		return nil, err
	}
	var edge []*tlog.Tile
	for _, id := range tlog.EdgeTiles(uint64(size)) {
		var hashes []byte
		if err := tx.QueryRowContext(ctx, `SELECT hashes FROM tiles WHERE org_id = ? AND level = ? AND idx = ?`,
			org, id.Level, id.Index).Scan(&hashes); err != nil {
			return nil, fmt.Errorf("load tile %v of org %d: %w", id, org, err)
		}
		edge = append(edge, &tlog.Tile{ID: id, Hashes: hashes})
	}
	head, err := tlog.LoadHead(uint64(size), compact, edge)
	if err != nil {
		return nil, err
	}
	ost := &orgState{org: org, shift: shift, head: head, bucket: bucketState{num: size >> shift}, runsBucket: -1}
	if ost.frontier, _, err = frontierAndHead(ctx, tx, org); err != nil {
		return nil, err
	}
	b := &ost.bucket
	err = tx.QueryRowContext(ctx, `SELECT min_time, max_time, count FROM buckets WHERE org_id = ? AND bucket = ?`,
		org, b.num).Scan(&b.minT, &b.maxT, &b.count)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if want := size - b.num<<shift; b.count != want {
		return nil, fmt.Errorf("sqlite: org %d bucket %d holds %d events, log size says %d", org, b.num, b.count, want)
	}
	return ost, nil
}

// writeHead persists the log head and the tiles the batch changed.
func writeHead(ctx context.Context, st *stmts, ost *orgState) error {
	for _, t := range ost.head.TakeDirty() {
		if _, err := st.putTile.ExecContext(ctx, ost.org, t.ID.Level, int64(t.ID.Index), t.Hashes); err != nil {
			return fmt.Errorf("write tile: %w", err)
		}
	}
	_, err := st.putHead.ExecContext(ctx, ost.org, int64(ost.head.Size()), ost.head.Root(), ost.head.CompactHashes())
	return err
}
