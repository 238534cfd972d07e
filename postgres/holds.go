package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	veritrail "github.com/veritrail/veritrail"
)

// CreateHold implements veritrail.HoldStore.
func (s *Store) CreateHold(ctx context.Context, h *veritrail.Hold) error {
	if h.PlacedAt.IsZero() {
		h.PlacedAt = s.now().UTC()
	}
	body, err := json.Marshal(h)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO holds (org_id, id, placed_at, body) VALUES ($1, $2, $3, $4)`,
		h.OrgID, h.ID, h.PlacedAt.UnixNano(), string(body))
	return orgRowErr(err, fmt.Sprintf("a hold with id %q already exists", h.ID))
}

// ListHolds implements veritrail.HoldStore.
func (s *Store) ListHolds(ctx context.Context, org int64) ([]*veritrail.Hold, error) {
	rows, err := s.pool.Query(ctx, `SELECT body::text FROM holds WHERE org_id = $1 ORDER BY placed_at DESC, id DESC`, org)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*veritrail.Hold
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		h, err := veritrail.UnmarshalHold(org, []byte(body))
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// HoldByID implements veritrail.HoldStore.
func (s *Store) HoldByID(ctx context.Context, org int64, id string) (*veritrail.Hold, error) {
	var body string
	err := s.pool.QueryRow(ctx, `SELECT body::text FROM holds WHERE org_id = $1 AND id = $2`, org, id).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, veritrail.Errorf(veritrail.ENotFound, "hold %q not found", id)
	}
	if err != nil {
		return nil, err
	}
	return veritrail.UnmarshalHold(org, []byte(body))
}

// ReleaseHold implements veritrail.HoldStore.
func (s *Store) ReleaseHold(ctx context.Context, org int64, id string, at time.Time, by veritrail.Actor, reason string) (*veritrail.Hold, error) {
	h, err := s.HoldByID(ctx, org, id)
	if err != nil {
		return nil, err
	}
	if err := h.Release(at, by, reason); err != nil {
		return nil, err
	}
	body, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE holds SET released_at = $1, body = $2 WHERE org_id = $3 AND id = $4 AND released_at IS NULL`,
		h.ReleasedAt.UnixNano(), string(body), org, id)
	if err != nil {
		return nil, err
	}
	if tag.RowsAffected() == 0 {
		return nil, veritrail.Errorf(veritrail.EConflict, "hold %q was released meanwhile", id)
	}
	return h, nil
}
