package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	veritrail "github.com/veritrail/veritrail"
)

// CreateOrg implements veritrail.OrgStore.
func (s *Store) CreateOrg(ctx context.Context, name string) (*veritrail.Org, error) {
	if !veritrail.ValidOrgName(name) {
		return nil, veritrail.Errorf(veritrail.EInvalid, "organization name %q: use 1 to 64 characters from a-z, 0-9 and -", name)
	}
	now := s.now().UTC()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	var id int64
	err = tx.QueryRow(ctx, `INSERT INTO orgs (name, created_at) VALUES ($1, $2) RETURNING id`, name, now.UnixNano()).Scan(&id)
	if err != nil {
		return nil, pgErr(err, fmt.Sprintf("organization %q already exists", name))
	}
	// The log head row exists from the start: appends lock it.
	if _, err := tx.Exec(ctx, `INSERT INTO log_heads (org_id, size, root, compact) VALUES ($1, 0, NULL, ''::bytea)`, id); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, pgErr(err, fmt.Sprintf("organization %q already exists", name))
	}
	return &veritrail.Org{ID: id, Name: name, CreatedAt: now}, nil
}

func scanOrg(row pgx.Row) (*veritrail.Org, error) {
	var o veritrail.Org
	var created int64
	if err := row.Scan(&o.ID, &o.Name, &created); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, veritrail.Errorf(veritrail.ENotFound, "organization not found")
		}
		return nil, err
	}
	o.CreatedAt = time.Unix(0, created).UTC()
	return &o, nil
}

// OrgByName implements veritrail.OrgStore.
func (s *Store) OrgByName(ctx context.Context, name string) (*veritrail.Org, error) {
	o, err := scanOrg(s.pool.QueryRow(ctx, `SELECT id, name, created_at FROM orgs WHERE name = $1`, name))
	if veritrail.ErrorCode(err) == veritrail.ENotFound {
		return nil, veritrail.Errorf(veritrail.ENotFound, "organization %q not found", name)
	}
	return o, err
}

// OrgByID implements veritrail.OrgStore.
func (s *Store) OrgByID(ctx context.Context, id int64) (*veritrail.Org, error) {
	return scanOrg(s.pool.QueryRow(ctx, `SELECT id, name, created_at FROM orgs WHERE id = $1`, id))
}

// ListOrgs implements veritrail.OrgStore.
func (s *Store) ListOrgs(ctx context.Context) ([]*veritrail.Org, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, name, created_at FROM orgs ORDER BY id`)
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

// CreateToken implements veritrail.TokenStore. A token whose lookup key
// names no organization (veritrail.LookupOrg) is also entered in
// token_routes, in the same transaction, so that TokenByLookup finds its
// organization.
func (s *Store) CreateToken(ctx context.Context, t *veritrail.Token) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now().UTC()
	}
	org, named := veritrail.LookupOrg(t.Lookup)
	if named && org != t.OrgID {
		return veritrail.Errorf(veritrail.EInvalid, "the token's secret names organization %d, not the token's, %d", org, t.OrgID)
	}
	const conflict = "a token with this id or secret already exists"
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO tokens (id, org_id, lookup, hash, name, role, scopes, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		t.ID, t.OrgID, t.Lookup, t.Hash, t.Name, t.Role, strings.Join(t.Scopes, " "), t.CreatedAt.UnixNano(), nsOrNil(t.ExpiresAt)); err != nil {
		return orgRowErr(err, conflict)
	}
	if !named {
		if _, err := tx.Exec(ctx, `INSERT INTO token_routes (lookup, org_id) VALUES ($1, $2)`, t.Lookup, t.OrgID); err != nil {
			return orgRowErr(err, conflict)
		}
	}
	return orgRowErr(tx.Commit(ctx), conflict)
}

// orgRowErr maps the error of inserting a row of an organization: a taken
// key is EConflict (with the message conflict), a missing organization
// (foreign key) ENotFound.
func orgRowErr(err error, conflict string) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" {
		return veritrail.Errorf(veritrail.ENotFound, "organization not found")
	}
	return pgErr(err, conflict)
}

const tokenColumns = `id, org_id, lookup, hash, name, role, scopes, created_at, expires_at, last_used_at, revoked_at`

func scanToken(row pgx.Row) (*veritrail.Token, error) {
	var t veritrail.Token
	var scopes string
	var created int64
	var expires, used, revoked *int64
	if err := row.Scan(&t.ID, &t.OrgID, &t.Lookup, &t.Hash, &t.Name, &t.Role, &scopes, &created, &expires, &used, &revoked); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, veritrail.Errorf(veritrail.ENotFound, "token not found")
		}
		return nil, err
	}
	if scopes != "" {
		t.Scopes = strings.Fields(scopes)
	}
	t.CreatedAt = time.Unix(0, created).UTC()
	t.ExpiresAt, t.LastUsedAt, t.RevokedAt = timePtr(expires), timePtr(used), timePtr(revoked)
	return &t, nil
}

// TokenByLookup implements veritrail.TokenStore: in the organization the
// lookup key names, else in the one token_routes gives, so that on Citus
// the token is read from one shard.
func (s *Store) TokenByLookup(ctx context.Context, lookup string) (*veritrail.Token, error) {
	org, named := veritrail.LookupOrg(lookup)
	if !named {
		err := s.pool.QueryRow(ctx, `SELECT org_id FROM token_routes WHERE lookup = $1`, lookup).Scan(&org)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, veritrail.Errorf(veritrail.ENotFound, "token not found")
		}
		if err != nil {
			return nil, err
		}
	}
	return scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE org_id = $1 AND lookup = $2`, org, lookup))
}

