package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

const sinkColumns = `id, org_id, name, type, config, created_at, updated_at, delivered, delivered_at,
	paused, paused_reason, failures, last_error, last_error_at`

func scanSink(row interface{ Scan(...any) error }) (*veritrail.Sink, error) {
	var k veritrail.Sink
	var created, updated int64
	var deliveredAt, lastErrorAt sql.NullInt64
	if err := row.Scan(&k.ID, &k.OrgID, &k.Name, &k.Type, &k.Config, &created, &updated, &k.Delivered, &deliveredAt,
		&k.Paused, &k.PausedReason, &k.Failures, &k.LastError, &lastErrorAt); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, veritrail.Errorf(veritrail.ENotFound, "sink not found")
		}
		return nil, err
	}
	k.CreatedAt, k.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	k.DeliveredAt, k.LastErrorAt = timePtr(deliveredAt), timePtr(lastErrorAt)
	return &k, nil
}

// CreateSink implements veritrail.SinkStore.
func (s *Store) CreateSink(ctx context.Context, k *veritrail.Sink) error {
	_, err := s.wdb.ExecContext(ctx, `INSERT INTO sinks (id, org_id, name, type, config, created_at, updated_at, delivered, paused, paused_reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, k.ID, k.OrgID, k.Name, k.Type, k.Config, k.CreatedAt.UnixNano(), k.UpdatedAt.UnixNano(),
		k.Delivered, k.Paused, k.PausedReason)
	if isUniqueViolation(err) {
		return veritrail.Errorf(veritrail.EConflict, "a sink named %q already exists", k.Name)
	}
	return err
}

// SinkByID implements veritrail.SinkStore.
func (s *Store) SinkByID(ctx context.Context, org int64, id string) (*veritrail.Sink, error) {
	return scanSink(s.rdb.QueryRowContext(ctx, `SELECT `+sinkColumns+` FROM sinks WHERE org_id = ? AND id = ?`, org, id))
}

// ListSinks implements veritrail.SinkStore.
func (s *Store) ListSinks(ctx context.Context, org int64) ([]*veritrail.Sink, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+sinkColumns+` FROM sinks WHERE org_id = ? ORDER BY created_at, id`, org)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*veritrail.Sink
	for rows.Next() {
		k, err := scanSink(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

func notFoundUnlessOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return veritrail.Errorf(veritrail.ENotFound, "sink not found")
	}
	return nil
}

// UpdateSink implements veritrail.SinkStore.
func (s *Store) UpdateSink(ctx context.Context, k *veritrail.Sink) error {
	res, err := s.wdb.ExecContext(ctx, `UPDATE sinks SET name = ?, config = ?, paused = ?, paused_reason = ?, updated_at = ?,
		failures = CASE WHEN ? THEN failures ELSE 0 END WHERE org_id = ? AND id = ?`,
		k.Name, k.Config, k.Paused, k.PausedReason, k.UpdatedAt.UnixNano(), k.Paused, k.OrgID, k.ID)
	if isUniqueViolation(err) {
		return veritrail.Errorf(veritrail.EConflict, "a sink named %q already exists", k.Name)
	}
	return notFoundUnlessOne(res, err)
}

// DeleteSink implements veritrail.SinkStore.
func (s *Store) DeleteSink(ctx context.Context, org int64, id string) error {
	return notFoundUnlessOne(s.wdb.ExecContext(ctx, `DELETE FROM sinks WHERE org_id = ? AND id = ?`, org, id))
}

// AdvanceSink implements veritrail.SinkStore. The write connection runs
// with synchronous=FULL: the commit is on disk when it returns.
func (s *Store) AdvanceSink(ctx context.Context, org int64, id string, from, to int64, at time.Time) error {
	if to <= from {
		return veritrail.Errorf(veritrail.EInvalid, "a sink's cursor only moves forward (%d to %d)", from, to)
	}
	res, err := s.wdb.ExecContext(ctx, `UPDATE sinks SET delivered = ?, delivered_at = ?, failures = 0
		WHERE org_id = ? AND id = ? AND delivered = ?`, to, at.UnixNano(), org, id, from)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 1 {
		return nil
	}
	if _, err := s.SinkByID(ctx, org, id); err != nil {
		return err
	}
	return veritrail.Errorf(veritrail.EConflict, "sink %s: its cursor is no longer at %d", id, from)
}

// SinkFailed implements veritrail.SinkStore.
func (s *Store) SinkFailed(ctx context.Context, org int64, id string, f veritrail.SinkFailure) error {
	return notFoundUnlessOne(s.wdb.ExecContext(ctx, `UPDATE sinks SET failures = ?, last_error = ?, last_error_at = ?,
		paused = CASE WHEN ? THEN 1 ELSE paused END, paused_reason = CASE WHEN ? THEN ? ELSE paused_reason END
		WHERE org_id = ? AND id = ?`, f.Failures, f.Error, f.At.UnixNano(), f.Pause, f.Pause, f.Error, org, id))
}
