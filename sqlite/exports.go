package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

const exportColumns = `id, org_id, token_id, format, query, with_content, notify, state, progress, size_bytes, path, error,
	created_at, started_at, finished_at, expires_at`

func scanExport(row interface{ Scan(...any) error }) (*veritrail.ExportJob, error) {
	var j veritrail.ExportJob
	var created int64
	var started, finished, expires sql.NullInt64
	if err := row.Scan(&j.ID, &j.OrgID, &j.TokenID, &j.Format, &j.Query, &j.WithContent, &j.Notify, &j.State, &j.Progress,
		&j.SizeBytes, &j.Path, &j.Error, &created, &started, &finished, &expires); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, veritrail.Errorf(veritrail.ENotFound, "export not found")
		}
		return nil, err
	}
	j.CreatedAt = time.Unix(0, created).UTC()
	j.StartedAt, j.FinishedAt, j.ExpiresAt = timePtr(started), timePtr(finished), timePtr(expires)
	return &j, nil
}

// CreateExport implements veritrail.ExportStore.
func (s *Store) CreateExport(ctx context.Context, j *veritrail.ExportJob) error {
	_, err := s.wdb.ExecContext(ctx, `INSERT INTO exports (id, org_id, token_id, format, query, with_content, notify, state, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, j.ID, j.OrgID, j.TokenID, j.Format, j.Query, j.WithContent, j.Notify, j.State, j.CreatedAt.UnixNano())
	return err
}

// ExportByID implements veritrail.ExportStore.
func (s *Store) ExportByID(ctx context.Context, org int64, id string) (*veritrail.ExportJob, error) {
	return scanExport(s.rdb.QueryRowContext(ctx, `SELECT `+exportColumns+` FROM exports WHERE org_id = ? AND id = ?`, org, id))
}

// ListExports implements veritrail.ExportStore.
func (s *Store) ListExports(ctx context.Context, org int64) ([]*veritrail.ExportJob, error) {
	return s.queryExports(ctx, `SELECT `+exportColumns+` FROM exports WHERE org_id = ? ORDER BY created_at DESC LIMIT 100`, org)
}

func (s *Store) queryExports(ctx context.Context, q string, args ...any) ([]*veritrail.ExportJob, error) {
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*veritrail.ExportJob
	for rows.Next() {
		j, err := scanExport(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// ClaimExport implements veritrail.ExportStore.
func (s *Store) ClaimExport(ctx context.Context, at time.Time) (*veritrail.ExportJob, error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	j, err := scanExport(tx.QueryRowContext(ctx, `SELECT `+exportColumns+` FROM exports WHERE state = 'pending' ORDER BY created_at LIMIT 1`))
	if err != nil {
		return nil, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE exports SET state = 'running', started_at = ? WHERE id = ? AND state = 'pending'`, at.UnixNano(), j.ID)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return nil, veritrail.Errorf(veritrail.EConflict, "export %s was claimed by another worker", j.ID)
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	j.State, j.StartedAt = veritrail.ExportRunning, &at
	return j, nil
}

// UpdateExport implements veritrail.ExportStore.
func (s *Store) UpdateExport(ctx context.Context, j *veritrail.ExportJob) error {
	_, err := s.wdb.ExecContext(ctx, `UPDATE exports SET state = ?, progress = ?, size_bytes = ?, path = ?, error = ?,
		finished_at = ?, expires_at = ? WHERE org_id = ? AND id = ?`, j.State, j.Progress, j.SizeBytes, j.Path, j.Error,
		nsOrNil(j.FinishedAt), nsOrNil(j.ExpiresAt), j.OrgID, j.ID)
	return err
}

// RequeueRunningExports implements veritrail.ExportStore.
func (s *Store) RequeueRunningExports(ctx context.Context) error {
	_, err := s.wdb.ExecContext(ctx, `UPDATE exports SET state = 'pending', progress = 0 WHERE state = 'running'`)
	return err
}

// ExpiredExports implements veritrail.ExportStore.
func (s *Store) ExpiredExports(ctx context.Context, t time.Time) ([]*veritrail.ExportJob, error) {
	return s.queryExports(ctx, `SELECT `+exportColumns+` FROM exports WHERE state = 'ready' AND expires_at < ?`, t.UnixNano())
}
