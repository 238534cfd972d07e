-- Signed checkpoints: the append-only history of each organization's log.
CREATE TABLE checkpoints (
	org_id    INTEGER NOT NULL,
	size      INTEGER NOT NULL,
	root      BLOB NOT NULL,
	note      BLOB NOT NULL, -- the signed note (C2SP tlog-checkpoint)
	signed_at INTEGER NOT NULL,
	PRIMARY KEY (org_id, size)
) WITHOUT ROWID;

-- Every attempt to hand a checkpoint to a witness, and how it went.
CREATE TABLE witness_log (
	org_id INTEGER NOT NULL,
	size   INTEGER NOT NULL,
	url    TEXT NOT NULL,
	ok     INTEGER NOT NULL,
	detail TEXT NOT NULL,
	at     INTEGER NOT NULL
);
CREATE INDEX witness_log_by_org ON witness_log (org_id, at);

-- Defence in depth (the Merkle tree is the real guarantee): stored events
-- cannot be changed, and can be removed only by the retention path, which
-- holds a row in retention_gate for the length of its transaction.
CREATE TABLE retention_gate (open INTEGER NOT NULL);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'veritrail: events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
WHEN NOT EXISTS (SELECT 1 FROM retention_gate)
BEGIN SELECT RAISE(ABORT, 'veritrail: events are removed only by retention'); END;

CREATE TRIGGER contents_no_update BEFORE UPDATE ON contents
BEGIN SELECT RAISE(ABORT, 'veritrail: content is append-only'); END;
CREATE TRIGGER contents_no_delete BEFORE DELETE ON contents
WHEN NOT EXISTS (SELECT 1 FROM retention_gate)
BEGIN SELECT RAISE(ABORT, 'veritrail: content is removed only by retention or erasure'); END;

CREATE TRIGGER event_ids_no_update BEFORE UPDATE ON event_ids
BEGIN SELECT RAISE(ABORT, 'veritrail: event ids are append-only'); END;
CREATE TRIGGER event_ids_no_delete BEFORE DELETE ON event_ids
WHEN NOT EXISTS (SELECT 1 FROM retention_gate)
BEGIN SELECT RAISE(ABORT, 'veritrail: event ids are removed only by retention'); END;

-- Tiles only grow: a rewritten tile must extend the old one.
CREATE TRIGGER tiles_only_grow BEFORE UPDATE ON tiles
WHEN NEW.org_id != OLD.org_id OR NEW.level != OLD.level OR NEW.idx != OLD.idx
  OR length(NEW.hashes) < length(OLD.hashes)
  OR substr(NEW.hashes, 1, length(OLD.hashes)) != OLD.hashes
BEGIN SELECT RAISE(ABORT, 'veritrail: Merkle tiles only grow'); END;
CREATE TRIGGER tiles_no_delete BEFORE DELETE ON tiles
BEGIN SELECT RAISE(ABORT, 'veritrail: Merkle tiles are never deleted'); END;

CREATE TRIGGER log_heads_only_grow BEFORE UPDATE ON log_heads
WHEN NEW.org_id != OLD.org_id OR NEW.size < OLD.size
BEGIN SELECT RAISE(ABORT, 'veritrail: a log never shrinks'); END;
CREATE TRIGGER log_heads_no_delete BEFORE DELETE ON log_heads
BEGIN SELECT RAISE(ABORT, 'veritrail: a log is never deleted'); END;

CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'veritrail: checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'veritrail: checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_only_grow BEFORE INSERT ON checkpoints
WHEN NEW.size < (SELECT coalesce(max(size), 0) FROM checkpoints WHERE org_id = NEW.org_id)
BEGIN SELECT RAISE(ABORT, 'veritrail: a checkpoint never goes back in size'); END;
