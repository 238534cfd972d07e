-- Veritrail on PostgreSQL. Every key starts with org_id, so the tables can
-- be distributed by organization (Citus-style) without a redesign.

CREATE TABLE meta (
	key   text PRIMARY KEY,
	value text NOT NULL
);

CREATE TABLE orgs (
	id         bigserial PRIMARY KEY,
	name       text NOT NULL UNIQUE,
	created_at bigint NOT NULL -- unix nanoseconds
);

CREATE TABLE tokens (
	id           text PRIMARY KEY,
	org_id       bigint NOT NULL REFERENCES orgs (id),
	lookup       text NOT NULL UNIQUE, -- first 8 bytes of SHA-256(secret), hex
	hash         bytea NOT NULL,       -- SHA-256(secret)
	name         text NOT NULL DEFAULT '',
	role         text NOT NULL,
	scopes       text NOT NULL DEFAULT '',
	created_at   bigint NOT NULL,
	expires_at   bigint,
	last_used_at bigint,
	revoked_at   bigint
);
CREATE INDEX tokens_by_org ON tokens (org_id, created_at);

CREATE TABLE users (
	id           text PRIMARY KEY,
	org_id       bigint NOT NULL REFERENCES orgs (id),
	email        text NOT NULL,
	name         text NOT NULL DEFAULT '',
	role         text NOT NULL,
	oidc_subject text NOT NULL DEFAULT '',
	oidc_issuer  text NOT NULL DEFAULT '',
	created_at   bigint NOT NULL,
	disabled_at  bigint
);
CREATE UNIQUE INDEX users_by_email ON users (org_id, email);

CREATE TABLE teams (
	id         text PRIMARY KEY,
	org_id     bigint NOT NULL REFERENCES orgs (id),
	name       text NOT NULL,
	created_at bigint NOT NULL,
	deleted_at bigint
);
CREATE INDEX teams_by_org ON teams (org_id, created_at);

CREATE TABLE settings (
	org_id     bigint PRIMARY KEY REFERENCES orgs (id),
	body       text NOT NULL,
	updated_at bigint NOT NULL
);

-- The head of each organization's log. Appends lock this row (FOR UPDATE)
-- for the length of their transaction: that is what keeps seqs gap-free
-- and the tree consistent while several nodes write.
CREATE TABLE log_heads (
	org_id  bigint PRIMARY KEY REFERENCES orgs (id),
	size    bigint NOT NULL,
	root    bytea,
	compact bytea NOT NULL
);

CREATE TABLE tiles (
	org_id bigint NOT NULL,
	level  smallint NOT NULL,
	idx    bigint NOT NULL,
	hashes bytea NOT NULL,
	PRIMARY KEY (org_id, level, idx)
);

-- Events and contents are partitioned by event time (a month each), so
-- retention can drop a whole month once every organization's rules have
-- passed it. Index keys are bytea: they compare bytewise, as the query
-- model's key ranges require (IP and status keys are binary).
CREATE TABLE events (
	org_id      bigint NOT NULL,
	seq         bigint NOT NULL,
	time_ns     bigint NOT NULL,
	id          text NOT NULL,
	category    text NOT NULL,
	type        bytea NOT NULL,
	actor_id    bytea,
	actor_email bytea,
	actor_type  bytea,
	agent_id    bytea,
	task_id     bytea,
	session_id  bytea,
	outcome     bytea,
	connector   bytea,
	tool        bytea,
	status      bytea,
	decision    bytea,
	ip          bytea,
	target_id   bytea,
	team_id     bytea,
	target_type bytea,
	envelope    bytea NOT NULL,
	tsv_env     tsvector NOT NULL, -- words of the envelope
	tsv_all     tsvector,          -- envelope and content words; NULL without content
	PRIMARY KEY (org_id, time_ns, seq)
) PARTITION BY RANGE (time_ns);
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE INDEX events_by_seq ON events (org_id, seq);
CREATE INDEX events_by_type ON events (org_id, type, time_ns);
CREATE INDEX events_by_actor ON events (org_id, actor_id, time_ns);
CREATE INDEX events_by_email ON events (org_id, actor_email, time_ns) WHERE actor_email IS NOT NULL;
CREATE INDEX events_by_agent ON events (org_id, agent_id, time_ns) WHERE agent_id IS NOT NULL;
CREATE INDEX events_by_task ON events (org_id, task_id, time_ns) WHERE task_id IS NOT NULL;
CREATE INDEX events_by_session ON events (org_id, session_id, time_ns) WHERE session_id IS NOT NULL;
CREATE INDEX events_by_target ON events (org_id, target_id, time_ns) WHERE target_id IS NOT NULL;
CREATE INDEX events_by_decision ON events (org_id, decision, time_ns) WHERE decision IS NOT NULL;
CREATE INDEX events_by_ip ON events (org_id, ip, time_ns) WHERE ip IS NOT NULL;
CREATE INDEX events_tsv_env ON events USING gin (tsv_env);
CREATE INDEX events_tsv_all ON events USING gin (tsv_all) WHERE tsv_all IS NOT NULL;

CREATE TABLE contents (
	org_id   bigint NOT NULL,
	seq      bigint NOT NULL,
	time_ns  bigint NOT NULL,
	category text NOT NULL,
	salt     bytea NOT NULL,
	body     bytea NOT NULL,
	PRIMARY KEY (org_id, time_ns, seq)
) PARTITION BY RANGE (time_ns);
CREATE TABLE contents_default PARTITION OF contents DEFAULT;
CREATE INDEX contents_by_seq ON contents (org_id, seq);

