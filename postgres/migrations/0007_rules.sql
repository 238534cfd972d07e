-- Detection rules, their evaluator's position, alerts, the alerts'
-- delivery queue and the alert.* records waiting to be appended (see
-- veritrail.RuleStore and veritrail.AlertStore).
CREATE TABLE rules (
	org_id     bigint NOT NULL REFERENCES orgs (id),
	id         text NOT NULL,
	name       text NOT NULL,
	spec       bytea NOT NULL,
	author     text NOT NULL,
	since_seq  bigint NOT NULL,
	created_at bigint NOT NULL,
	updated_at bigint NOT NULL,
	PRIMARY KEY (org_id, id)
);
CREATE UNIQUE INDEX rules_by_name ON rules (org_id, name);

CREATE TABLE rule_state (
	org_id       bigint PRIMARY KEY REFERENCES orgs (id),
	cursor       bigint NOT NULL,
	snapshot_seq bigint NOT NULL DEFAULT -1,
	snapshot     bytea
);

CREATE TABLE alerts (
	org_id        bigint NOT NULL REFERENCES orgs (id),
	id            text NOT NULL,
	rule_id       text NOT NULL,
	rule          text NOT NULL,
	severity      text NOT NULL,
	dedup_key     text NOT NULL,
	grp           bytea,
	state         text NOT NULL,
	count         bigint NOT NULL,
	suppressed    bigint NOT NULL DEFAULT 0,
	event_ids     text NOT NULL,
	first_seen    bigint NOT NULL,
	last_seen     bigint NOT NULL,
	last_seq      bigint NOT NULL,
	opened_at     bigint NOT NULL,
	updated_at    bigint NOT NULL,
	snoozed_until bigint,
	state_by      text NOT NULL DEFAULT '',
	state_at      bigint NOT NULL,
	note          text NOT NULL DEFAULT '',
	recorded_at   bigint NOT NULL,
	PRIMARY KEY (org_id, id)
);
CREATE INDEX alerts_by_key ON alerts (org_id, rule_id, dedup_key, id);
CREATE INDEX alerts_snoozed ON alerts (snoozed_until) WHERE state = 'snoozed';

CREATE TABLE alert_deliveries (
	org_id        bigint NOT NULL REFERENCES orgs (id),
	id            text NOT NULL,
	alert_id      text NOT NULL,
	rule_id       text NOT NULL,
	route_index   integer NOT NULL,
	destination   text NOT NULL,
	route         bytea NOT NULL,
	event         text NOT NULL,
	escalation    boolean NOT NULL,
	state         text NOT NULL,
	attempts      integer NOT NULL DEFAULT 0,
	due_at        bigint NOT NULL,
	last_error    text NOT NULL DEFAULT '',
	result        text NOT NULL DEFAULT '',
	created_at    bigint NOT NULL,
	finished_at   bigint,
	claimed_until bigint,
	PRIMARY KEY (org_id, id)
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (due_at) WHERE state = 'pending';
CREATE INDEX alert_deliveries_by_alert ON alert_deliveries (org_id, alert_id, route_index, created_at);

CREATE TABLE alert_records (
	org_id     bigint NOT NULL REFERENCES orgs (id),
	id         text NOT NULL,
	event      bytea NOT NULL,
	created_at bigint NOT NULL,
	PRIMARY KEY (org_id, id)
);
