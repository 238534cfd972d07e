package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	veritrail "github.com/veritrail/veritrail"
)

const exportColumns = `id, org_id, token_id, format, query, with_content, notify, state, progress, size_bytes, path, error,
	created_at, started_at, finished_at, expires_at`

func scanExport(row pgx.Row) (*veritrail.ExportJob, error) {
	var j veritrail.ExportJob
	var created int64
	var started, finished, expires *int64
	if err := row.Scan(&j.ID, &j.OrgID, &j.TokenID, &j.Format, &j.Query, &j.WithContent, &j.Notify, &j.State, &j.Progress,
		&j.SizeBytes, &j.Path, &j.Error, &created, &started, &finished, &expires); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
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
	_, err := s.pool.Exec(ctx, `INSERT INTO exports (id, org_id, token_id, format, query, with_content, notify, state, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, j.ID, j.OrgID, j.TokenID, j.Format, j.Query, j.WithContent, j.Notify, j.State, j.CreatedAt.UnixNano())
	return pgErr(err, "an export with this id exists")
}

// ExportByID implements veritrail.ExportStore.
func (s *Store) ExportByID(ctx context.Context, org int64, id string) (*veritrail.ExportJob, error) {
	return scanExport(s.pool.QueryRow(ctx, `SELECT `+exportColumns+` FROM exports WHERE org_id = $1 AND id = $2`, org, id))
}

// ListExports implements veritrail.ExportStore.
func (s *Store) ListExports(ctx context.Context, org int64) ([]*veritrail.ExportJob, error) {
	return s.queryExports(ctx, `SELECT `+exportColumns+` FROM exports WHERE org_id = $1 ORDER BY created_at DESC LIMIT 100`, org)
}

func (s *Store) queryExports(ctx context.Context, q string, args ...any) ([]*veritrail.ExportJob, error) {
	rows, err := s.pool.Query(ctx, q, args...)
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

// ClaimExport implements veritrail.ExportStore: the oldest pending job,
// claimed by a compare-and-set on its own row. The candidates are read
// without a lock (on Citus, one query over every shard); each claim then
// names its organization, so it locks one row of one shard and never rows
// of several organizations at once. A candidate another node claimed
// first is passed over.
func (s *Store) ClaimExport(ctx context.Context, at time.Time) (*veritrail.ExportJob, error) {
	const candidates = 8
	for {
		rows, err := s.pool.Query(ctx, `SELECT org_id, id FROM exports WHERE state = 'pending'
			ORDER BY created_at, org_id, id LIMIT `+fmt.Sprint(candidates))
		if err != nil {
			return nil, err
		}
		type key struct {
			org int64
			id  string
		}
		keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (k key, err error) {
			err = r.Scan(&k.org, &k.id)
			return k, err
		})
		if err != nil {
			return nil, err
		}
		if len(keys) == 0 {
			return nil, veritrail.Errorf(veritrail.ENotFound, "no pending export")
		}
		for _, k := range keys {
			j, err := scanExport(s.pool.QueryRow(ctx, `UPDATE exports SET state = 'running', started_at = $1, heartbeat_at = $1
				WHERE org_id = $2 AND id = $3 AND state = 'pending' RETURNING `+exportColumns, at.UnixNano(), k.org, k.id))
			if veritrail.ErrorCode(err) == veritrail.ENotFound {
				continue // another node claimed it first
			}
			return j, err
		}
	}
}

// UpdateExport implements veritrail.ExportStore.
func (s *Store) UpdateExport(ctx context.Context, j *veritrail.ExportJob) error {
	_, err := s.pool.Exec(ctx, `UPDATE exports SET state = $1, progress = $2, size_bytes = $3, path = $4, error = $5,
		finished_at = $6, expires_at = $7, heartbeat_at = $10 WHERE org_id = $8 AND id = $9`, j.State, j.Progress, j.SizeBytes, j.Path, j.Error,
		nsOrNil(j.FinishedAt), nsOrNil(j.ExpiresAt), j.OrgID, j.ID, s.now().UnixNano())
	return err
}

// RequeueRunningExports implements veritrail.ExportStore: running jobs
// whose worker has not saved them for two minutes (a live worker saves
// its progress every second) go back to pending.
func (s *Store) RequeueRunningExports(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `UPDATE exports SET state = 'pending', progress = 0
		WHERE state = 'running' AND coalesce(heartbeat_at, started_at, 0) < $1`, s.now().Add(-2*time.Minute).UnixNano())
	return err
}

// ExpiredExports implements veritrail.ExportStore.
func (s *Store) ExpiredExports(ctx context.Context, t time.Time) ([]*veritrail.ExportJob, error) {
	return s.queryExports(ctx, `SELECT `+exportColumns+` FROM exports WHERE state = 'ready' AND expires_at < $1`, t.UnixNano())
}
