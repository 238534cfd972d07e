-- Witnesses' cosignatures of checkpoints (C2SP tlog-cosignature lines),
-- served as further signature lines of the checkpoint. One per witness key
-- and checkpoint size; a fresher one replaces it.
CREATE TABLE cosignatures (
	org_id   bigint NOT NULL,
	size     bigint NOT NULL,
	key_name text   NOT NULL,
	line     bytea  NOT NULL,
	at       bigint NOT NULL,
	PRIMARY KEY (org_id, size, key_name)
);
