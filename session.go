package veritrail

import (
	"context"
	"time"
)

// Sign-in methods of a console session.
const (
	SignInToken = "token" // an API token pasted into the sign-in page
	SignInEmail = "email" // a one-time link sent by e-mail to a user
	SignInOIDC  = "oidc"  // single sign-on through the organization's OpenID provider
)

// SessionPrefix marks console session secrets (the cookie value), as
// TokenPrefix marks API tokens.
const SessionPrefix = "vts_"

// Session is a person signed in to the console, as stored: never the
// secret itself (the cookie holds it), only its lookup key and hash, as for
// API tokens.
//
// A session belongs to one organization and acts either for a user of it
// (UserID; e-mail link or OIDC) or for the API token it was opened with
// (TokenID; the owner's first sign-in). Its role and scopes are not stored:
// they are read from the user or token on every request, so disabling a
// user, changing a role or revoking a token takes effect at once.
type Session struct {
	ID      string // public id, "ses_…": what audit records name
	OrgID   int64
	UserID  string // set for SignInEmail and SignInOIDC
	TokenID string // set for SignInToken
	Method  string
	// Issuer and Subject identify the person at the OpenID provider
	// (SignInOIDC), kept for the provider's sign-out and for audit.
	Issuer  string
	Subject string

	Lookup string // public part of SHA-256(secret)
	Hash   []byte // SHA-256(secret), compared in constant time

	CreatedAt  time.Time
	LastSeenAt time.Time // moved at most once a minute (idle timeout)
	ExpiresAt  time.Time // absolute end, whatever the activity
}

// SignInLink is a one-time sign-in link sent by e-mail, as stored: the
// lookup key and hash of its secret.
type SignInLink struct {
	OrgID     int64
	UserID    string
	Lookup    string
	Hash      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// SessionStore keeps console sessions and one-time sign-in links.
type SessionStore interface {
	// CreateSession stores s; EConflict if its id or lookup is taken.
	CreateSession(ctx context.Context, s *Session) error
	// SessionByLookup finds a session by its lookup key, whatever its
	// organization (the session decides it); ENotFound if there is none.
	// The caller MUST compare the hash in constant time and check the
	// timeouts.
	SessionByLookup(ctx context.Context, lookup string) (*Session, error)
	// TouchSession records activity on a session of org (its idle clock);
	// no error when the session is gone.
	TouchSession(ctx context.Context, org int64, id string, at time.Time) error
	// DeleteSession ends a session of org; no error when it is gone.
	DeleteSession(ctx context.Context, org int64, id string) error
	// DeleteUserSessions ends every session of a user of org (the user was
	// disabled or signed out everywhere) and returns how many there were.
	DeleteUserSessions(ctx context.Context, org int64, userID string) (int64, error)
	// DeleteExpiredSessions removes the sessions that expired before t
	// (absolutely, or idle since before idleBefore) and the sign-in links
	// that expired before t.
	DeleteExpiredSessions(ctx context.Context, t, idleBefore time.Time) error

	// CreateSignInLink stores a one-time sign-in link.
	CreateSignInLink(ctx context.Context, l *SignInLink) error
	// ConsumeSignInLink takes the link with this lookup key out of the
	// store and returns it. It MUST be one-time: of concurrent callers at
	// most one gets the link, and later calls get ENotFound. The caller
	// MUST compare the hash in constant time and check the expiry.
	ConsumeSignInLink(ctx context.Context, lookup string) (*SignInLink, error)
}

// NewSessionSecret returns a new session (or sign-in link) secret of
// organization org: SessionPrefix and, as NewOrgTokenSecret encodes it,
// org's id and 256 random bits. It is stored as HashToken stores token
// secrets, under a lookup key that names org (LookupOrg), so that a store
// spread over several servers reads it from one.
func NewSessionSecret(org int64) string {
	return SessionPrefix + NewOrgTokenSecret(org)[len(TokenPrefix):]
}

// ActiveAt reports whether s is still valid at now, given the idle timeout.
func (s *Session) ActiveAt(now time.Time, idle time.Duration) bool {
	return now.Before(s.ExpiresAt) && (idle <= 0 || now.Before(s.LastSeenAt.Add(idle)))
}
