-- The web console: sessions and sign-in links, and the counts behind the
-- stats endpoint.

-- Console sessions and one-time sign-in links. Secrets are never stored:
-- lookup is the first 8 bytes of SHA-256(secret) in hex, hash the whole
-- digest, compared in constant time (as for API tokens).
CREATE TABLE sessions (
	id           text PRIMARY KEY,
	org_id       bigint NOT NULL REFERENCES orgs (id),
	user_id      text NOT NULL DEFAULT '',
	token_id     text NOT NULL DEFAULT '',
	method       text NOT NULL,
	issuer       text NOT NULL DEFAULT '',
	subject      text NOT NULL DEFAULT '',
	lookup       text NOT NULL UNIQUE,
	hash         bytea NOT NULL,
	created_at   bigint NOT NULL, -- unix nanoseconds
	last_seen_at bigint NOT NULL,
	expires_at   bigint NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (org_id, user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE signin_links (
	lookup     text PRIMARY KEY,
	org_id     bigint NOT NULL REFERENCES orgs (id),
	user_id    text NOT NULL,
	hash       bytea NOT NULL,
	created_at bigint NOT NULL,
	expires_at bigint NOT NULL
);

-- The e-mail sign-in looks a person up in every organization.
CREATE INDEX users_by_address ON users (email);

-- Counts of events for the stats endpoint, kept by triggers as events are
-- inserted (and removed by retention), so the whole log's histogram and
-- top values read a few thousand rows instead of every event: per minute
-- for all events (field 0, key ''), and per hour for each value of the
-- fields the console counts (type 1, actor_id 2, actor_email 3, outcome 7,
-- connector 8, tool 9, decision 11: veritrail.Field numbers). Derived
-- data: the last statement below rebuilds it from the events.
CREATE TABLE event_counts (
	org_id bigint   NOT NULL,
	field  smallint NOT NULL,
	slot   bigint   NOT NULL, -- floor(time_ns / width): minutes for field 0, hours otherwise
	key    bytea    NOT NULL,
	n      bigint   NOT NULL,
	PRIMARY KEY (org_id, field, slot, key)
);

CREATE FUNCTION veritrail_slot(t bigint, width bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN t >= 0 THEN t / width ELSE -((-t - 1) / width) - 1 END
$$;

-- veritrail_counts(rows) is a query of the counts of a set of event rows
-- (the events table, or a trigger's transition table) by org, field, slot
-- and key.
CREATE FUNCTION veritrail_counts(rows text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT format($q$
		SELECT org_id, field, slot, key, count(*) AS n FROM (
			SELECT org_id, 0::smallint AS field, veritrail_slot(time_ns, 60000000000) AS slot, '\x'::bytea AS key FROM %1$I
			UNION ALL SELECT org_id, 1, veritrail_slot(time_ns, 3600000000000), type FROM %1$I
			UNION ALL SELECT org_id, 2, veritrail_slot(time_ns, 3600000000000), actor_id FROM %1$I WHERE actor_id IS NOT NULL
			UNION ALL SELECT org_id, 3, veritrail_slot(time_ns, 3600000000000), actor_email FROM %1$I WHERE actor_email IS NOT NULL
			UNION ALL SELECT org_id, 7, veritrail_slot(time_ns, 3600000000000), outcome FROM %1$I WHERE outcome IS NOT NULL
			UNION ALL SELECT org_id, 8, veritrail_slot(time_ns, 3600000000000), connector FROM %1$I WHERE connector IS NOT NULL
			UNION ALL SELECT org_id, 9, veritrail_slot(time_ns, 3600000000000), tool FROM %1$I WHERE tool IS NOT NULL
			UNION ALL SELECT org_id, 11, veritrail_slot(time_ns, 3600000000000), decision FROM %1$I WHERE decision IS NOT NULL
		) c GROUP BY org_id, field, slot, key$q$, rows)
$$;

CREATE FUNCTION veritrail_count_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		EXECUTE 'INSERT INTO event_counts (org_id, field, slot, key, n) ' || veritrail_counts('new_rows') ||
			' ON CONFLICT (org_id, field, slot, key) DO UPDATE SET n = event_counts.n + EXCLUDED.n';
	ELSE
		EXECUTE 'UPDATE event_counts e SET n = e.n - d.n FROM (' || veritrail_counts('old_rows') || ') d ' ||
			'WHERE e.org_id = d.org_id AND e.field = d.field AND e.slot = d.slot AND e.key = d.key';
	END IF;
	RETURN NULL;
END $$;

CREATE TRIGGER events_count_insert AFTER INSERT ON events
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION veritrail_count_events();
CREATE TRIGGER events_count_delete AFTER DELETE ON events
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION veritrail_count_events();

-- The events stored before this migration.
DO $$ BEGIN
	EXECUTE 'INSERT INTO event_counts (org_id, field, slot, key, n) ' || veritrail_counts('events');
END $$;
