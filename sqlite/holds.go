package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

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
	_, err = s.wdb.ExecContext(ctx, `INSERT INTO holds (org_id, id, placed_at, body) VALUES (?, ?, ?, ?)`,
		h.OrgID, h.ID, h.PlacedAt.UnixNano(), string(body))
	if isUniqueViolation(err) {
		return veritrail.Errorf(veritrail.EConflict, "a hold with id %q already exists", h.ID)
	}
	if isForeignKeyViolation(err) {
		return veritrail.Errorf(veritrail.ENotFound, "organization not found")
	}
	return err
}

// ListHolds implements veritrail.HoldStore.
func (s *Store) ListHolds(ctx context.Context, org int64) ([]*veritrail.Hold, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT body FROM holds WHERE org_id = ? ORDER BY placed_at DESC, id DESC`, org)
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
	err := s.rdb.QueryRowContext(ctx, `SELECT body FROM holds WHERE org_id = ? AND id = ?`, org, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
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
	res, err := s.wdb.ExecContext(ctx, `UPDATE holds SET released_at = ?, body = ? WHERE org_id = ? AND id = ? AND released_at IS NULL`,
		h.ReleasedAt.UnixNano(), string(body), org, id)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, veritrail.Errorf(veritrail.EConflict, "hold %q was released meanwhile", id)
	}
	return h, nil
}
