package veritrail

import (
	"cmp"
	"context"
	"encoding/binary"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// StatsQuery asks for a summary of the events a query matches: how many
// fall in each interval of its time window (a histogram) and the most
// frequent values of some fields.
type StatsQuery struct {
	// Query selects the events: filters, window and text as for a list;
	// Order, Limit, After and WithContent are ignored. A zero Since or
	// Until is the time of the organization's oldest or newest event.
	Query Query
	// Interval is the width of a histogram bar; 0 picks a round width that
	// gives about Bars bars (DefaultStatsBars when 0).
	Interval time.Duration
	Bars     int
	// Top lists the fields whose most frequent values are counted, at most
	// TopLimit values each (DefaultTopLimit when 0).
	Top      []Field
	TopLimit int
}

// Stats limits.
const (
	DefaultStatsBars = 60
	MaxStatsBars     = 1000
	DefaultTopLimit  = 10
	MaxTopLimit      = 100
)

// Stats is what a StatsQuery found.
type Stats struct {
	// Since and Until are the window counted; Start is the start of the
	// first bar (Since rounded down to a multiple of Interval since the
	// Unix epoch, so bars fall on round times), and Counts[i] is the number
	// of matching events in [Start+i·Interval, Start+(i+1)·Interval)
	// within the window.
	Since, Until time.Time
	Start        time.Time
	Interval     time.Duration
	Counts       []int64
	Total        int64
	// Top holds, per field asked for, its most frequent index keys among
	// the matching events, most frequent first (ties by key).
	Top map[Field][]KeyCount
}

// KeyCount is how many matching events carry one index key.
type KeyCount struct {
	Key   string
	Count int64
}

// StatsStore summarizes events.
type StatsStore interface {
	// Stats counts the organization's events matching sq per interval and
	// per value of the fields asked for. It MUST agree with Query: an event
	// is counted exactly when a list of sq.Query would return it. It SHOULD
	// read its indexes rather than the events, so that it stays fast on
	// large logs.
	Stats(ctx context.Context, org int64, sq *StatsQuery) (*Stats, error)
}

// niceIntervals are the bar widths a histogram may have.
var niceIntervals = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 30 * 24 * time.Hour,
}

// Plan fixes the window and bars of sq for a log whose events lie in
// [oldest, newest] (both zero for an empty log): the empty ends of the
// window are filled from them, and the interval is chosen. Both stores call
// it, so they cut the same bars. An empty window gives no bars.
func (sq *StatsQuery) Plan(oldest, newest time.Time) (*Stats, error) {
	st := &Stats{Since: sq.Query.Since, Until: sq.Query.Until, Top: map[Field][]KeyCount{}}
	if st.Since.IsZero() {
		st.Since = oldest
	}
	if st.Until.IsZero() {
		st.Until = newest.Add(time.Nanosecond) // Until is exclusive
	}
	st.Since, st.Until = st.Since.UTC(), st.Until.UTC()
	for _, f := range sq.Top {
		st.Top[f] = nil
	}
	if oldest.IsZero() && (sq.Query.Since.IsZero() || sq.Query.Until.IsZero()) || !st.Since.Before(st.Until) {
		st.Start = st.Since
		return st, nil
	}
	span := st.Until.Sub(st.Since)
	st.Interval = sq.Interval
	if st.Interval <= 0 {
		bars := sq.Bars
		if bars <= 0 {
			bars = DefaultStatsBars
		}
		bars = min(bars, MaxStatsBars)
		st.Interval = niceIntervals[len(niceIntervals)-1]
		for _, d := range niceIntervals {
			if span/d < time.Duration(bars) {
				st.Interval = d
				break
			}
		}
	}
	startNS := floorDiv(st.Since.UnixNano(), int64(st.Interval)) * int64(st.Interval)
	st.Start = time.Unix(0, startNS).UTC()
	n := (st.Until.UnixNano() - startNS + int64(st.Interval) - 1) / int64(st.Interval)
	if n > MaxStatsBars {
		return nil, Errorf(EInvalid, "parameter interval: %s makes %d bars over this window; at most %d are allowed", st.Interval, n, MaxStatsBars)
	}
	st.Counts = make([]int64, n)
	return st, nil
}

// CountedFields are the fields whose values both stores count per hour as
// they add and remove events, so that stats without filters read counts
// instead of events. Changing it needs a migration of both stores.
var CountedFields = []Field{FieldType, FieldActorID, FieldActorEmail, FieldOutcome, FieldConnector, FieldTool, FieldDecision}

// CountedHours returns the whole hours [lo, hi) of st's window (a plan of
// sq) that the stores may count from the per-hour counts of CountedFields
// instead of from the events, and whether there are any: only when sq has
// no filter and no text, the bars are whole minutes (so a minute, and an
// hour, lies in one bar), and every top field is counted. The events of
// the edges outside [lo, hi) are counted from the events. Both stores
// MUST use it, so that they take the same path for the same query.
func (sq *StatsQuery) CountedHours(st *Stats) (lo, hi int64, ok bool) {
	since, until := st.Since.UnixNano(), st.Until.UnixNano()
	lo, hi = CeilTo(since, int64(time.Hour)), FloorTo(until, int64(time.Hour))
	ok = len(sq.Query.Filters) == 0 && sq.Query.Text == "" && st.Interval > 0 && st.Interval%time.Minute == 0 && lo < hi
	for _, f := range sq.Top {
		ok = ok && slices.Contains(CountedFields, f)
	}
	return lo, hi, ok
}

// Bar returns the bar of an event time in the window, or -1 outside it.
func (st *Stats) Bar(ns int64) int {
	if len(st.Counts) == 0 || ns < st.Since.UnixNano() || ns >= st.Until.UnixNano() {
		return -1
	}
	return int((ns - st.Start.UnixNano()) / int64(st.Interval))
}

// SetTop keeps the limit most frequent of counts as f's top values.
func (st *Stats) SetTop(f Field, counts map[string]int64, limit int) {
	if limit <= 0 {
		limit = DefaultTopLimit
	}
	out := make([]KeyCount, 0, len(counts))
	for k, n := range counts {
		if n > 0 {
			out = append(out, KeyCount{k, n})
		}
	}
	slices.SortFunc(out, func(a, b KeyCount) int {
		if a.Count != b.Count {
			return cmp.Compare(b.Count, a.Count)
		}
		return cmp.Compare(a.Key, b.Key)
	})
	st.Top[f] = out[:min(limit, len(out))]
}

// FloorTo returns t rounded down to a multiple of w (w > 0), below zero
// too: the start of the slot of width w that holds t.
func FloorTo(t, w int64) int64 {
	r := t % w
	if r < 0 {
		r += w
	}
	return t - r
}

// CeilTo returns t rounded up to a multiple of w (w > 0).
func CeilTo(t, w int64) int64 {
	if f := FloorTo(t, w); f != t {
		return f + w
	}
	return t
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// KeyValue is the value, as a filter parameter writes it, of an index key
// of field f: the inverse of Event.IndexKey (IP addresses and status codes
// are binary keys).
func KeyValue(f Field, key string) string {
	switch f {
	case FieldIP:
		if len(key) == 16 {
			return netip.AddrFrom16([16]byte([]byte(key))).Unmap().String()
		}
	case FieldStatus:
		if len(key) == 8 {
			return strconv.FormatInt(int64(binary.BigEndian.Uint64([]byte(key))^(1<<63)), 10)
		}
	}
	return key
}