// TokenByID implements veritrail.TokenStore.
func (s *Store) TokenByID(ctx context.Context, org int64, id string) (*veritrail.Token, error) {
	return scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE org_id = $1 AND id = $2`, org, id))
}

// ListTokens implements veritrail.TokenStore.
func (s *Store) ListTokens(ctx context.Context, org int64) ([]*veritrail.Token, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE org_id = $1 ORDER BY created_at DESC, id`, org)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*veritrail.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken implements veritrail.TokenStore: the token and the
// revocation generation change in one transaction (revocations.go).
func (s *Store) RevokeToken(ctx context.Context, org int64, id string, at time.Time) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	tag, err := tx.Exec(ctx, `UPDATE tokens SET revoked_at = coalesce(revoked_at, $1) WHERE org_id = $2 AND id = $3`, at.UnixNano(), org, id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return veritrail.Errorf(veritrail.ENotFound, "token %q not found", id)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO token_generations AS g (org_id, generation) VALUES ($1, 1)
		ON CONFLICT (org_id) DO UPDATE SET generation = g.generation + 1`, org); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// TouchTokens implements veritrail.TokenStore.
func (s *Store) TouchTokens(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	ids := make([]string, 0, len(used))
	ats := make([]int64, 0, len(used))
	for id, at := range used {
		ids, ats = append(ids, id), append(ats, at.UnixNano())
	}
	// Without a join, so that Citus runs it on every shard as it is.
	_, err := s.pool.Exec(ctx, `UPDATE tokens SET last_used_at = greatest(coalesce(last_used_at, 0), ($2::bigint[])[array_position($1::text[], id)])
		WHERE id = ANY($1::text[])`, ids, ats)
	return err
}

// CreateUser implements veritrail.UserStore.
func (s *Store) CreateUser(ctx context.Context, u *veritrail.User) error {
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.now().UTC()
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO users (id, org_id, email, name, role, oidc_subject, oidc_issuer, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, u.ID, u.OrgID, strings.ToLower(u.Email), u.Name, u.Role, u.OIDCSubject, u.OIDCIssuer, u.CreatedAt.UnixNano())
	return orgRowErr(err, fmt.Sprintf("a user with e-mail %q already exists", u.Email))
}

const userColumns = `id, org_id, email, name, role, oidc_subject, oidc_issuer, created_at, disabled_at`

func scanUser(row pgx.Row) (*veritrail.User, error) {
	var u veritrail.User
	var created int64
	var disabled *int64
	if err := row.Scan(&u.ID, &u.OrgID, &u.Email, &u.Name, &u.Role, &u.OIDCSubject, &u.OIDCIssuer, &created, &disabled); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, veritrail.Errorf(veritrail.ENotFound, "user not found")
		}
		return nil, err
	}
	u.CreatedAt, u.DisabledAt = time.Unix(0, created).UTC(), timePtr(disabled)
	return &u, nil
}

func (s *Store) users(ctx context.Context, where string, args ...any) ([]*veritrail.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users WHERE `+where+` ORDER BY created_at, id`, args...)
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
	return s.users(ctx, `org_id = $1`, org)
}

