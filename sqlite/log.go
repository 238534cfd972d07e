package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// LogHead implements veritrail.LogStore.
func (s *Store) LogHead(ctx context.Context, org int64) (int64, []byte, error) {
	var size int64
	var root []byte
	err := s.rdb.QueryRowContext(ctx, `SELECT size, root FROM log_heads WHERE org_id = ?`, org).Scan(&size, &root)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.OrgByID(ctx, org); err != nil {
			return 0, nil, err
		}
		return 0, tlog.EmptyRoot(), nil
	}
	return size, root, err
}

// ReadTile implements veritrail.LogStore.
func (s *Store) ReadTile(ctx context.Context, org int64, level uint8, index uint64) ([]byte, error) {
	var hashes []byte
	err := s.rdb.QueryRowContext(ctx, `SELECT hashes FROM tiles WHERE org_id = ? AND level = ? AND idx = ?`,
		org, level, int64(index)).Scan(&hashes)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, veritrail.Errorf(veritrail.ENotFound, "tile %d/%d not found", level, index)
	}
	return hashes, err
}

// AddCheckpoint implements veritrail.LogStore.
func (s *Store) AddCheckpoint(ctx context.Context, org int64, cp *veritrail.Checkpoint) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var latest int64
	var root []byte
	err = tx.QueryRowContext(ctx, `SELECT size, root FROM checkpoints WHERE org_id = ? ORDER BY size DESC LIMIT 1`, org).Scan(&latest, &root)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return err
	case cp.Size < latest:
		return veritrail.Errorf(veritrail.EConflict, "checkpoint size %d is below the latest, %d", cp.Size, latest)
	case cp.Size == latest:
		if string(root) != string(cp.Root) {
			return veritrail.Errorf(veritrail.EConflict, "a checkpoint of size %d with another root exists", cp.Size)
		}
		return nil // already there
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoints (org_id, size, root, note, signed_at) VALUES (?, ?, ?, ?, ?)`,
		org, cp.Size, cp.Root, cp.Note, cp.SignedAt.UnixNano()); err != nil {
		return err
	}
	return tx.Commit()
}

func scanCheckpoint(row interface{ Scan(...any) error }) (*veritrail.Checkpoint, error) {
	var cp veritrail.Checkpoint
	var at int64
	if err := row.Scan(&cp.Size, &cp.Root, &cp.Note, &at); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, veritrail.Errorf(veritrail.ENotFound, "no checkpoint yet")
		}
		return nil, err
	}
	cp.SignedAt = time.Unix(0, at).UTC()
	return &cp, nil
}

// LatestCheckpoint implements veritrail.LogStore.
func (s *Store) LatestCheckpoint(ctx context.Context, org int64) (*veritrail.Checkpoint, error) {
	return scanCheckpoint(s.rdb.QueryRowContext(ctx, `SELECT size, root, note, signed_at FROM checkpoints
		WHERE org_id = ? ORDER BY size DESC LIMIT 1`, org))
}

// Checkpoints implements veritrail.LogStore.
func (s *Store) Checkpoints(ctx context.Context, org int64, fromSize int64, limit int) ([]*veritrail.Checkpoint, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT size, root, note, signed_at FROM checkpoints
		WHERE org_id = ? AND size >= ? ORDER BY size LIMIT ?`, org, fromSize, limit)
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
	_, err := s.wdb.ExecContext(ctx, `INSERT INTO witness_log (org_id, size, url, ok, detail, at) VALUES (?, ?, ?, ?, ?, ?)`,
		org, size, url, ok, detail, s.now().UnixNano())
	return err
}

// Setting implements veritrail.LogStore.
func (s *Store) Setting(ctx context.Context, key, def string) (string, error) {
	if !strings.HasPrefix(key, "x_") && key != "bucket_shift" {
		key = "x_" + key // keep store-internal keys apart
	}
	if def != "" && !s.opts.ReadOnly {
		if _, err := s.wdb.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING`, key, def); err != nil {
			return "", err
		}
	}
	var v string
	err := s.rdb.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", veritrail.Errorf(veritrail.ENotFound, "setting %s not set", key)
	}
	return v, err
}

// WitnessLog implements veritrail.LogStore.
func (s *Store) WitnessLog(ctx context.Context, org int64, limit int) ([]veritrail.WitnessAttempt, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT size, url, ok, detail, at FROM witness_log
		WHERE org_id = ? ORDER BY at DESC, rowid DESC LIMIT ?`, org, limit)
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
	_, err := s.wdb.ExecContext(ctx, `INSERT INTO cosignatures (org_id, size, key_name, line, at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (org_id, size, key_name) DO UPDATE SET line = excluded.line, at = excluded.at`,
		org, c.Size, c.KeyName, c.Line, c.At.UnixNano())
	return err
}

// Cosignatures implements veritrail.LogStore.
func (s *Store) Cosignatures(ctx context.Context, org int64, sizes int) ([]*veritrail.Cosignature, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT size, key_name, line, at FROM cosignatures
		WHERE org_id = ? AND size IN (SELECT DISTINCT size FROM cosignatures WHERE org_id = ? ORDER BY size DESC LIMIT ?)
		ORDER BY size DESC, key_name`, org, org, sizes)
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
