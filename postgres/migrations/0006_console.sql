-- The web console: sessions and sign-in links, and the counts behind the
-- stats endpoint. Every table is distributed by org_id on Citus (keys lead
-- with it; postgres.Placements).

-- Console sessions and one-time sign-in links. Secrets are never stored:
-- lookup is "<org>/" and the first 8 bytes of SHA-256(secret) in hex (the
-- secret names its organization, so a lookup reads one shard), hash the
-- whole digest, compared in constant time (as for API tokens).
CREATE TABLE sessions (
	org_id       bigint NOT NULL REFERENCES orgs (id),
	id           text NOT NULL,
	user_id      text NOT NULL DEFAULT '',
	token_id     text NOT NULL DEFAULT '',
	method       text NOT NULL,
	issuer       text NOT NULL DEFAULT '',
	subject      text NOT NULL DEFAULT '',
	lookup       text NOT NULL,
	hash         bytea NOT NULL,
	created_at   bigint NOT NULL, -- unix nanoseconds
	last_seen_at bigint NOT NULL,
	expires_at   bigint NOT NULL,
	PRIMARY KEY (org_id, id),
	UNIQUE (org_id, lookup)
);
CREATE INDEX sessions_by_user ON sessions (org_id, user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE signin_links (
	org_id     bigint NOT NULL REFERENCES orgs (id),
	lookup     text NOT NULL,
	user_id    text NOT NULL,
	hash       bytea NOT NULL,
	created_at bigint NOT NULL,
	expires_at bigint NOT NULL,
	PRIMARY KEY (org_id, lookup)
);
CREATE INDEX signin_links_by_expiry ON signin_links (expires_at);

-- The e-mail sign-in looks a person up in every organization.
CREATE INDEX users_by_address ON users (email);

-- Counts of events for the stats endpoint, kept by the store as it adds
-- and removes events (postgres/counts.go), so the whole log's histogram
-- and top values read a few thousand rows instead of every event: per
-- minute for all events (field 0, key ''), and per hour for each value of
-- the fields the console counts (type 1, actor_id 2, actor_email 3,
-- outcome 7, connector 8, tool 9, decision 11: veritrail.Field numbers).
-- Derived data: the statement below builds it from the events.
CREATE TABLE event_counts (
	org_id bigint   NOT NULL,
	field  smallint NOT NULL,
	slot   bigint   NOT NULL, -- floor(time_ns / width): minutes for field 0, hours otherwise
	key    bytea    NOT NULL,
	n      bigint   NOT NULL,
	PRIMARY KEY (org_id, field, slot, key)
);

-- The events stored before this migration.
INSERT INTO event_counts (org_id, field, slot, key, n)
SELECT org_id, field, slot, key, count(*) FROM (
	SELECT org_id, 0::smallint AS field, (time_ns - ((time_ns % 60000000000) + 60000000000) % 60000000000) / 60000000000 AS slot, '\x'::bytea AS key FROM events
	UNION ALL SELECT org_id, 1, (time_ns - ((time_ns % 3600000000000) + 3600000000000) % 3600000000000) / 3600000000000, type FROM events
	UNION ALL SELECT org_id, 2, (time_ns - ((time_ns % 3600000000000) + 3600000000000) % 3600000000000) / 3600000000000, actor_id FROM events WHERE actor_id IS NOT NULL
	UNION ALL SELECT org_id, 3, (time_ns - ((time_ns % 3600000000000) + 3600000000000) % 3600000000000) / 3600000000000, actor_email FROM events WHERE actor_email IS NOT NULL
	UNION ALL SELECT org_id, 7, (time_ns - ((time_ns % 3600000000000) + 3600000000000) % 3600000000000) / 3600000000000, outcome FROM events WHERE outcome IS NOT NULL
	UNION ALL SELECT org_id, 8, (time_ns - ((time_ns % 3600000000000) + 3600000000000) % 3600000000000) / 3600000000000, connector FROM events WHERE connector IS NOT NULL
	UNION ALL SELECT org_id, 9, (time_ns - ((time_ns % 3600000000000) + 3600000000000) % 3600000000000) / 3600000000000, tool FROM events WHERE tool IS NOT NULL
	UNION ALL SELECT org_id, 11, (time_ns - ((time_ns % 3600000000000) + 3600000000000) % 3600000000000) / 3600000000000, decision FROM events WHERE decision IS NOT NULL
) c GROUP BY org_id, field, slot, key;
