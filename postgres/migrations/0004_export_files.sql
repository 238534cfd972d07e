-- Finished export files live in the database, so any node can serve a
-- download link whichever node built the file (nodes keep no state).
-- One row per 1 MiB chunk; the file's rows are written in one transaction.
CREATE TABLE export_files (
	org_id bigint NOT NULL,
	id     text   NOT NULL,
	chunk  int    NOT NULL,
	data   bytea  NOT NULL,
	PRIMARY KEY (org_id, id, chunk)
);
