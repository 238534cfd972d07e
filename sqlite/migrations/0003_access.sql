-- People and groups of an organization (the console signs users in later,
-- through OIDC: subject and issuer are kept for it).
CREATE TABLE users (
	id           TEXT PRIMARY KEY,
	org_id       INTEGER NOT NULL REFERENCES orgs (id),
	email        TEXT NOT NULL,
	name         TEXT NOT NULL DEFAULT '',
	role         TEXT NOT NULL,
	oidc_subject TEXT NOT NULL DEFAULT '',
	oidc_issuer  TEXT NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	disabled_at  INTEGER
);
CREATE UNIQUE INDEX users_by_email ON users (org_id, email);

CREATE TABLE teams (
	id         TEXT PRIMARY KEY,
	org_id     INTEGER NOT NULL REFERENCES orgs (id),
	name       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	deleted_at INTEGER
);
CREATE INDEX teams_by_org ON teams (org_id, created_at);
