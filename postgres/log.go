package postgres

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// LogHead implements veritrail.LogStore.
func (s *Store) LogHead(ctx context.Context, org int64) (int64, []byte, error) {
	var size int64
	var root []byte
	err := s.pool.QueryRow(ctx, `SELECT size, root FROM log_heads WHERE org_id = $1`, org).Scan(&size, &root)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := s.OrgByID(ctx, org); err != nil {
			return 0, nil, err
		}
		return 0, tlog.EmptyRoot(), nil
	}
	if err == nil && root == nil {
		root = tlog.EmptyRoot()
	}
	return size, root, err
}

// ReadTile implements veritrail.LogStore.
func (s *Store) ReadTile(ctx context.Context, org int64, level uint8, index uint64) ([]byte, error) {
	var hashes []byte
	err := s.pool.QueryRow(ctx, `SELECT hashes FROM tiles WHERE org_id = $1 AND level = $2 AND idx = $3`, org, int16(level), int64(index)).Scan(&hashes)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, veritrail.Errorf(veritrail.ENotFound, "tile %d/%d not found", level, index)
	}
	return hashes, err
}

// AddCheckpoint implements veritrail.LogStore. Each checkpoint names its
// predecessor, the latest when it is added (prev_size); the schema lets a
// checkpoint follow only one that has no successor yet and is smaller, so
// the history is one chain of growing sizes without a lock. When two nodes
// add at once, the second insert breaks a unique key (the predecessor's
// one successor, or the size itself) and is decided again against the
// checkpoint that won; each retry follows a new latest, so it ends.
func (s *Store) AddCheckpoint(ctx context.Context, org int64, cp *veritrail.Checkpoint) error {
	for {
		err := s.addCheckpoint(ctx, org, cp)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "23505" {
			return err
		}
	}
}

func (s *Store) addCheckpoint(ctx context.Context, org int64, cp *veritrail.Checkpoint) error {
	var latest int64
	var root []byte
	err := s.pool.QueryRow(ctx, `SELECT size, root FROM checkpoints WHERE org_id = $1 ORDER BY size DESC LIMIT 1`, org).Scan(&latest, &root)
	var prev *int64
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return err
	case cp.Size < latest:
		return veritrail.Errorf(veritrail.EConflict, "checkpoint size %d is below the latest, %d", cp.Size, latest)
	case cp.Size == latest:
		if !bytes.Equal(root, cp.Root) {
			return veritrail.Errorf(veritrail.EConflict, "a checkpoint of size %d with another root exists", cp.Size)
		}
		return nil
	default:
		prev = &latest
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO checkpoints (org_id, size, prev_size, root, note, signed_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		org, cp.Size, prev, cp.Root, cp.Note, cp.SignedAt.UnixNano())
	return err
}

func scanCheckpoint(row pgx.Row) (*veritrail.Checkpoint, error) {
	var cp veritrail.Checkpoint
	var at int64
	if err := row.Scan(&cp.Size, &cp.Root, &cp.Note, &at); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, veritrail.Errorf(veritrail.ENotFound, "no checkpoint yet")
		}
		return nil, err
	}
	cp.SignedAt = time.Unix(0, at).UTC()
	return &cp, nil
}

// LatestCheckpoint implements veritrail.LogStore.
func (s *Store) LatestCheckpoint(ctx context.Context, org int64) (*veritrail.Checkpoint, error) {
	return scanCheckpoint(s.pool.QueryRow(ctx, `SELECT size, root, note, signed_at FROM checkpoints
		WHERE org_id = $1 ORDER BY size DESC LIMIT 1`, org))
}

// Checkpoints implements veritrail.LogStore.
func (s *Store) Checkpoints(ctx context.Context, org int64, fromSize int64, limit int) ([]*veritrail.Checkpoint, error) {
	rows, err := s.pool.Query(ctx, `SELECT size, root, note, signed_at FROM checkpoints
		WHERE org_id = $1 AND size >= $2 ORDER BY size LIMIT $3`, org, fromSize, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*veritrail.Checkpoint
	for rows.Next() {
		cp, err := scanCheckpoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, cp)
	}
	return out, rows.Err()
}

// RecordWitness implements veritrail.LogStore.
func (s *Store) RecordWitness(ctx context.Context, org, size int64, url string, ok bool, detail string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO witness_log (org_id, size, url, ok, detail, at) VALUES ($1, $2, $3, $4, $5, $6)`,
		org, size, url, ok, detail, s.now().UnixNano())
	return err
}

// WitnessLog implements veritrail.LogStore.
func (s *Store) WitnessLog(ctx context.Context, org int64, limit int) ([]veritrail.WitnessAttempt, error) {
	rows, err := s.pool.Query(ctx, `SELECT size, url, ok, detail, at FROM witness_log WHERE org_id = $1 ORDER BY at DESC, ctid DESC LIMIT $2`, org, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []veritrail.WitnessAttempt
	for rows.Next() {
		var a veritrail.WitnessAttempt
		var at int64
		if err := rows.Scan(&a.Size, &a.URL, &a.OK, &a.Detail, &at); err != nil {
			return nil, err
		}
		a.At = time.Unix(0, at).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// AddCosignature implements veritrail.LogStore.
func (s *Store) AddCosignature(ctx context.Context, org int64, c *veritrail.Cosignature) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO cosignatures (org_id, size, key_name, line, at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (org_id, size, key_name) DO UPDATE SET line = excluded.line, at = excluded.at`,
		org, c.Size, c.KeyName, c.Line, c.At.UnixNano())
	return err
}

// Cosignatures implements veritrail.LogStore.
func (s *Store) Cosignatures(ctx context.Context, org int64, sizes int) ([]*veritrail.Cosignature, error) {
	rows, err := s.pool.Query(ctx, `SELECT size, key_name, line, at FROM cosignatures
		WHERE org_id = $1 AND size IN (SELECT DISTINCT size FROM cosignatures WHERE org_id = $1 ORDER BY size DESC LIMIT $2)
		ORDER BY size DESC, key_name`, org, sizes)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*veritrail.Cosignature
	for rows.Next() {
		var c veritrail.Cosignature
		var at int64
		if err := rows.Scan(&c.Size, &c.KeyName, &c.Line, &at); err != nil {
			return nil, err
		}
		c.At = time.Unix(0, at).UTC()
		out = append(out, &c)
	}
	return out, rows.Err()
}
