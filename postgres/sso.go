package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	veritrail "github.com/veritrail/veritrail"
)

// SSOConfig implements veritrail.SSOStore.
func (s *Store) SSOConfig(ctx context.Context, org int64) (*veritrail.SSOConfig, error) {
	var body string
	err := s.pool.QueryRow(ctx, `SELECT body::text FROM sso_configs WHERE org_id = $1`, org).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
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
	_, err = s.pool.Exec(ctx, `INSERT INTO sso_configs (org_id, body, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (org_id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`, c.OrgID, string(body), c.UpdatedAt.UnixNano())
	return orgRowErr(err, "")
}

// UserByOIDC implements veritrail.SSOStore.
func (s *Store) UserByOIDC(ctx context.Context, org int64, issuer, subject string) (*veritrail.User, error) {
	var u veritrail.User
	var created int64
	var disabled *int64
	err := s.pool.QueryRow(ctx, `SELECT id, org_id, email, name, role, oidc_subject, oidc_issuer, created_at, disabled_at
		FROM users WHERE org_id = $1 AND oidc_issuer = $2 AND oidc_subject = $3 AND oidc_subject <> ''`, org, issuer, subject).
		Scan(&u.ID, &u.OrgID, &u.Email, &u.Name, &u.Role, &u.OIDCSubject, &u.OIDCIssuer, &created, &disabled)
	if errors.Is(err, pgx.ErrNoRows) {
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
	tag, err := s.pool.Exec(ctx, `UPDATE users SET oidc_issuer = $1, oidc_subject = $2
		WHERE org_id = $3 AND id = $4 AND (oidc_subject = '' OR (oidc_issuer = $1 AND oidc_subject = $2))`, issuer, subject, org, userID)
	if err != nil {
		return pgErr(err, "another user has this identity")
	}
	if tag.RowsAffected() == 0 {
		var one int
		if err := s.pool.QueryRow(ctx, `SELECT 1 FROM users WHERE org_id = $1 AND id = $2`, org, userID).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
			return veritrail.Errorf(veritrail.ENotFound, "user %q not found", userID)
		}
		return veritrail.Errorf(veritrail.EConflict, "user %q signs in with another identity", userID)
	}
	return nil
}
