-- Legal holds: while released_at is NULL, the events a hold covers keep
-- their envelopes and content whatever retention and erasure say. body is
-- the hold as veritrail.Hold's JSON (what it covers, who placed it, why).
CREATE TABLE holds (
	org_id      INTEGER NOT NULL REFERENCES orgs (id),
	id          TEXT NOT NULL,
	placed_at   INTEGER NOT NULL,
	released_at INTEGER,
	body        TEXT NOT NULL,
	PRIMARY KEY (org_id, id)
);
CREATE INDEX holds_by_time ON holds (org_id, placed_at);
