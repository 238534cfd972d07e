-- Forwarding sinks and their delivery cursors (see veritrail.SinkStore).
CREATE TABLE sinks (
	org_id        bigint NOT NULL REFERENCES orgs (id),
	id            text NOT NULL,
	name          text NOT NULL,
	type          text NOT NULL,
	config        bytea NOT NULL,
	created_at    bigint NOT NULL,
	updated_at    bigint NOT NULL,
	delivered     bigint NOT NULL DEFAULT -1,
	delivered_at  bigint,
	paused        boolean NOT NULL DEFAULT false,
	paused_reason text NOT NULL DEFAULT '',
	failures      integer NOT NULL DEFAULT 0,
	last_error    text NOT NULL DEFAULT '',
	last_error_at bigint,
	PRIMARY KEY (org_id, id)
);
CREATE UNIQUE INDEX sinks_by_name ON sinks (org_id, name);
