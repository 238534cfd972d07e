-- Export jobs: run in the background, survive restarts (running jobs are
-- picked up again), their files live under <data>/exports until expiry.
CREATE TABLE exports (
	id           TEXT PRIMARY KEY,
	org_id       INTEGER NOT NULL REFERENCES orgs (id),
	token_id     TEXT NOT NULL,
	format       TEXT NOT NULL,
	query        TEXT NOT NULL, -- the filters as URL query parameters
	with_content INTEGER NOT NULL,
	notify       TEXT NOT NULL DEFAULT '',
	state        TEXT NOT NULL, -- pending | running | ready | failed | expired
	progress     INTEGER NOT NULL DEFAULT 0,
	size_bytes   INTEGER NOT NULL DEFAULT 0,
	path         TEXT NOT NULL DEFAULT '',
	error        TEXT NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	started_at   INTEGER,
	finished_at  INTEGER,
	expires_at   INTEGER
);
CREATE INDEX exports_by_org ON exports (org_id, created_at);
CREATE INDEX exports_by_state ON exports (state, created_at);
