-- The postings frontier of each organization: the postings rows (times
-- and index keys) cover exactly the seqs below seq. The events from seq to
-- the log head (the "tail") are indexed in memory only (sqlite/tail.go)
-- and written out as one run per key behind the commit, in large runs.
-- A missing row means 0. Stores created before have every event indexed.
CREATE TABLE postings_frontier (
	org_id INTEGER PRIMARY KEY,
	seq    INTEGER NOT NULL
);
INSERT INTO postings_frontier (org_id, seq) SELECT org_id, size FROM log_heads;
