-- When an export job's worker last saved it: a running job without a
-- heartbeat for two minutes has lost its node and is run again.
ALTER TABLE exports ADD COLUMN heartbeat_at bigint;
