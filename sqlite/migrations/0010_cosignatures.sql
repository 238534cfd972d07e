-- Witnesses' cosignatures of checkpoints (C2SP tlog-cosignature lines),
-- served as further signature lines of the checkpoint. One per witness key
-- and checkpoint size; a fresher one replaces it.
CREATE TABLE cosignatures (
	org_id   INTEGER NOT NULL,
	size     INTEGER NOT NULL,
	key_name TEXT NOT NULL,
	line     BLOB NOT NULL,
	at       INTEGER NOT NULL,
	PRIMARY KEY (org_id, size, key_name)
);
