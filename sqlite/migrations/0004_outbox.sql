-- Events written by processes other than the server (the admin CLI): the
-- server appends them to their organization's log and removes them. Their
-- ids make the hand-over idempotent.
CREATE TABLE outbox (
	id         TEXT PRIMARY KEY,
	org_id     INTEGER NOT NULL,
	event      BLOB NOT NULL, -- the event as POST /api/v1/events takes it
	created_at INTEGER NOT NULL
);
