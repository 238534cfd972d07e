package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// event_counts (migration 0016) holds counts of events for Stats: every
// event per minute, hour and day (field 0), and each value of the counted
// fields (veritrail.CountedFields) per hour and day. The commit adds a
// batch's counts in its transaction, summed in memory first so that a
// batch writes one row per slot and value it touches; retention subtracts
// the events it tombstones in the transaction that tombstones them, so the
// counts always agree with the postings the computed path reads. Erasure
// removes content only and holds keep events: neither changes a count.

// Slot widths, in seconds as the table stores them.
const (
	minuteSecs = 60
	hourSecs   = 3600
	daySecs    = 86400
)

// allEvents is the field and key under which every event is counted.
const allEvents = 0

var allEventsKey = []byte{0}

var (
	totalWidths = []int64{minuteSecs, hourSecs, daySecs}
	valueWidths = []int64{hourSecs, daySecs}
)

// countedField reports whether f's values are counted.
func countedField(f veritrail.Field) bool { return slices.Contains(veritrail.CountedFields, f) }

type countKey struct {
	org   int64
	field veritrail.Field
	width int64
	slot  int64
	key   string
}

// counter sums counts in memory before they are written.
type counter map[countKey]int64

// slotOf is the slot of width w (seconds) holding the time t (ns).
func slotOf(t, w int64) int64 {
	return veritrail.FloorTo(t, w*int64(time.Second)) / (w * int64(time.Second))
}

// addTime counts one event at time t, by delta, in every total slot.
func (c counter) addTime(org, t, delta int64) {
	for _, w := range totalWidths {
		c[countKey{org, allEvents, w, slotOf(t, w), string(allEventsKey)}] += delta
	}
}

// addValue counts one event of value key of field f at time t, by delta.
func (c counter) addValue(org int64, f veritrail.Field, key string, t, delta int64) {
	for _, w := range valueWidths {
		c[countKey{org, f, w, slotOf(t, w), key}] += delta
	}
}

// addEvent counts a new event.
func (c counter) addEvent(org int64, e *veritrail.Event) {
	t := e.Time.UnixNano()
	c.addTime(org, t, 1)
	for _, ie := range e.IndexKeys() {
		if countedField(ie.Field) {
			c.addValue(org, ie.Field, ie.Key, t, 1)
		}
	}
}

// sorted returns c's keys with a count other than zero, in the table's
// order (fewer page splits).
func (c counter) sorted() []countKey {
	keys := make([]countKey, 0, len(c))
	for k, n := range c {
		if n != 0 {
			keys = append(keys, k)
		}
	}
	return sortCountKeys(keys)
}

