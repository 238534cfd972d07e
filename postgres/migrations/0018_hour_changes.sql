-- Each hour of an organization's events gets a count of its changes in
-- event_counts (field -1, slot the hour, key ''): every transaction that
-- adds events to the hour or removes events from it adds how many, in the
-- same transaction (postgres/counts.go, retention.go). It only grows, so
-- two snapshots that read the same count see the same events in the hour:
-- a node keeps per-hour columns of the events for stats (stats.go) and
-- reads these counts to know, on every call, which of its hours are still
-- those of the database, whichever node wrote since.
-- The events stored before: one change each.
INSERT INTO event_counts (org_id, field, slot, key, n)
SELECT org_id, -1, (time_ns - ((time_ns % 3600000000000) + 3600000000000) % 3600000000000) / 3600000000000, '\x'::bytea, count(*)
FROM events GROUP BY 1, 2, 3, 4;
