package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	veritrail "github.com/veritrail/veritrail"
)

// A bucket's postings are written one run per batch: the events
// [start, start+count) of the bucket that the batch appended. Runs are
// merged by size tier so that a bucket keeps few of them.

// runInfo is one run of a bucket's postings: the events [start, start+count).
type runInfo struct {
	start int64
	count int
}

// tier groups runs by size: 0 below 16 events, 1 below 256, and so on.
// Merging 16 runs of one tier makes a run of the next.
func tier(count int) int {
	t := 0
	for count >= mergeRuns {
		count /= mergeRuns
		t++
	}
	return t
}

// postingsBuilder collects one run's postings for one bucket.
type postingsBuilder struct {
	shift  uint
	bucket int64
	run    int64 // first seq of the run in the bucket
	times  []int64
	lists  map[postKey][]uint32
}

type postKey struct {
	field veritrail.Field
	key   string
}

// comparePostKeys orders keys as the postings table does: by field, then key.
func comparePostKeys(a, b postKey) int {
	if a.field != b.field {
		return int(a.field) - int(b.field)
	}
	return strings.Compare(a.key, b.key)
}

func (p *postingsBuilder) reset(first int64, shift uint) {
	p.shift = shift
	p.bucket = first >> shift
	p.run = first
	p.times = p.times[:0]
	if p.lists == nil {
		p.lists = map[postKey][]uint32{}
	} else {
		clear(p.lists)
	}
}

// add adds the event at offset off of the bucket (offsets ascending).
func (p *postingsBuilder) add(off uint32, e *tailEvent) {
	p.times = append(p.times, e.t)
	for _, ie := range e.keys {
		pk := postKey{ie.Field, ie.Key}
		if l := p.lists[pk]; len(l) == 0 || l[len(l)-1] != off {
			p.lists[pk] = append(l, off)
		}
	}
}

// write writes the collected run, merging the bucket's runs when there
// are many of one size tier.
func (p *postingsBuilder) write(ctx context.Context, tx *sql.Tx, st *stmts, ost *orgState) error {
	if len(p.times) == 0 {
		return nil
	}
	st.buf = appendTimes(st.buf[:0], p.times)
	if err := st.postings.add(ost.org, p.bucket, timesField, timesKey, p.run, st.arena.copy(st.buf)); err != nil {
		return err
	}
	keys := make([]postKey, 0, len(p.lists))
	for k := range p.lists {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, comparePostKeys)
	for _, k := range keys {
		st.buf = appendOffsets(st.buf[:0], p.lists[k])
		list := st.arena.copy(st.buf)
		if err := st.postings.add(ost.org, p.bucket, int(k.field), st.arena.copy([]byte(k.key)), p.run, list); err != nil {
			return err
		}
	}
	if ost.runsBucket != p.bucket {
		runs, err := loadRuns(ctx, tx, ost.org, p.bucket)
		if err != nil {
			return err
		}
		ost.runsBucket, ost.runs = p.bucket, runs
	}
	ost.runs = append(ost.runs, runInfo{start: p.run, count: len(p.times)})
	// Size-tiered merging: when the newest runs include 16 of one tier,
	// merge them into one run of the next tier. Each event is rewritten
	// about once per tier, and a bucket keeps at most ~16 runs per tier.
	for {
		k := len(ost.runs)
		t := tier(ost.runs[k-1].count)
		i := k - 1
		for i > 0 && tier(ost.runs[i-1].count) <= t {
			i--
		}
		if k-i < mergeRuns {
			break
		}
		// The rows just queued must be in the table before merging.
		if err := st.postings.flush(); err != nil {
			return err
		}
		if err := mergeRunsFrom(ctx, st, ost.org, p.bucket, ost.runs[i].start); err != nil {
			return err
		}
		total := 0
		for _, r := range ost.runs[i:] {
			total += r.count
		}
		ost.runs = append(ost.runs[:i], runInfo{start: ost.runs[i].start, count: total})
	}
	if _, err := st.setBucketRuns.ExecContext(ctx, len(ost.runs), ost.org, p.bucket); err != nil {
		return fmt.Errorf("write bucket: %w", err)
	}
	p.times = p.times[:0]
	clear(p.lists)
	return nil
}

// loadRuns lists a bucket's runs from its times rows.
func loadRuns(ctx context.Context, tx *sql.Tx, org, bucket int64) ([]runInfo, error) {
	rows, err := tx.QueryContext(ctx, `SELECT run, list FROM postings WHERE org_id = ? AND bucket = ? AND field = 0 ORDER BY run`, org, bucket)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var runs []runInfo
	var times []int64
	for rows.Next() {
		var start int64
		var list []byte
		if err := rows.Scan(&start, &list); err != nil {
			return nil, err
		}
		if times, err = decodeTimes(times[:0], list); err != nil {
			return nil, err
		}
		runs = append(runs, runInfo{start: start, count: len(times)})
	}
	return runs, rows.Err()
}

// mergeRunsFrom rewrites the runs of a bucket starting at seq from (the
// newest ones) as one run per key.
func mergeRunsFrom(ctx context.Context, st *stmts, org, bucket, from int64) error {
	rows, err := st.bucketPostings.QueryContext(ctx, org, bucket, from)
	if err != nil {
		return err
	}
	type merged struct {
		field int
		key   []byte
		run   int64
		times []int64
		offs  []uint32
	}
	var out []*merged
	var cur *merged
	for rows.Next() {
		var field int
		var key, list []byte
		var run int64
		if err := rows.Scan(&field, &key, &run, &list); err != nil {
			rows.Close()
			return err
		}
		if cur == nil || cur.field != field || !bytes.Equal(cur.key, key) {
			cur = &merged{field: field, key: key, run: run}
			out = append(out, cur)
		}
		if field == timesField {
			cur.times, err = decodeTimes(cur.times, list)
		} else {
			cur.offs, err = decodeOffsets(cur.offs, list)
		}
		if err != nil {
			rows.Close()
			return fmt.Errorf("merge runs of bucket %d of org %d: %w", bucket, org, err)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if _, err := st.delBucketPostings.ExecContext(ctx, org, bucket, from); err != nil {
		return err
	}
	var buf []byte
	for _, m := range out {
		if m.field == timesField {
			buf = appendTimes(buf[:0], m.times)
		} else {
			buf = appendOffsets(buf[:0], m.offs)
		}
		if _, err := st.putPosting.ExecContext(ctx, org, bucket, m.field, m.key, m.run, buf); err != nil {
			return err
		}
	}
	return nil
}
