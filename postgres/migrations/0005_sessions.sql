-- Console sessions and one-time sign-in links. Secrets are never stored:
-- lookup is the first 8 bytes of SHA-256(secret) in hex, hash the whole
-- digest, compared in constant time (as for API tokens).
CREATE TABLE sessions (
	id           text PRIMARY KEY,
	org_id       bigint NOT NULL REFERENCES orgs (id),
	user_id      text NOT NULL DEFAULT '',
	token_id     text NOT NULL DEFAULT '',
	method       text NOT NULL,
	issuer       text NOT NULL DEFAULT '',
	subject      text NOT NULL DEFAULT '',
	lookup       text NOT NULL UNIQUE,
	hash         bytea NOT NULL,
	created_at   bigint NOT NULL, -- unix nanoseconds
	last_seen_at bigint NOT NULL,
	expires_at   bigint NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (org_id, user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE signin_links (
	lookup     text PRIMARY KEY,
	org_id     bigint NOT NULL REFERENCES orgs (id),
	user_id    text NOT NULL,
	hash       bytea NOT NULL,
	created_at bigint NOT NULL,
	expires_at bigint NOT NULL
);

-- The e-mail sign-in looks a person up in every organization.
CREATE INDEX users_by_address ON users (email);
