-- Legal holds (see veritrail.HoldStore): while released_at is NULL, the
-- events a hold covers keep their envelopes and content whatever
-- retention and erasure say. body is the hold as veritrail.Hold's JSON.
-- Distributed by org_id with the organization's other tables.
CREATE TABLE holds (
	org_id      bigint NOT NULL REFERENCES orgs (id),
	id          text NOT NULL,
	placed_at   bigint NOT NULL,
	released_at bigint,
	body        jsonb NOT NULL,
	PRIMARY KEY (org_id, id)
);
CREATE INDEX holds_by_time ON holds (org_id, placed_at);
