package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	veritrail "github.com/veritrail/veritrail"
)

// CreateSession implements veritrail.SessionStore.
func (s *Store) CreateSession(ctx context.Context, ss *veritrail.Session) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions
		(id, org_id, user_id, token_id, method, issuer, subject, lookup, hash, created_at, last_seen_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		ss.ID, ss.OrgID, ss.UserID, ss.TokenID, ss.Method, ss.Issuer, ss.Subject, ss.Lookup, ss.Hash,
		ss.CreatedAt.UnixNano(), ss.LastSeenAt.UnixNano(), ss.ExpiresAt.UnixNano())
	return pgErr(err, "a session with this id or secret already exists")
}

// SessionByLookup implements veritrail.SessionStore: in the organization
// the lookup key names (session secrets always name one), so that on Citus
// the session is read from one shard.
func (s *Store) SessionByLookup(ctx context.Context, lookup string) (*veritrail.Session, error) {
	var ss veritrail.Session
	var created, seen, expires int64
	org, named := veritrail.LookupOrg(lookup)
	if !named {
		return nil, veritrail.Errorf(veritrail.ENotFound, "session not found")
	}
	err := s.pool.QueryRow(ctx, `SELECT id, org_id, user_id, token_id, method, issuer, subject, lookup, hash,
		created_at, last_seen_at, expires_at FROM sessions WHERE org_id = $1 AND lookup = $2`, org, lookup).Scan(
		&ss.ID, &ss.OrgID, &ss.UserID, &ss.TokenID, &ss.Method, &ss.Issuer, &ss.Subject, &ss.Lookup, &ss.Hash,
		&created, &seen, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, veritrail.Errorf(veritrail.ENotFound, "session not found")
	}
	if err != nil {
		return nil, err
	}
	ss.CreatedAt, ss.LastSeenAt, ss.ExpiresAt = time.Unix(0, created).UTC(), time.Unix(0, seen).UTC(), time.Unix(0, expires).UTC()
	return &ss, nil
}

// TouchSession implements veritrail.SessionStore.
func (s *Store) TouchSession(ctx context.Context, org int64, id string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen_at = greatest(last_seen_at, $1) WHERE org_id = $2 AND id = $3`,
		at.UnixNano(), org, id)
	return err
}

// DeleteSession implements veritrail.SessionStore.
func (s *Store) DeleteSession(ctx context.Context, org int64, id string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE org_id = $1 AND id = $2`, org, id)
	return err
}

// DeleteUserSessions implements veritrail.SessionStore.
func (s *Store) DeleteUserSessions(ctx context.Context, org int64, userID string) (int64, error) {
	if userID == "" {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE org_id = $1 AND user_id = $2`, org, userID)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// DeleteExpiredSessions implements veritrail.SessionStore.
func (s *Store) DeleteExpiredSessions(ctx context.Context, t, idleBefore time.Time) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at < $2`,
		t.UnixNano(), idleBefore.UnixNano()); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM signin_links WHERE expires_at <= $1`, t.UnixNano())
	return err
}

// CreateSignInLink implements veritrail.SessionStore.
func (s *Store) CreateSignInLink(ctx context.Context, l *veritrail.SignInLink) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO signin_links (lookup, org_id, user_id, hash, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, l.Lookup, l.OrgID, l.UserID, l.Hash, l.CreatedAt.UnixNano(), l.ExpiresAt.UnixNano())
	return pgErr(err, "a sign-in link with this secret already exists")
}

// ConsumeSignInLink implements veritrail.SessionStore: DELETE … RETURNING
// takes the row lock, so of concurrent callers only one gets the row.
func (s *Store) ConsumeSignInLink(ctx context.Context, lookup string) (*veritrail.SignInLink, error) {
	var l veritrail.SignInLink
	var created, expires int64
	org, named := veritrail.LookupOrg(lookup)
	if !named {
		return nil, veritrail.Errorf(veritrail.ENotFound, "sign-in link not found")
	}
	err := s.pool.QueryRow(ctx, `DELETE FROM signin_links WHERE org_id = $1 AND lookup = $2
		RETURNING lookup, org_id, user_id, hash, created_at, expires_at`, org, lookup).Scan(
		&l.Lookup, &l.OrgID, &l.UserID, &l.Hash, &created, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, veritrail.Errorf(veritrail.ENotFound, "sign-in link not found")
	}
	if err != nil {
		return nil, err
	}
	l.CreatedAt, l.ExpiresAt = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
	return &l, nil
}
