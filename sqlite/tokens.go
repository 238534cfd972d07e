package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// CreateToken implements veritrail.TokenStore.
func (s *Store) CreateToken(ctx context.Context, t *veritrail.Token) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now().UTC()
	}
	_, err := s.wdb.ExecContext(ctx, `INSERT INTO tokens
		(id, org_id, lookup, hash, name, role, scopes, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.OrgID, t.Lookup, t.Hash, t.Name, t.Role, strings.Join(t.Scopes, " "),
		t.CreatedAt.UnixNano(), nsOrNil(t.ExpiresAt))
	if isUniqueViolation(err) {
		return veritrail.Errorf(veritrail.EConflict, "a token with this id or secret already exists")
	}
	if isForeignKeyViolation(err) {
		return veritrail.Errorf(veritrail.ENotFound, "organization not found")
	}
	return err
}

const tokenColumns = `id, org_id, lookup, hash, name, role, scopes, created_at, expires_at, last_used_at, revoked_at`

func scanToken(row interface{ Scan(...any) error }) (*veritrail.Token, error) {
	var t veritrail.Token
	var scopes string
	var created int64
	var expires, used, revoked sql.NullInt64
	if err := row.Scan(&t.ID, &t.OrgID, &t.Lookup, &t.Hash, &t.Name, &t.Role, &scopes,
		&created, &expires, &used, &revoked); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
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

// TokenByLookup implements veritrail.TokenStore.
func (s *Store) TokenByLookup(ctx context.Context, lookup string) (*veritrail.Token, error) {
	return scanToken(s.rdb.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE lookup = ?`, lookup))
}

// TokenByID implements veritrail.TokenStore.
func (s *Store) TokenByID(ctx context.Context, org int64, id string) (*veritrail.Token, error) {
	return scanToken(s.rdb.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE org_id = ? AND id = ?`, org, id))
}

// ListTokens implements veritrail.TokenStore.
func (s *Store) ListTokens(ctx context.Context, orgID int64) ([]*veritrail.Token, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE org_id = ? ORDER BY created_at DESC, id`, orgID)
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
// revocation generation change in one transaction, then running servers
// are told through the revocations file (revocations.go).
func (s *Store) RevokeToken(ctx context.Context, orgID int64, id string, at time.Time) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = coalesce(revoked_at, ?) WHERE org_id = ? AND id = ?`,
		at.UnixNano(), orgID, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return veritrail.Errorf(veritrail.ENotFound, "token %q not found", id)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'token_generation'`); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return s.revoked.announce()
}

// TouchTokens implements veritrail.TokenStore.
func (s *Store) TouchTokens(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for id, at := range used {
		if _, err := tx.ExecContext(ctx, `UPDATE tokens SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?`, at.UnixNano(), id); err != nil {
			return err
		}
	}
	return tx.Commit()
}
