-- Veritrail on SQLite. Every table that holds organization data is keyed by
-- the organization first. Events and contents use a packed integer key,
-- rid = org_id << 40 | seq, so an organization's log is one contiguous,
-- append-ordered range (org ids below 2^23, seqs below 2^40).

-- Store-wide settings fixed at creation (bucket_shift).
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

CREATE TABLE orgs (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL -- unix nanoseconds
);

CREATE TABLE tokens (
	id           TEXT PRIMARY KEY,
	org_id       INTEGER NOT NULL REFERENCES orgs (id),
	lookup       TEXT NOT NULL UNIQUE, -- first 8 bytes of SHA-256(secret), hex
	hash         BLOB NOT NULL,        -- SHA-256(secret)
	name         TEXT NOT NULL DEFAULT '',
	role         TEXT NOT NULL,
	scopes       TEXT NOT NULL DEFAULT '', -- space separated; empty = the role's
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER,
	last_used_at INTEGER,
	revoked_at   INTEGER
);
CREATE INDEX tokens_by_org ON tokens (org_id, created_at);

-- The head of each organization's log: its size and the compact range of
-- its Merkle tree, enough to append without reading the tree.
CREATE TABLE log_heads (
	org_id  INTEGER PRIMARY KEY,
	size    INTEGER NOT NULL,
	root    BLOB,
	compact BLOB NOT NULL
);

-- Merkle tree hashes in C2SP tlog-tiles layout (level 0 tiles hold the leaf
-- hashes, which are kept forever). A partial tile is rewritten as it grows.
CREATE TABLE tiles (
	org_id INTEGER NOT NULL,
	level  INTEGER NOT NULL,
	idx    INTEGER NOT NULL,
	hashes BLOB NOT NULL,
	PRIMARY KEY (org_id, level, idx)
) WITHOUT ROWID;

-- Envelopes: the canonical bytes that are hashed into the tree.
CREATE TABLE events (
	rid      INTEGER PRIMARY KEY,
	envelope BLOB NOT NULL
);

-- Content, stored apart with its salt so it can be dropped on its own.
CREATE TABLE contents (
	rid  INTEGER PRIMARY KEY,
	salt BLOB NOT NULL,
	body BLOB NOT NULL
);

CREATE TABLE event_ids (
	org_id INTEGER NOT NULL,
	id     TEXT NOT NULL,
	seq    INTEGER NOT NULL,
	PRIMARY KEY (org_id, id)
) WITHOUT ROWID;

-- The search index. The log is cut into buckets of 2^bucket_shift (meta)
-- consecutive seqs;
-- each bucket keeps the time range of its events, and per indexed field
-- value a packed posting list of the seqs that carry it. Postings are
-- written once per commit batch ("runs") and merged when a bucket has many.
CREATE TABLE buckets (
	org_id   INTEGER NOT NULL,
	bucket   INTEGER NOT NULL,
	min_time INTEGER NOT NULL,
	max_time INTEGER NOT NULL,
	count    INTEGER NOT NULL,
	runs     INTEGER NOT NULL,
	PRIMARY KEY (org_id, bucket)
) WITHOUT ROWID;
CREATE INDEX buckets_by_max_time ON buckets (org_id, max_time);
CREATE INDEX buckets_by_min_time ON buckets (org_id, min_time);

CREATE TABLE postings (
	org_id INTEGER NOT NULL,
	bucket INTEGER NOT NULL,
	field  INTEGER NOT NULL, -- 0: event times; otherwise veritrail.Field
	key    BLOB NOT NULL,
	run    INTEGER NOT NULL, -- first seq the row covers
	list   BLOB NOT NULL,
	PRIMARY KEY (org_id, bucket, field, key, run)
) WITHOUT ROWID;