// UsersByEmail implements veritrail.UserStore.
func (s *Store) UsersByEmail(ctx context.Context, email string) ([]*veritrail.User, error) {
	return s.users(ctx, `email = $1`, strings.ToLower(email))
}

// UserByID implements veritrail.UserStore.
func (s *Store) UserByID(ctx context.Context, org int64, id string) (*veritrail.User, error) {
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE org_id = $1 AND id = $2`, org, id))
}

// DisableUser implements veritrail.UserStore.
func (s *Store) DisableUser(ctx context.Context, org int64, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET disabled_at = coalesce(disabled_at, $1) WHERE org_id = $2 AND id = $3`, at.UnixNano(), org, id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return veritrail.Errorf(veritrail.ENotFound, "user %q not found", id)
	}
	return nil
}

// SetUserRole implements veritrail.UserStore.
func (s *Store) SetUserRole(ctx context.Context, org int64, id, role string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET role = $1 WHERE org_id = $2 AND id = $3`, role, org, id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return veritrail.Errorf(veritrail.ENotFound, "user %q not found", id)
	}
	return nil
}

// CreateTeam implements veritrail.TeamStore.
func (s *Store) CreateTeam(ctx context.Context, t *veritrail.Team) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now().UTC()
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO teams (id, org_id, name, created_at) VALUES ($1, $2, $3, $4)`, t.ID, t.OrgID, t.Name, t.CreatedAt.UnixNano())
	return orgRowErr(err, "a team with this id already exists")
}

// ListTeams implements veritrail.TeamStore.
func (s *Store) ListTeams(ctx context.Context, org int64) ([]*veritrail.Team, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, org_id, name, created_at FROM teams WHERE org_id = $1 AND deleted_at IS NULL ORDER BY created_at, id`, org)
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
	tag, err := s.pool.Exec(ctx, `UPDATE teams SET deleted_at = $1 WHERE org_id = $2 AND id = $3 AND deleted_at IS NULL`, at.UnixNano(), org, id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return veritrail.Errorf(veritrail.ENotFound, "team %q not found", id)
	}
	return nil
}

// OrgSettings implements veritrail.SettingsStore.
func (s *Store) OrgSettings(ctx context.Context, org int64) (*veritrail.Settings, error) {
	var body string
	err := s.pool.QueryRow(ctx, `SELECT body FROM settings WHERE org_id = $1`, org).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return veritrail.DefaultSettings(), nil
	}
	if err != nil {
		return nil, err
	}
	var st veritrail.Settings
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return nil, fmt.Errorf("settings of org %d: %w", org, err)
	}
	return &st, nil
}

// PutOrgSettings implements veritrail.SettingsStore.
func (s *Store) PutOrgSettings(ctx context.Context, org int64, st *veritrail.Settings) error {
	body, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO settings (org_id, body, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (org_id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`, org, string(body), s.now().UnixNano())
	return err
}

// Setting implements veritrail.LogStore: set-once installation settings,
// shared by every node (the first node's value wins).
func (s *Store) Setting(ctx context.Context, key, def string) (string, error) {
	key = "x_" + key
	if def != "" {
		if _, err := s.pool.Exec(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING`, key, def); err != nil {
			return "", err
		}
	}
	var v string
	err := s.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", veritrail.Errorf(veritrail.ENotFound, "setting %s not set", key)
	}
	return v, err
}
