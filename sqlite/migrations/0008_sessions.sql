-- Console sessions and one-time sign-in links. Secrets are never stored:
-- lookup is the first 8 bytes of SHA-256(secret) in hex, hash the whole
-- digest, compared in constant time (as for API tokens).
CREATE TABLE sessions (
	id           TEXT PRIMARY KEY,
	org_id       INTEGER NOT NULL REFERENCES orgs (id),
	user_id      TEXT NOT NULL DEFAULT '',
	token_id     TEXT NOT NULL DEFAULT '',
	method       TEXT NOT NULL,
	issuer       TEXT NOT NULL DEFAULT '',
	subject      TEXT NOT NULL DEFAULT '',
	lookup       TEXT NOT NULL UNIQUE,
	hash         BLOB NOT NULL,
	created_at   INTEGER NOT NULL, -- unix nanoseconds
	last_seen_at INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (org_id, user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE signin_links (
	lookup     TEXT PRIMARY KEY,
	org_id     INTEGER NOT NULL REFERENCES orgs (id),
	user_id    TEXT NOT NULL,
	hash       BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);

-- The e-mail sign-in looks a person up in every organization.
CREATE INDEX users_by_address ON users (email);
