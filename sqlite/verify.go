package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	veritrail "github.com/veritrail/veritrail"
)

// Offline verification support (veritrail verify --data): reading the log
// as stored, and checking the columns derived from envelopes for search.

// ScanLog calls fn for every stored event row of org in seq order, with
// its content and salt when present.
func (s *Store) ScanLog(ctx context.Context, org int64, fn func(seq int64, env, content, salt []byte) error) error {
	rows, err := s.rdb.QueryContext(ctx, `SELECT e.rid, e.envelope, c.body, c.salt FROM events e
		LEFT JOIN contents c ON c.rid = e.rid WHERE e.rid >= ? AND e.rid < ? ORDER BY e.rid`,
		rid(org, 0), rid(org+1, 0))
	if err != nil {
		return err
	}
	defer rows.Close()
	var r int64
	var env, content, salt []byte
	for rows.Next() {
		if err := rows.Scan(&r, &env, &content, &salt); err != nil {
			return err
		}
		if err := fn(r-rid(org, 0), env, content, salt); err != nil {
			return err
		}
	}
	return rows.Err()
}

// IndexChecker checks the search index and the id index of one
// organization against its envelopes: an edited index column could hide an
// event from an investigator while the envelope itself stays intact. Feed
// it every stored event in seq order, then call Finish.
type IndexChecker struct {
	s    *Store
	ctx  context.Context
	org  int64
	fail func(seq int64, kind, detail string)

	bucket   int64
	times    map[uint32]int64
	lists    map[postKey][]uint32
	idSum    uint64
	idCount  int64
	anyEvent bool
}

// NewIndexChecker returns a checker reporting through fail.
func (s *Store) NewIndexChecker(ctx context.Context, org int64, fail func(seq int64, kind, detail string)) *IndexChecker {
	return &IndexChecker{s: s, ctx: ctx, org: org, fail: fail, bucket: -1}
}

func idHash(id string, seq int64) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	h.Write([]byte{0, byte(seq), byte(seq >> 8), byte(seq >> 16), byte(seq >> 24), byte(seq >> 32), byte(seq >> 40)})
	return h.Sum64()
}

// Event adds one stored event.
func (c *IndexChecker) Event(seq int64, env []byte) error {
	b := seq >> c.s.shift
	if b != c.bucket {
		if err := c.flush(); err != nil {
			return err
		}
		c.bucket, c.times, c.lists = b, map[uint32]int64{}, map[postKey][]uint32{}
	}
	e, err := veritrail.ParseEnvelope(env)
	if err != nil {
		return nil // the log check reports unreadable envelopes
	}
	off := uint32(seq - b<<c.s.shift)
	c.times[off] = e.Time.UnixNano()
	for _, ie := range e.IndexKeys() {
		k := postKey{ie.Field, ie.Key}
		c.lists[k] = append(c.lists[k], off)
	}
	c.idSum += idHash(e.ID, seq)
	c.idCount++
	c.anyEvent = true
	return nil
}

