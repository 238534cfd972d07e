package postgres

import (
	"cmp"
	"context"
	"encoding/binary"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/statcol"
)

// A node keeps, per hour of an organization's events, the events' times
// and seqs in (time, seq) order and a column (statcol.Column) of each of
// columnFields: the hour's events read once, then kept in a bounded cache
// (Store.hours). Stats with filters or text count their matching events
// from them: filters on columnFields are evaluated on the columns (once
// per key, then one look-up per event), any other filter and full text
// in PostgreSQL, which returns only the matches' times and seqs; the
// matches' values are then counted with one look-up per event and field
// instead of a grouped statement over every matching row.
//
// An hour's entry is valid for one count of the hour's changes
// (event_counts' changesField, counts.go), read in the snapshot of every
// stats call: any transaction adding events to the hour or removing some
// (on any node: retention, a commit of another node) adds to it, so a
// node never counts from an hour other than the database's. Erasure and
// content retention change content words only, which the columns do not
// hold (full text is always asked of PostgreSQL).

// columnFields are the fields whose columns the hours keep: those the
// console counts (the counted fields).
var columnFields = veritrail.CountedFields

// DefaultStatsCacheBytes is the default bound of the hours' columns a node
// keeps (Options.StatsCacheBytes): about 24 bytes per event, so some 10M
// events.
const DefaultStatsCacheBytes = 256 << 20

// hourColumns is what a node keeps of one hour of an organization's
// events. It is shared through the cache and never modified.
type hourColumns struct {
	times []int64 // in (time, seq) order: a position is an index
	seqs  []int64
	cols  []*statcol.Column // of columnFields
}

func (h *hourColumns) size() int {
	n := 64 + 16*len(h.times)
	for _, c := range h.cols {
		n += c.Size()
	}
	return n
}

// position returns the position of the event (t, seq) in the hour, -1
// when it is not there.
func (h *hourColumns) position(t, seq int64) int {
	i, found := slices.BinarySearchFunc(h.times, t, func(x, t int64) int { return cmp.Compare(x, t) })
	if !found {
		return -1
	}
	for ; i < len(h.times) && h.times[i] == t; i++ {
		if h.seqs[i] == seq {
			return i
		}
	}
	return -1
}

// columnOf returns the index in columnFields of the column that serves
// field f (a class is a set of types: the type column), -1 for none.
func columnOf(f veritrail.Field) int {
	if f == veritrail.FieldClass {
		f = veritrail.FieldType
	}
	return slices.Index(columnFields, f)
}

// hourVersion is an hour and the count of its changes in a snapshot.
type hourVersion struct{ hour, changes int64 }

