-- Forwarding sinks and their delivery cursors. The cursor (delivered) is
-- moved only after the destination acknowledged the events up to it.
CREATE TABLE sinks (
	org_id        INTEGER NOT NULL REFERENCES orgs (id),
	id            TEXT NOT NULL,
	name          TEXT NOT NULL,
	type          TEXT NOT NULL,
	config        BLOB NOT NULL, -- package sink's JSON, secrets sealed
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	delivered     INTEGER NOT NULL DEFAULT -1, -- last seq delivered or filtered out
	delivered_at  INTEGER,
	paused        INTEGER NOT NULL DEFAULT 0,
	paused_reason TEXT NOT NULL DEFAULT '',
	failures      INTEGER NOT NULL DEFAULT 0,
	last_error    TEXT NOT NULL DEFAULT '',
	last_error_at INTEGER,
	PRIMARY KEY (org_id, id)
);
CREATE UNIQUE INDEX sinks_by_name ON sinks (org_id, name);
