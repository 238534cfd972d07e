package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// SSOConfig implements veritrail.SSOStore.
func (s *Store) SSOConfig(ctx context.Context, org int64) (*veritrail.SSOConfig, error) {
	var body string
	err := s.rdb.QueryRowContext(ctx, `SELECT body FROM sso_configs WHERE org_id = ?`, org).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, veritrail.Errorf(veritrail.ENotFound, "single sign-on is not set up for this organization")
	}
	if err != nil {
		return nil, err
	}
	return veritrail.UnmarshalSSOConfig(org, []byte(body))
}

// PutSSOConfig implements veritrail.SSOStore.
func (s *Store) PutSSOConfig(ctx context.Context, c *veritrail.SSOConfig) error {
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = s.now().UTC()
	}
	body, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = s.wdb.ExecContext(ctx, `INSERT INTO sso_configs (org_id, body, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (org_id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`, c.OrgID, string(body), c.UpdatedAt.UnixNano())
	if isForeignKeyViolation(err) {
		return veritrail.Errorf(veritrail.ENotFound, "organization not found")
	}
	return err
}

// UserByOIDC implements veritrail.SSOStore.
func (s *Store) UserByOIDC(ctx context.Context, org int64, issuer, subject string) (*veritrail.User, error) {
	var u veritrail.User
	var created int64
	var disabled sql.NullInt64
	err := s.rdb.QueryRowContext(ctx, `SELECT id, org_id, email, name, role, oidc_subject, oidc_issuer, created_at, disabled_at
		FROM users WHERE org_id = ? AND oidc_issuer = ? AND oidc_subject = ? AND oidc_subject <> ''`, org, issuer, subject).
		Scan(&u.ID, &u.OrgID, &u.Email, &u.Name, &u.Role, &u.OIDCSubject, &u.OIDCIssuer, &created, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, veritrail.Errorf(veritrail.ENotFound, "no user with this identity")
	}
	if err != nil {
		return nil, err
	}
	u.CreatedAt, u.DisabledAt = time.Unix(0, created).UTC(), timePtr(disabled)
	return &u, nil
}

// LinkUserOIDC implements veritrail.SSOStore.
func (s *Store) LinkUserOIDC(ctx context.Context, org int64, userID, issuer, subject string) error {
	res, err := s.wdb.ExecContext(ctx, `UPDATE users SET oidc_issuer = ?, oidc_subject = ?
		WHERE org_id = ? AND id = ? AND (oidc_subject = '' OR (oidc_issuer = ? AND oidc_subject = ?))`, issuer, subject, org, userID, issuer, subject)
	if isUniqueViolation(err) {
		return veritrail.Errorf(veritrail.EConflict, "another user has this identity")
	}
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var one int
		if err := s.rdb.QueryRowContext(ctx, `SELECT 1 FROM users WHERE org_id = ? AND id = ?`, org, userID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return veritrail.Errorf(veritrail.ENotFound, "user %q not found", userID)
		}
		return veritrail.Errorf(veritrail.EConflict, "user %q signs in with another identity", userID)
	}
	return nil
}
