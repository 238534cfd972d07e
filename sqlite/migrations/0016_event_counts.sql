-- Counts of events for the stats endpoint, kept by the store in the
-- transactions that add and remove events (sqlite/counts.go), so that the
-- whole log's histogram and top values, or a time range's, read a few
-- thousand rows instead of every bucket's postings. field 0 (key x'00')
-- counts every event per minute, hour and day; the counted fields
-- (veritrail.CountedFields, by their veritrail.Field numbers) count each
-- value per hour and day. width is the slot's width in seconds, slot the
-- time in nanoseconds divided by the width (floored). Derived data: the
-- migration 0016_event_counts_fill (Go) builds it from the index.
CREATE TABLE event_counts (
	org_id INTEGER NOT NULL,
	field  INTEGER NOT NULL,
	width  INTEGER NOT NULL,
	slot   INTEGER NOT NULL,
	key    BLOB    NOT NULL,
	n      INTEGER NOT NULL,
	PRIMARY KEY (org_id, field, width, slot, key)
) WITHOUT ROWID;