// columnStats counts the events of q (its window set to st's) into st's
// bars and, per field of top, into counts from the hours' columns (see
// above). It reports false, having counted nothing, when it cannot: a
// top field without a column, or an hour with too many keys for one; or,
// when cachedOnly, more than a few hours' columns not in memory
// (columnsOf).
func (s *Store) columnStats(ctx context.Context, org int64, q *veritrail.Query, st *veritrail.Stats, top []veritrail.Field, counts []map[string]int64, cachedOnly bool) (bool, error) {
	topCols := make([]int, len(top))
	for i, f := range top {
		if topCols[i] = columnOf(f); topCols[i] < 0 || f == veritrail.FieldClass {
			return false, nil
		}
	}
	// The filters on columns are evaluated here, the others (and text)
	// by PostgreSQL.
	type localFilter struct {
		f   *veritrail.Filter
		col int
	}
	var local []localFilter
	remote := *q
	remote.Filters = nil
	for i := range q.Filters {
		if c := columnOf(q.Filters[i].Field); c >= 0 {
			local = append(local, localFilter{&q.Filters[i], c})
		} else {
			remote.Filters = append(remote.Filters, q.Filters[i])
		}
	}
	asksDatabase := len(remote.Filters) > 0 || remote.Text != ""

	gen := s.hours.Generation() // before the snapshot: see statcol.Cache.Put
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return false, err
	}
	defer tx.Rollback(ctx)
	since, until := st.Since.UnixNano(), st.Until.UnixNano()
	versions, err := hourVersions(ctx, tx, org, veritrail.FloorTo(since, hourNS)/hourNS, veritrail.FloorTo(until-1, hourNS)/hourNS+1)
	if err != nil {
		return false, err
	}
	hours, err := s.columnsOf(ctx, tx, org, versions, gen, cachedOnly)
	if err != nil || hours == nil {
		if err == nil && cachedOnly {
			s.warmHours(org, versions)
		}
		return false, err
	}
	for _, h := range hours {
		for _, c := range topCols {
			if !h.cols[c].Ok() {
				return false, nil
			}
		}
		for _, lf := range local {
			if !h.cols[lf.col].Ok() {
				return false, nil
			}
		}
	}

	// The positions PostgreSQL matched, per hour.
	var matched [][]uint32
	if asksDatabase {
		if matched, err = s.hourMatches(ctx, tx, org, &remote, versions, hours, gen); err != nil || matched == nil {
			return false, err
		}
	}

	var hits []uint32
	var tally []int64
	var keep [][]bool // per local filter, per key number of its column
	for i, h := range hours {
		keep = keep[:0]
		for _, lf := range local {
			col := h.cols[lf.col]
			ok := make([]bool, len(col.Keys))
			for k := range col.Keys {
				switch {
				case k == 0:
					ok[k] = lf.f.Field != veritrail.FieldClass && lf.f.MatchKey("", false)
				case lf.f.Field == veritrail.FieldClass:
					ok[k] = lf.f.MatchKey(veritrail.ClassKey(veritrail.ClassOf(col.Keys[k])), true)
				default:
					ok[k] = lf.f.MatchKey(col.Keys[k], true)
				}
			}
			keep = append(keep, ok)
		}
		hits = hits[:0]
		visit := func(pos uint32) {
			t := h.times[pos]
			if t < since || t >= until {
				return
			}
			for j, lf := range local {
				if !keep[j][h.cols[lf.col].At(pos)] {
					return
				}
			}
			st.Counts[st.Bar(t)]++
			hits = append(hits, pos)
		}
		// An hour wholly in the window and in one bar (bars of whole
		// hours start on whole hours), with every event matching, is
		// counted whole, without visiting its events.
		hourStart := versions[i].hour * hourNS
		whole := !asksDatabase && len(local) == 0 && since <= hourStart && hourStart+hourNS <= until &&
			st.Interval%time.Hour == 0 && len(h.times) > 0
		switch {
		case whole:
			st.Counts[st.Bar(hourStart)] += int64(len(h.times))
		case asksDatabase:
			for _, pos := range matched[i] {
				visit(pos)
			}
		default:
			for pos := range h.times {
				visit(uint32(pos))
			}
		}
		if !whole && len(hits) == 0 {
			continue
		}
		whole = whole || len(hits) == len(h.times)
		for j, c := range topCols {
			m := counts[j]
			tally = h.cols[c].Count(hits, whole, tally, func(key string, n int64) { m[key] += n })
		}
	}
	return true, tx.Commit(ctx)
}

// columnsOf returns the columns of the hours of versions, read in tx
// (whose snapshot versions were read in) for those not in memory, in runs
// of consecutive hours, a statement each; gen is the cache's generation
// read before the snapshot. When cachedOnly, it returns nil instead of
// reading more than a sixteenth of the hours' events (by their counts of
// changes), or when all of them would not fit in half the cache.
func (s *Store) columnsOf(ctx context.Context, tx pgx.Tx, org int64, versions []hourVersion, gen uint64, cachedOnly bool) ([]*hourColumns, error) {
	hours := make([]*hourColumns, len(versions))
	var missing []int
	for i, v := range versions {
		if h, _ := s.hours.Get(statcol.Key{Org: org, Bucket: v.hour, Field: columnsEntry}, v.changes).(*hourColumns); h != nil {
			hours[i] = h
		} else {
			missing = append(missing, i)
		}
	}
	if cachedOnly && len(missing) > 0 {
		// A few hours missing (under live ingest, the hour being
		// written) are read now; more are left to warmHours.
		var all, absent int64
		for _, v := range versions {
			all += v.changes
		}
		for _, i := range missing {
			absent += versions[i].changes
		}
		if absent*16 > all || all*bytesPerEvent > int64(s.opts.StatsCacheBytes/2) {
			return nil, nil
		}
	}
	for len(missing) > 0 {
		n := 1
		for n < len(missing) && versions[missing[n]].hour == versions[missing[n-1]].hour+1 {
			n++
		}
		run := missing[:n]
		missing = missing[n:]
		built, err := readHours(ctx, tx, org, versions[run[0]].hour, versions[run[len(run)-1]].hour+1)
		if err != nil {
			return nil, err
		}
		for _, i := range run {
			h := built[versions[i].hour]
			if h == nil {
				h = &hourColumns{cols: emptyColumns()}
			}
			hours[i] = h
			s.hours.Put(statcol.Key{Org: org, Bucket: versions[i].hour, Field: columnsEntry}, versions[i].changes, h, h.size(), gen)
		}
	}
	return hours, nil
}

