-- Organization settings (JSON of veritrail.Settings).
CREATE TABLE settings (
	org_id     INTEGER PRIMARY KEY,
	body       TEXT NOT NULL,
	updated_at INTEGER NOT NULL
);

-- What retention and erasure removed: ranges of seqs, what went, and the
-- id of the event that records the run (verify checks it is in the log).
CREATE TABLE removals (
	org_id   INTEGER NOT NULL,
	seq_from INTEGER NOT NULL,
	seq_to   INTEGER NOT NULL,
	what     TEXT NOT NULL,   -- content | envelope
	reason   TEXT NOT NULL,   -- retention | erasure
	record   TEXT NOT NULL,
	at       INTEGER NOT NULL
);
CREATE INDEX removals_by_org ON removals (org_id, seq_to);

CREATE TRIGGER removals_no_update BEFORE UPDATE ON removals
BEGIN SELECT RAISE(ABORT, 'veritrail: removal records are append-only'); END;
CREATE TRIGGER removals_no_delete BEFORE DELETE ON removals
BEGIN SELECT RAISE(ABORT, 'veritrail: removal records are append-only'); END;
