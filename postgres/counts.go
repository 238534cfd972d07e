package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	veritrail "github.com/veritrail/veritrail"
)

// event_counts (migration 0006) holds counts of events for the stats
// endpoint: per minute for all events (field 0, key empty), and per hour
// for each value of the counted fields; and (migration 0018) per hour the
// changes to its events (field changesField, key empty), which only grow.
// The store keeps it in the statements that add and remove events, not
// with triggers: on Citus a trigger runs on the shard of its row and may
// read nothing else (guard_test.go), while these statements name one
// organization's rows, which event_counts' shard holds too (colocated by
// org_id).

// countedFields are the fields event_counts keeps per hour and value
// (migration 0006 lists them too).
var countedFields = veritrail.CountedFields

// countedKey says, by field, whether an event's index key of the field is
// counted: a counted field with a key column (a look-up per key on the
// commit path instead of a search of countedFields).
var countedKey = func() (c [256]bool) {
	for _, f := range countedFields {
		c[f] = keyPos[f] > 0
	}
	return c
}()

// changesField is the field of event_counts under which each hour counts
// the events ever added to it or removed from it: every transaction that
// adds or removes events MUST add to it in the same transaction, as the
// stats columns a node keeps (stats.go) are valid for one such count.
const changesField = -1

type countKey struct {
	org   int64
	field int16
	slot  int64
	key   string
}

// countEvents adds the counts of a commit's events to c: those of the
// key columns the events rows get (keyFields), for the counted fields.
func countEvents(c map[countKey]int64, events []pendingEvent) {
	for _, p := range events {
		t := p.e.Time.UnixNano()
		c[countKey{p.org, 0, veritrail.FloorTo(t, minuteNS) / minuteNS, ""}]++
		hour := veritrail.FloorTo(t, hourNS) / hourNS
		c[countKey{p.org, changesField, hour, ""}]++
		for _, k := range p.e.IndexKeys() {
			if countedKey[k.Field] {
				c[countKey{p.org, int16(k.Field), hour, k.Key}]++
			}
		}
	}
}

// queueCounts queues the statement that adds the counts of the events of
// a batch to event_counts, in the batch's transaction (which holds the
// organizations' head rows, so no other writer updates the same counts
// meanwhile).
func queueCounts(b *pgx.Batch, events []pendingEvent) {
	// Sized for the commit at once: growing it key by key rehashed its
	// keys (their strings) several times a commit.
	c := make(map[countKey]int64, len(events))
	countEvents(c, events)
	keys := make([]countKey, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b countKey) int {
		return cmp.Or(cmp.Compare(a.org, b.org), cmp.Compare(a.field, b.field), cmp.Compare(a.slot, b.slot), strings.Compare(a.key, b.key))
	})
	orgs, fields, slots, ks, ns := make([]int64, len(keys)), make([]int16, len(keys)), make([]int64, len(keys)), make([][]byte, len(keys)), make([]int64, len(keys))
	for i, k := range keys {
		orgs[i], fields[i], slots[i], ks[i], ns[i] = k.org, k.field, k.slot, []byte(k.key), c[k]
	}
	b.Queue(`INSERT INTO event_counts (org_id, field, slot, key, n)
		SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::bigint[], $4::bytea[], $5::bigint[])
		ON CONFLICT (org_id, field, slot, key) DO UPDATE SET n = event_counts.n + EXCLUDED.n`, orgs, fields, slots, ks, ns)
}

// addChanges adds to the changes (changesField) of the hours of times
// (one time per event changed) in tx: for a removal of content, which
// changes no count but what a text search of the hour matches.
func addChanges(ctx context.Context, tx pgx.Tx, org int64, times []int64) error {
	c := map[int64]int64{}
	for _, t := range times {
		c[veritrail.FloorTo(t, hourNS)/hourNS]++
	}
	hours := make([]int64, 0, len(c))
	for h := range c {
		hours = append(hours, h)
	}
	slices.Sort(hours)
	ns := make([]int64, len(hours))
	for i, h := range hours {
		ns[i] = c[h]
	}
	_, err := tx.Exec(ctx, `INSERT INTO event_counts (org_id, field, slot, key, n)
		SELECT $1, $2::smallint, u.h, '\x'::bytea, u.n FROM unnest($3::bigint[], $4::bigint[]) AS u(h, n)
		ON CONFLICT (org_id, field, slot, key) DO UPDATE SET n = event_counts.n + EXCLUDED.n`, org, int16(changesField), hours, ns)
	return err
}

// countsOf is a query of the counts of the event rows that from selects
// (a FROM … WHERE … clause naming the events x), by field, slot and key,
// changesField's hours included.
func countsOf(from string) string {
	slot := func(w int64) string {
		return fmt.Sprintf("(x.time_ns - ((x.time_ns %% %[1]d) + %[1]d) %% %[1]d) / %[1]d", w)
	}
	parts := []string{`SELECT 0::smallint AS field, ` + slot(minuteNS) + ` AS slot, '\x'::bytea AS key ` + from,
		fmt.Sprintf(`SELECT %d, %s, '\x'::bytea %s`, changesField, slot(hourNS), from)}
	for _, f := range countedFields {
		col := column(f)
		parts = append(parts, fmt.Sprintf(`SELECT %d, %s, x.%s %s AND x.%s IS NOT NULL`, f, slot(hourNS), col, from, col))
	}
	return `SELECT field, slot, key, count(*) AS n FROM (` + strings.Join(parts, " UNION ALL ") + `) c GROUP BY field, slot, key`
}