// sortedAll returns all of c's keys in the table's order.
func (c counter) sortedAll() []countKey {
	keys := make([]countKey, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return sortCountKeys(keys)
}

func sortCountKeys(keys []countKey) []countKey {
	slices.SortFunc(keys, func(a, b countKey) int {
		return cmp.Or(cmp.Compare(a.org, b.org), cmp.Compare(a.field, b.field), cmp.Compare(a.width, b.width),
			cmp.Compare(a.slot, b.slot), strings.Compare(a.key, b.key))
	})
	return keys
}

// countsUpsert is the statement's head and tail that add counts.
const (
	countsInsert = `INSERT INTO event_counts (org_id, field, width, slot, key, n) VALUES`
	countsAdd    = `ON CONFLICT (org_id, field, width, slot, key) DO UPDATE SET n = n + excluded.n`
)

// write adds c to event_counts through b (the commit's batched upsert).
func (c counter) write(b *rowBatcher, a *arena) error {
	for _, k := range c.sorted() {
		if err := b.add(k.org, int(k.field), k.width, k.slot, a.copy([]byte(k.key)), c[k]); err != nil {
			return fmt.Errorf("count events: %w", err)
		}
	}
	return nil
}

// apply adds c to event_counts in tx, row by row, and deletes the rows it
// brings to zero: for the jobs outside the commit (migration, retention),
// whose counts are few per transaction.
func (c counter) apply(ctx context.Context, tx *sql.Tx) error {
	if len(c) == 0 {
		return nil
	}
	up, err := tx.PrepareContext(ctx, countsInsert+` (?, ?, ?, ?, ?, ?) `+countsAdd)
	if err != nil {
		return err
	}
	defer up.Close()
	del, err := tx.PrepareContext(ctx, `DELETE FROM event_counts WHERE org_id = ? AND field = ? AND width = ? AND slot = ? AND key = ? AND n = 0`)
	if err != nil {
		return err
	}
	defer del.Close()
	for _, k := range c.sorted() {
		if _, err := up.ExecContext(ctx, k.org, int(k.field), k.width, k.slot, []byte(k.key), c[k]); err != nil {
			return fmt.Errorf("count events: %w", err)
		}
		if c[k] < 0 {
			if _, err := del.ExecContext(ctx, k.org, int(k.field), k.width, k.slot, []byte(k.key)); err != nil {
				return fmt.Errorf("count events: %w", err)
			}
		}
	}
	return nil
}

// countBucket adds to c, by delta, the events of a bucket at the offsets
// pick accepts (every live one when pick is nil), read from its postings:
// the times, the tombstones and the counted fields' lists. Tombstoned
// offsets are never counted. The bucket MUST have no postings tail (a
// write job's, which writes the tail out first).
func countBucket(ctx context.Context, q rowsQueryer, org, bucket int64, pick func(off uint32) bool, delta int64, c counter) error {
	var count int64
	rows, err := q.QueryContext(ctx, `SELECT count FROM buckets WHERE org_id = ? AND bucket = ?`, org, bucket)
	if err != nil {
		return err
	}
	found := rows.Next()
	if found {
		err = rows.Scan(&count)
	}
	rows.Close()
	if err != nil || !found {
		return err
	}
	data, err := loadBucketData(ctx, q, org, bucket, count, nil)
	if err != nil {
		return err
	}
	want := make([]bool, len(data.times))
	for off := range data.times {
		o := uint32(off)
		if !data.dead[o] && (pick == nil || pick(o)) {
			want[off] = true
			c.addTime(org, data.times[off], delta)
		}
	}
	fields := make([]any, len(veritrail.CountedFields))
	for i, f := range veritrail.CountedFields {
		fields[i] = int(f)
	}
	var offs []uint32
	return fieldLists(ctx, q, org, bucket, fields, nil, func(field int, key, list []byte) (err error) {
		if offs, err = decodeOffsets(offs[:0], list); err != nil {
			return fmt.Errorf("bucket %d: %w", bucket, err)
		}
		for _, o := range offs {
			if int(o) < len(want) && want[o] {
				c.addValue(org, veritrail.Field(field), string(key), data.times[o], delta)
			}
		}
		return nil
	})
}

// fillCounts is migration 0016_event_counts_fill: the counts of the events
// stored before event_counts existed, bucket by bucket from the index.
func fillCounts(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT org_id, bucket FROM buckets ORDER BY org_id, bucket`)
	if err != nil {
		return err
	}
	var buckets [][2]int64
	for rows.Next() {
		var b [2]int64
		if err := rows.Scan(&b[0], &b[1]); err != nil {
			rows.Close()
			return err
		}
		buckets = append(buckets, b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	c := counter{}
	for i, b := range buckets {
		if err := countBucket(ctx, tx, b[0], b[1], nil, 1, c); err != nil {
			return err
		}
		// Write an organization's counts before the next one's: memory
		// stays bounded by one organization's slots and values.
		if i+1 == len(buckets) || buckets[i+1][0] != b[0] {
			if err := c.apply(ctx, tx); err != nil {
				return err
			}
			clear(c)
		}
	}
	return nil
}