// bytesPerEvent is about what the columns of an hour take per event
// (hourColumns.size).
const bytesPerEvent = 24

// warmHours reads, in the background, the columns of the hours of
// versions that this node lacks, when all of them fit in half its cache
// (the hours' counts of changes bound their events): the whole log's
// stats are counted from them once they are all in memory, until then
// from event_counts. One warm-up runs at a time; Close stops it.
func (s *Store) warmHours(org int64, versions []hourVersion) {
	var events int64
	for _, v := range versions {
		events += v.changes
	}
	if events*bytesPerEvent > int64(s.opts.StatsCacheBytes/2) || !s.warming.CompareAndSwap(false, true) {
		return
	}
	select {
	case <-s.closing:
		s.warming.Store(false)
		return
	default:
	}
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		defer s.warming.Store(false)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-s.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		gen := s.hours.Generation()
		tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return
		}
		defer tx.Rollback(ctx)
		// The hours' counts again, in this snapshot.
		now, err := hourVersions(ctx, tx, org, versions[0].hour, versions[len(versions)-1].hour+1)
		if err == nil {
			_, err = s.columnsOf(ctx, tx, org, now, gen, false)
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("stats: reading the hours' columns in the background", "org", org, "err", err)
		}
	}()
}

// hourVersions reads the count of changes of each hour in [lo, hi) that
// has had events, in hour order.
func hourVersions(ctx context.Context, tx pgx.Tx, org, lo, hi int64) ([]hourVersion, error) {
	rows, err := tx.Query(ctx, `SELECT slot, n FROM event_counts
		WHERE org_id = $1 AND field = $2 AND slot >= $3 AND slot < $4 ORDER BY slot`, org, changesField, lo, hi)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []hourVersion
	for rows.Next() {
		var v hourVersion
		if err := rows.Scan(&v.hour, &v.changes); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func emptyColumns() []*statcol.Column {
	cols := make([]*statcol.Column, len(columnFields))
	for i := range cols {
		cols[i] = statcol.NewBuilder(0).Column()
	}
	return cols
}

// readHours reads the events of the hours [lo, hi) into columns, by hour
// (hours without events are left out).
func readHours(ctx context.Context, tx pgx.Tx, org, lo, hi int64) (map[int64]*hourColumns, error) {
	cols := make([]string, len(columnFields))
	for i, f := range columnFields {
		cols[i] = column(f)
	}
	rows, err := tx.Query(ctx, `SELECT time_ns, seq, `+strings.Join(cols, ", ")+` FROM events
		WHERE org_id = $1 AND time_ns >= $2 AND time_ns < $3 ORDER BY time_ns, seq`, org, lo*hourNS, hi*hourNS)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]*hourColumns{}
	var h *hourColumns
	var builders []*statcol.Builder
	hour := int64(0)
	done := func() {
		if h != nil {
			for i, b := range builders {
				h.cols[i] = b.Column()
			}
			out[hour] = h
		}
	}
	var t, seq int64
	keys := make([]pgtype.DriverBytes, len(columnFields))
	dest := []any{&t, &seq}
	for i := range keys {
		dest = append(dest, &keys[i])
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if th := veritrail.FloorTo(t, hourNS) / hourNS; h == nil || th != hour {
			done()
			h, hour = &hourColumns{cols: make([]*statcol.Column, len(columnFields))}, th
			builders = make([]*statcol.Builder, len(columnFields))
			for i := range builders {
				builders[i] = statcol.NewBuilder(0)
			}
		}
		h.times, h.seqs = append(h.times, t), append(h.seqs, seq)
		for i, k := range keys {
			builders[i].Append(k)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	done()
	return out, nil
}

// The kinds of entries of Store.hours: an hour's columns, and the
// positions of an hour's events that a query's conditions left to
// PostgreSQL match (Key.What: matchesKey).
const (
	columnsEntry veritrail.Field = 0
	matchesEntry veritrail.Field = 1
)

// hourMatched is the positions of an hour's events a query matched.
type hourMatched struct{ pos []uint32 }

// matchesKey names exactly the conditions of q that PostgreSQL evaluates
// (its filters and text; not its window): entries of the same key hold
// the same query's matches.
func matchesKey(q *veritrail.Query) string {
	var b []byte
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, f := range q.Filters {
		b = append(b, 'f', byte(f.Field))
		for _, rs := range [][]veritrail.KeyRange{f.Ranges, f.Exclude} {
			b = binary.AppendUvarint(b, uint64(len(rs)))
			for _, r := range rs {
				str(r.Lo)
				str(r.Hi)
			}
		}
	}
	b = append(b, 't')
	if q.TextInContent {
		b = append(b, 'c')
	}
	str(q.Text)
	return string(b)
}

// hourMatches returns, per hour of versions (whose columns are hours),
// the positions of the events that q's conditions (filters and text, all
// evaluated by PostgreSQL) match: kept in Store.hours for the hour's
// count of changes, which erasure moves too (it changes what a text
// matches), and otherwise asked of PostgreSQL for runs of consecutive
// hours. It returns nil when the answer does not fit the columns (see
// matchedPositions).
func (s *Store) hourMatches(ctx context.Context, tx pgx.Tx, org int64, q *veritrail.Query, versions []hourVersion, hours []*hourColumns, gen uint64) ([][]uint32, error) {
	what := matchesKey(q)
	out := make([][]uint32, len(hours))
	var missing []int
	for i, v := range versions {
		if m, _ := s.hours.Get(statcol.Key{Org: org, Bucket: v.hour, Field: matchesEntry, What: what}, v.changes).(*hourMatched); m != nil {
			out[i] = m.pos
		} else {
			missing = append(missing, i)
		}
	}
	for len(missing) > 0 {
		n := 1
		for n < len(missing) && versions[missing[n]].hour == versions[missing[n-1]].hour+1 {
			n++
		}
		a, b := missing[0], missing[n-1]+1 // consecutive hours are consecutive in versions
		missing = missing[n:]
		rq := *q
		rq.Since, rq.Until = time.Unix(0, versions[a].hour*hourNS), time.Unix(0, versions[b-1].hour*hourNS+hourNS)
		run, err := s.matchedPositions(ctx, tx, org, &rq, versions[a:b], hours[a:b])
		if err != nil || run == nil {
			return nil, err
		}
		for j, pos := range run {
			out[a+j] = pos
			s.hours.Put(statcol.Key{Org: org, Bucket: versions[a+j].hour, Field: matchesEntry, What: what}, versions[a+j].changes,
				&hourMatched{pos}, 64+len(what)+4*len(pos), gen)
		}
	}
	return out, nil
}

// matchedPositions asks PostgreSQL for the times and seqs of the events q
// matches and returns their positions in hours (whose hours versions
// lists), per hour. It returns nil when an event is in none of them, which
// the snapshot they were checked in rules out.
func (s *Store) matchedPositions(ctx context.Context, tx pgx.Tx, org int64, q *veritrail.Query, versions []hourVersion, hours []*hourColumns) ([][]uint32, error) {
	w, err := s.newWhere(ctx, org, q)
	if err != nil {
		return nil, err
	}
	out := make([][]uint32, len(hours))
	if w.none {
		return out, nil
	}
	rows, err := tx.Query(ctx, `SELECT e.time_ns, e.seq FROM events e WHERE `+strings.Join(w.conds, " AND "), w.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var t, seq int64
	last := -1 // the hour of the previous match, which the next is likely in too
	for rows.Next() {
		if err := rows.Scan(&t, &seq); err != nil {
			return nil, err
		}
		hour := veritrail.FloorTo(t, hourNS) / hourNS
		i := last
		if i < 0 || versions[i].hour != hour {
			var found bool
			if i, found = slices.BinarySearchFunc(versions, hour, func(v hourVersion, h int64) int { return cmp.Compare(v.hour, h) }); !found {
				s.log.Warn("stats: a matching event is in no hour of the snapshot; counting from the events", "org", org, "time_ns", t, "seq", seq)
				return nil, nil
			}
		}
		last = i
		pos := hours[i].position(t, seq)
		if pos < 0 {
			s.log.Warn("stats: a matching event is not in its hour's columns; counting from the events", "org", org, "time_ns", t, "seq", seq)
			return nil, nil
		}
		out[i] = append(out[i], uint32(pos))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
