package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	veritrail "github.com/veritrail/veritrail"
)

const sinkColumns = `id, org_id, name, type, config, created_at, updated_at, delivered, delivered_at,
	paused, paused_reason, failures, last_error, last_error_at`

func scanSink(row pgx.Row) (*veritrail.Sink, error) {
	var k veritrail.Sink
	var created, updated int64
	var deliveredAt, lastErrorAt *int64
	if err := row.Scan(&k.ID, &k.OrgID, &k.Name, &k.Type, &k.Config, &created, &updated, &k.Delivered, &deliveredAt,
		&k.Paused, &k.PausedReason, &k.Failures, &k.LastError, &lastErrorAt); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
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
	_, err := s.pool.Exec(ctx, `INSERT INTO sinks (id, org_id, name, type, config, created_at, updated_at, delivered, paused, paused_reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, k.ID, k.OrgID, k.Name, k.Type, k.Config, k.CreatedAt.UnixNano(), k.UpdatedAt.UnixNano(),
		k.Delivered, k.Paused, k.PausedReason)
	return pgErr(err, fmt.Sprintf("a sink named %q already exists", k.Name))
}

// SinkByID implements veritrail.SinkStore.
func (s *Store) SinkByID(ctx context.Context, org int64, id string) (*veritrail.Sink, error) {
	return scanSink(s.pool.QueryRow(ctx, `SELECT `+sinkColumns+` FROM sinks WHERE org_id = $1 AND id = $2`, org, id))
}

// ListSinks implements veritrail.SinkStore.
func (s *Store) ListSinks(ctx context.Context, org int64) ([]*veritrail.Sink, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+sinkColumns+` FROM sinks WHERE org_id = $1 ORDER BY created_at, id`, org)
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

func oneSink(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return veritrail.Errorf(veritrail.ENotFound, "sink not found")
	}
	return nil
}

// UpdateSink implements veritrail.SinkStore.
func (s *Store) UpdateSink(ctx context.Context, k *veritrail.Sink) error {
	tag, err := s.pool.Exec(ctx, `UPDATE sinks SET name = $1, config = $2, paused = $3, paused_reason = $4, updated_at = $5,
		failures = CASE WHEN $3 THEN failures ELSE 0 END WHERE org_id = $6 AND id = $7`,
		k.Name, k.Config, k.Paused, k.PausedReason, k.UpdatedAt.UnixNano(), k.OrgID, k.ID)
	if err != nil {
		return pgErr(err, fmt.Sprintf("a sink named %q already exists", k.Name))
	}
	return oneSink(tag, nil)
}

// DeleteSink implements veritrail.SinkStore.
func (s *Store) DeleteSink(ctx context.Context, org int64, id string) error {
	return oneSink(s.pool.Exec(ctx, `DELETE FROM sinks WHERE org_id = $1 AND id = $2`, org, id))
}

// AdvanceSink implements veritrail.SinkStore: a compare-and-set on the
// cursor, committed (synchronous_commit) when it returns.
func (s *Store) AdvanceSink(ctx context.Context, org int64, id string, from, to int64, at time.Time) error {
	if to <= from {
		return veritrail.Errorf(veritrail.EInvalid, "a sink's cursor only moves forward (%d to %d)", from, to)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE sinks SET delivered = $1, delivered_at = $2, failures = 0
		WHERE org_id = $3 AND id = $4 AND delivered = $5`, to, at.UnixNano(), org, id, from)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	if _, err := s.SinkByID(ctx, org, id); err != nil {
		return err
	}
	return veritrail.Errorf(veritrail.EConflict, "sink %s: its cursor is no longer at %d", id, from)
}

// SinkFailed implements veritrail.SinkStore.
func (s *Store) SinkFailed(ctx context.Context, org int64, id string, f veritrail.SinkFailure) error {
	return oneSink(s.pool.Exec(ctx, `UPDATE sinks SET failures = $1, last_error = $2, last_error_at = $3,
		paused = CASE WHEN $4 THEN true ELSE paused END, paused_reason = CASE WHEN $4 THEN $2 ELSE paused_reason END
		WHERE org_id = $5 AND id = $6`, f.Failures, f.Error, f.At.UnixNano(), f.Pause, org, id))
}
