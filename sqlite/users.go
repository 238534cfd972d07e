package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// CreateUser implements veritrail.UserStore.
func (s *Store) CreateUser(ctx context.Context, u *veritrail.User) error {
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.now().UTC()
	}
	_, err := s.wdb.ExecContext(ctx, `INSERT INTO users (id, org_id, email, name, role, oidc_subject, oidc_issuer, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, u.ID, u.OrgID, strings.ToLower(u.Email), u.Name, u.Role, u.OIDCSubject, u.OIDCIssuer, u.CreatedAt.UnixNano())
	if isUniqueViolation(err) {
		return veritrail.Errorf(veritrail.EConflict, "a user with e-mail %q already exists", u.Email)
	}
	if isForeignKeyViolation(err) {
		return veritrail.Errorf(veritrail.ENotFound, "organization not found")
	}
	return err
}

const userColumns = `id, org_id, email, name, role, oidc_subject, oidc_issuer, created_at, disabled_at`

func scanUser(row interface{ Scan(...any) error }) (*veritrail.User, error) {
	var u veritrail.User
	var created int64
	var disabled sql.NullInt64
	if err := row.Scan(&u.ID, &u.OrgID, &u.Email, &u.Name, &u.Role, &u.OIDCSubject, &u.OIDCIssuer, &created, &disabled); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, veritrail.Errorf(veritrail.ENotFound, "user not found")
		}
		return nil, err
	}
	u.CreatedAt, u.DisabledAt = time.Unix(0, created).UTC(), timePtr(disabled)
	return &u, nil
}

func (s *Store) users(ctx context.Context, where string, args ...any) ([]*veritrail.User, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*veritrail.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// ListUsers implements veritrail.UserStore.
func (s *Store) ListUsers(ctx context.Context, org int64) ([]*veritrail.User, error) {
	return s.users(ctx, `org_id = ?`, org)
}

// UsersByEmail implements veritrail.UserStore.
func (s *Store) UsersByEmail(ctx context.Context, email string) ([]*veritrail.User, error) {
	return s.users(ctx, `email = ?`, strings.ToLower(email))
}

// UserByID implements veritrail.UserStore.
func (s *Store) UserByID(ctx context.Context, org int64, id string) (*veritrail.User, error) {
	return scanUser(s.rdb.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE org_id = ? AND id = ?`, org, id))
}

// DisableUser implements veritrail.UserStore.
func (s *Store) DisableUser(ctx context.Context, org int64, id string, at time.Time) error {
	res, err := s.wdb.ExecContext(ctx, `UPDATE users SET disabled_at = coalesce(disabled_at, ?) WHERE org_id = ? AND id = ?`, at.UnixNano(), org, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return veritrail.Errorf(veritrail.ENotFound, "user %q not found", id)
	}
	return nil
}

// SetUserRole implements veritrail.UserStore.
func (s *Store) SetUserRole(ctx context.Context, org int64, id, role string) error {
	res, err := s.wdb.ExecContext(ctx, `UPDATE users SET role = ? WHERE org_id = ? AND id = ?`, role, org, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return veritrail.Errorf(veritrail.ENotFound, "user %q not found", id)
	}
	return nil
}

// CreateTeam implements veritrail.TeamStore.
func (s *Store) CreateTeam(ctx context.Context, t *veritrail.Team) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now().UTC()
	}
	_, err := s.wdb.ExecContext(ctx, `INSERT INTO teams (id, org_id, name, created_at) VALUES (?, ?, ?, ?)`,
		t.ID, t.OrgID, t.Name, t.CreatedAt.UnixNano())
	if isUniqueViolation(err) {
		return veritrail.Errorf(veritrail.EConflict, "a team with this id already exists")
	}
	if isForeignKeyViolation(err) {
		return veritrail.Errorf(veritrail.ENotFound, "organization not found")
	}
	return err
}

// ListTeams implements veritrail.TeamStore.
func (s *Store) ListTeams(ctx context.Context, org int64) ([]*veritrail.Team, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, org_id, name, created_at FROM teams
		WHERE org_id = ? AND deleted_at IS NULL ORDER BY created_at, id`, org)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*veritrail.Team
	for rows.Next() {
		var t veritrail.Team
		var created int64
		if err := rows.Scan(&t.ID, &t.OrgID, &t.Name, &created); err != nil {
			return nil, err
		}
		t.CreatedAt = time.Unix(0, created).UTC()
		out = append(out, &t)
	}
	return out, rows.Err()
}

// DeleteTeam implements veritrail.TeamStore.
func (s *Store) DeleteTeam(ctx context.Context, org int64, id string, at time.Time) error {
	res, err := s.wdb.ExecContext(ctx, `UPDATE teams SET deleted_at = ? WHERE org_id = ? AND id = ? AND deleted_at IS NULL`, at.UnixNano(), org, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return veritrail.Errorf(veritrail.ENotFound, "team %q not found", id)
	}
	return nil
}
