package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// CreateSession implements veritrail.SessionStore.
func (s *Store) CreateSession(ctx context.Context, ss *veritrail.Session) error {
	_, err := s.wdb.ExecContext(ctx, `INSERT INTO sessions
		(id, org_id, user_id, token_id, method, issuer, subject, lookup, hash, created_at, last_seen_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ss.ID, ss.OrgID, ss.UserID, ss.TokenID, ss.Method, ss.Issuer, ss.Subject, ss.Lookup, ss.Hash,
		ss.CreatedAt.UnixNano(), ss.LastSeenAt.UnixNano(), ss.ExpiresAt.UnixNano())
	if isUniqueViolation(err) {
		return veritrail.Errorf(veritrail.EConflict, "a session with this id or secret already exists")
	}
	if isForeignKeyViolation(err) {
		return veritrail.Errorf(veritrail.ENotFound, "organization not found")
	}
	return err
}

// SessionByLookup implements veritrail.SessionStore.
func (s *Store) SessionByLookup(ctx context.Context, lookup string) (*veritrail.Session, error) {
	var ss veritrail.Session
	var created, seen, expires int64
	err := s.rdb.QueryRowContext(ctx, `SELECT id, org_id, user_id, token_id, method, issuer, subject, lookup, hash,
		created_at, last_seen_at, expires_at FROM sessions WHERE lookup = ?`, lookup).Scan(
		&ss.ID, &ss.OrgID, &ss.UserID, &ss.TokenID, &ss.Method, &ss.Issuer, &ss.Subject, &ss.Lookup, &ss.Hash,
		&created, &seen, &expires)
	if errors.Is(err, sql.ErrNoRows) {
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
	_, err := s.wdb.ExecContext(ctx, `UPDATE sessions SET last_seen_at = max(last_seen_at, ?) WHERE org_id = ? AND id = ?`,
		at.UnixNano(), org, id)
	return err
}

// DeleteSession implements veritrail.SessionStore.
func (s *Store) DeleteSession(ctx context.Context, org int64, id string) error {
	_, err := s.wdb.ExecContext(ctx, `DELETE FROM sessions WHERE org_id = ? AND id = ?`, org, id)
	return err
}

// DeleteUserSessions implements veritrail.SessionStore.
func (s *Store) DeleteUserSessions(ctx context.Context, org int64, userID string) (int64, error) {
	if userID == "" {
		return 0, nil
	}
	res, err := s.wdb.ExecContext(ctx, `DELETE FROM sessions WHERE org_id = ? AND user_id = ?`, org, userID)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// DeleteExpiredSessions implements veritrail.SessionStore.
func (s *Store) DeleteExpiredSessions(ctx context.Context, t, idleBefore time.Time) error {
	if _, err := s.wdb.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at < ?`,
		t.UnixNano(), idleBefore.UnixNano()); err != nil {
		return err
	}
	_, err := s.wdb.ExecContext(ctx, `DELETE FROM signin_links WHERE expires_at <= ?`, t.UnixNano())
	return err
}

// CreateSignInLink implements veritrail.SessionStore.
func (s *Store) CreateSignInLink(ctx context.Context, l *veritrail.SignInLink) error {
	_, err := s.wdb.ExecContext(ctx, `INSERT INTO signin_links (lookup, org_id, user_id, hash, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`, l.Lookup, l.OrgID, l.UserID, l.Hash, l.CreatedAt.UnixNano(), l.ExpiresAt.UnixNano())
	if isUniqueViolation(err) {
		return veritrail.Errorf(veritrail.EConflict, "a sign-in link with this secret already exists")
	}
	return err
}

// ConsumeSignInLink implements veritrail.SessionStore: one DELETE …
// RETURNING on the single writer connection, so only one caller can get
// the row.
func (s *Store) ConsumeSignInLink(ctx context.Context, lookup string) (*veritrail.SignInLink, error) {
	var l veritrail.SignInLink
	var created, expires int64
	err := s.wdb.QueryRowContext(ctx, `DELETE FROM signin_links WHERE lookup = ?
		RETURNING lookup, org_id, user_id, hash, created_at, expires_at`, lookup).Scan(
		&l.Lookup, &l.OrgID, &l.UserID, &l.Hash, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, veritrail.Errorf(veritrail.ENotFound, "sign-in link not found")
	}
	if err != nil {
		return nil, err
	}
	l.CreatedAt, l.ExpiresAt = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
	return &l, nil
}
