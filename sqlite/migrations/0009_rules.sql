-- Detection rules, their evaluator's position, alerts, the alerts'
-- delivery queue and the alert.* records waiting to be appended (see
-- veritrail.RuleStore and veritrail.AlertStore).
CREATE TABLE rules (
	org_id     INTEGER NOT NULL REFERENCES orgs (id),
	id         TEXT NOT NULL,
	name       TEXT NOT NULL,
	spec       BLOB NOT NULL, -- package rules' JSON, route secrets sealed
	author     TEXT NOT NULL,
	since_seq  INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (org_id, id)
);
CREATE UNIQUE INDEX rules_by_name ON rules (org_id, name);

CREATE TABLE rule_state (
	org_id       INTEGER PRIMARY KEY REFERENCES orgs (id),
	cursor       INTEGER NOT NULL,           -- every event up to it judged and stored
	snapshot_seq INTEGER NOT NULL DEFAULT -1, -- the windows in snapshot are as of this seq
	snapshot     BLOB
);

CREATE TABLE alerts (
	org_id        INTEGER NOT NULL REFERENCES orgs (id),
	id            TEXT NOT NULL,
	rule_id       TEXT NOT NULL,
	rule          TEXT NOT NULL,
	severity      TEXT NOT NULL,
	dedup_key     TEXT NOT NULL,
	grp           BLOB,
	state         TEXT NOT NULL,
	count         INTEGER NOT NULL,
	suppressed    INTEGER NOT NULL DEFAULT 0,
	event_ids     TEXT NOT NULL, -- JSON list, the first 100
	first_seen    INTEGER NOT NULL,
	last_seen     INTEGER NOT NULL,
	last_seq      INTEGER NOT NULL,
	opened_at     INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	snoozed_until INTEGER,
	state_by      TEXT NOT NULL DEFAULT '',
	state_at      INTEGER NOT NULL,
	note          TEXT NOT NULL DEFAULT '',
	recorded_at   INTEGER NOT NULL,
	PRIMARY KEY (org_id, id)
);
CREATE INDEX alerts_by_key ON alerts (org_id, rule_id, dedup_key, id);
CREATE INDEX alerts_snoozed ON alerts (snoozed_until) WHERE state = 'snoozed';

CREATE TABLE alert_deliveries (
	org_id        INTEGER NOT NULL REFERENCES orgs (id),
	id            TEXT NOT NULL,
	alert_id      TEXT NOT NULL,
	rule_id       TEXT NOT NULL,
	route_index   INTEGER NOT NULL,
	destination   TEXT NOT NULL,
	route         BLOB NOT NULL, -- package notify's JSON, secrets sealed
	event         TEXT NOT NULL,
	escalation    INTEGER NOT NULL,
	state         TEXT NOT NULL,
	attempts      INTEGER NOT NULL DEFAULT 0,
	due_at        INTEGER NOT NULL,
	last_error    TEXT NOT NULL DEFAULT '',
	result        TEXT NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	finished_at   INTEGER,
	claimed_until INTEGER,
	PRIMARY KEY (org_id, id)
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (due_at) WHERE state = 'pending';
CREATE INDEX alert_deliveries_by_alert ON alert_deliveries (org_id, alert_id, route_index, created_at);

CREATE TABLE alert_records (
	org_id     INTEGER NOT NULL REFERENCES orgs (id),
	id         TEXT NOT NULL,
	event      BLOB NOT NULL, -- the event as POST /api/v1/events takes it
	created_at INTEGER NOT NULL,
	PRIMARY KEY (org_id, id)
);
