-- The context's request id and user agent become filters (request_id=,
-- user_agent=): a column each, as every index key has (rows.go,
-- keyFields). Adding a nullable column rewrites nothing; the events stored
-- before get their values from their envelopes in the same transaction
-- (reindex.go), so filters and verify --db see every event alike.
ALTER TABLE events ADD COLUMN request_id bytea, ADD COLUMN user_agent bytea;
CREATE INDEX events_by_request ON events (org_id, request_id, time_ns) WHERE request_id IS NOT NULL;