// flush compares the current bucket's stored postings with the expected.
func (c *IndexChecker) flush() error {
	if c.bucket < 0 {
		return nil
	}
	base := c.bucket << c.s.shift
	rows, err := c.s.rdb.QueryContext(c.ctx, `SELECT field, key, list FROM postings
		WHERE org_id = ? AND bucket = ? ORDER BY field, key, run`, c.org, c.bucket)
	if err != nil {
		return err
	}
	stored := map[postKey][]uint32{}
	var times []int64
	for rows.Next() {
		var field int
		var key, list []byte
		if err := rows.Scan(&field, &key, &list); err != nil {
			rows.Close()
			return err
		}
		if field == timesField {
			if times, err = decodeTimes(times, list); err != nil {
				c.fail(base, "index_mismatch", "the bucket's stored times are unreadable")
			}
			continue
		}
		k := postKey{veritrail.Field(field), string(key)}
		if stored[k], err = decodeOffsets(stored[k], list); err != nil {
			c.fail(base, "index_mismatch", fmt.Sprintf("the stored %s index is unreadable", k.field))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	// Times, by offset: stored runs cover the bucket from its start.
	for off, t := range c.times {
		if int(off) >= len(times) || times[off] != t {
			c.fail(base+int64(off), "index_mismatch", "the indexed time differs from the envelope's")
		}
	}
	if len(times) > len(c.times) {
		for off := range times {
			if _, ok := c.times[uint32(off)]; !ok {
				c.fail(base+int64(off), "index_mismatch", "the index holds a time for an event that is not stored")
				break
			}
		}
	}
	keys := map[postKey]bool{}
	for k := range c.lists {
		keys[k] = true
	}
	for k := range stored {
		keys[k] = true
	}
	ordered := make([]postKey, 0, len(keys))
	for k := range keys {
		ordered = append(ordered, k)
	}
	slices.SortFunc(ordered, func(a, b postKey) int {
		if a.field != b.field {
			return int(a.field) - int(b.field)
		}
		return strings.Compare(a.key, b.key)
	})
	for _, k := range ordered {
		want, got := c.lists[k], stored[k]
		if slices.Equal(want, got) {
			continue
		}
		// Name the first event where they part.
		i := 0
		for i < len(want) && i < len(got) && want[i] == got[i] {
			i++
		}
		off := uint32(0)
		switch {
		case i < len(want) && (i >= len(got) || want[i] < got[i]):
			off = want[i]
			c.fail(base+int64(off), "index_mismatch", fmt.Sprintf("the %s index does not list this event under its value: a search by %s would miss it", k.field, k.field))
		default:
			off = got[i]
			c.fail(base+int64(off), "index_mismatch", fmt.Sprintf("the %s index lists this event under a value its envelope does not have", k.field))
		}
	}
	var count int64
	err = c.s.rdb.QueryRowContext(c.ctx, `SELECT count FROM buckets WHERE org_id = ? AND bucket = ?`, c.org, c.bucket).Scan(&count)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && count != int64(len(c.times))) {
		c.fail(base, "index_mismatch", fmt.Sprintf("the bucket summary counts %d events, %d are stored", count, len(c.times)))
	} else if err != nil {
		return err
	}
	return nil
}

// Finish checks the last bucket and the id index.
func (c *IndexChecker) Finish() error {
	if err := c.flush(); err != nil {
		return err
	}
	rows, err := c.s.rdb.QueryContext(c.ctx, `SELECT id, seq FROM event_ids WHERE org_id = ?`, c.org)
	if err != nil {
		return err
	}
	var sum uint64
	var n int64
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			rows.Close()
			return err
		}
		sum += idHash(id, seq)
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if sum != c.idSum || n != c.idCount {
		return c.findIDMismatch()
	}
	return nil
}

// findIDMismatch names the events whose id index entry is wrong (slow: one
// lookup per event, run only when the checksums differ).
func (c *IndexChecker) findIDMismatch() error {
	seen := map[string]bool{}
	err := c.s.ScanLog(c.ctx, c.org, func(seq int64, env, _, _ []byte) error {
		e, err := veritrail.ParseEnvelope(env)
		if err != nil {
			return nil
		}
		seen[e.ID] = true
		var got int64
		err = c.s.rdb.QueryRowContext(c.ctx, `SELECT seq FROM event_ids WHERE org_id = ? AND id = ?`, c.org, e.ID).Scan(&got)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			c.fail(seq, "id_index_mismatch", fmt.Sprintf("id %q is missing from the id index: GET /events/{id} would not find it", e.ID))
		case err != nil:
			return err
		case got != seq:
			c.fail(seq, "id_index_mismatch", fmt.Sprintf("the id index sends id %q to seq %d", e.ID, got))
		}
		return nil
	})
	if err != nil {
		return err
	}
	rows, err := c.s.rdb.QueryContext(c.ctx, `SELECT id, seq FROM event_ids WHERE org_id = ?`, c.org)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			return err
		}
		if !seen[id] {
			c.fail(seq, "id_index_mismatch", fmt.Sprintf("the id index holds id %q, which no stored event has", id))
		}
	}
	return rows.Err()
}