CREATE TABLE event_ids (
	org_id bigint NOT NULL,
	id     text NOT NULL,
	seq    bigint NOT NULL,
	PRIMARY KEY (org_id, id)
);

CREATE TABLE checkpoints (
	org_id    bigint NOT NULL,
	size      bigint NOT NULL,
	root      bytea NOT NULL,
	note      bytea NOT NULL,
	signed_at bigint NOT NULL,
	PRIMARY KEY (org_id, size)
);

CREATE TABLE witness_log (
	org_id bigint NOT NULL,
	size   bigint NOT NULL,
	url    text NOT NULL,
	ok     boolean NOT NULL,
	detail text NOT NULL,
	at     bigint NOT NULL
);
CREATE INDEX witness_log_by_org ON witness_log (org_id, at);

CREATE TABLE removals (
	org_id   bigint NOT NULL,
	seq_from bigint NOT NULL,
	seq_to   bigint NOT NULL,
	what     text NOT NULL,
	reason   text NOT NULL,
	record   text NOT NULL,
	at       bigint NOT NULL
);
CREATE INDEX removals_by_org ON removals (org_id, seq_to);

CREATE TABLE exports (
	id           text PRIMARY KEY,
	org_id       bigint NOT NULL REFERENCES orgs (id),
	token_id     text NOT NULL,
	format       text NOT NULL,
	query        text NOT NULL,
	with_content boolean NOT NULL,
	notify       text NOT NULL DEFAULT '',
	state        text NOT NULL,
	progress     bigint NOT NULL DEFAULT 0,
	size_bytes   bigint NOT NULL DEFAULT 0,
	path         text NOT NULL DEFAULT '',
	error        text NOT NULL DEFAULT '',
	created_at   bigint NOT NULL,
	started_at   bigint,
	finished_at  bigint,
	expires_at   bigint
);
CREATE INDEX exports_by_org ON exports (org_id, created_at);
CREATE INDEX exports_by_state ON exports (state, created_at);

-- Leases make background work (checkpoints, retention, sinks) run on one
-- node at a time.
CREATE TABLE leases (
	name       text PRIMARY KEY,
	holder     text NOT NULL,
	expires_at timestamptz NOT NULL
);

-- Defence in depth: what the log promises never changes, whatever the SQL.
-- Retention and erasure open a gate for their own transaction only
-- (SET LOCAL veritrail.removal = 'on').
CREATE FUNCTION veritrail_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP IN ('DELETE', 'UPDATE') AND current_setting('veritrail.removal', true) = 'on'
	   AND TG_ARGV[0] = 'removable' THEN
		IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
		RETURN NEW;
	END IF;
	RAISE EXCEPTION 'veritrail: % on % refused: %', TG_OP, TG_TABLE_NAME, TG_ARGV[1];
END $$;

CREATE TRIGGER events_guard BEFORE UPDATE OR DELETE ON events
	FOR EACH ROW EXECUTE FUNCTION veritrail_refuse('removable', 'events are removed only by retention');
CREATE TRIGGER contents_guard BEFORE UPDATE OR DELETE ON contents
	FOR EACH ROW EXECUTE FUNCTION veritrail_refuse('removable', 'content is removed only by retention or erasure');
CREATE TRIGGER event_ids_guard BEFORE UPDATE OR DELETE ON event_ids
	FOR EACH ROW EXECUTE FUNCTION veritrail_refuse('removable', 'event ids are removed only by retention');
CREATE TRIGGER checkpoints_guard BEFORE UPDATE OR DELETE ON checkpoints
	FOR EACH ROW EXECUTE FUNCTION veritrail_refuse('fixed', 'checkpoints are append-only');
CREATE TRIGGER removals_guard BEFORE UPDATE OR DELETE ON removals
	FOR EACH ROW EXECUTE FUNCTION veritrail_refuse('fixed', 'removal records are append-only');
CREATE TRIGGER tiles_no_delete BEFORE DELETE ON tiles
	FOR EACH ROW EXECUTE FUNCTION veritrail_refuse('fixed', 'Merkle tiles are never deleted');
CREATE TRIGGER log_heads_no_delete BEFORE DELETE ON log_heads
	FOR EACH ROW EXECUTE FUNCTION veritrail_refuse('fixed', 'a log is never deleted');

CREATE FUNCTION veritrail_tiles_grow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.org_id <> OLD.org_id OR NEW.level <> OLD.level OR NEW.idx <> OLD.idx
	   OR length(NEW.hashes) < length(OLD.hashes)
	   OR substring(NEW.hashes FROM 1 FOR length(OLD.hashes)) <> OLD.hashes THEN
		RAISE EXCEPTION 'veritrail: Merkle tiles only grow';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER tiles_only_grow BEFORE UPDATE ON tiles
	FOR EACH ROW EXECUTE FUNCTION veritrail_tiles_grow();

CREATE FUNCTION veritrail_heads_grow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.org_id <> OLD.org_id OR NEW.size < OLD.size THEN
		RAISE EXCEPTION 'veritrail: a log never shrinks';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER log_heads_only_grow BEFORE UPDATE ON log_heads
	FOR EACH ROW EXECUTE FUNCTION veritrail_heads_grow();

CREATE FUNCTION veritrail_checkpoints_grow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.size < (SELECT coalesce(max(size), 0) FROM checkpoints WHERE org_id = NEW.org_id) THEN
		RAISE EXCEPTION 'veritrail: a checkpoint never goes back in size';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER checkpoints_only_grow BEFORE INSERT ON checkpoints
	FOR EACH ROW EXECUTE FUNCTION veritrail_checkpoints_grow();
