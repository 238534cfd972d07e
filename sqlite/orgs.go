package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// CreateOrg implements veritrail.OrgStore.
func (s *Store) CreateOrg(ctx context.Context, name string) (*veritrail.Org, error) {
	if !veritrail.ValidOrgName(name) {
		return nil, veritrail.Errorf(veritrail.EInvalid, "organization name %q: use 1 to 64 characters from a-z, 0-9 and -", name)
	}
	now := s.now().UTC()
	res, err := s.wdb.ExecContext(ctx, `INSERT INTO orgs (name, created_at) VALUES (?, ?)`, name, now.UnixNano())
	if isUniqueViolation(err) {
		return nil, veritrail.Errorf(veritrail.EConflict, "organization %q already exists", name)
	}
	if err != nil {
		return nil, err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return nil, err
	}
	if id > maxOrgID {
		return nil, veritrail.Errorf(veritrail.EInternal, "too many organizations for one SQLite store")
	}
	return &veritrail.Org{ID: id, Name: name, CreatedAt: now}, nil
}

func scanOrg(row interface{ Scan(...any) error }) (*veritrail.Org, error) {
	var o veritrail.Org
	var created int64
	if err := row.Scan(&o.ID, &o.Name, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, veritrail.Errorf(veritrail.ENotFound, "organization not found")
		}
		return nil, err
	}
	o.CreatedAt = time.Unix(0, created).UTC()
	return &o, nil
}

// OrgByName implements veritrail.OrgStore.
func (s *Store) OrgByName(ctx context.Context, name string) (*veritrail.Org, error) {
	o, err := scanOrg(s.rdb.QueryRowContext(ctx, `SELECT id, name, created_at FROM orgs WHERE name = ?`, name))
	if veritrail.ErrorCode(err) == veritrail.ENotFound {
		return nil, veritrail.Errorf(veritrail.ENotFound, "organization %q not found", name)
	}
	return o, err
}

// OrgByID implements veritrail.OrgStore.
func (s *Store) OrgByID(ctx context.Context, id int64) (*veritrail.Org, error) {
	return scanOrg(s.rdb.QueryRowContext(ctx, `SELECT id, name, created_at FROM orgs WHERE id = ?`, id))
}

// ListOrgs implements veritrail.OrgStore.
func (s *Store) ListOrgs(ctx context.Context) ([]*veritrail.Org, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, name, created_at FROM orgs ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*veritrail.Org
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}
