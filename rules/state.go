package rules

import (
	"cmp"
	"math"
	"slices"
	"sort"
)

// Windows. Each rule keeps, per group, what its kind needs to decide on the
// next matching event, bounded in size, and as plain data so that it can
// be saved (snapshot) and restored. Times are the events' own times (Unix
// nanoseconds): a window holds the events that happened within it, whatever
// order they arrived in; an event older than its group's window on arrival
// counts for nothing. The state depends on nothing but the events fed, so
// replaying the same events rebuilds it exactly.

// ref is a matched event.
type ref struct {
	ID  string `json:"i"`
	Seq int64  `json:"s"`
	T   int64  `json:"t"` // the event's time, Unix ns
}

// hit is a rule firing on an event.
type hit struct {
	rule  *compiled
	group []string // group_by values
	key   string   // dedup key
	// window are the events that make the rule fire: a new alert holds
	// them, an existing one counts those it does not hold yet.
	window []ref
	// distinct, for a distinct rule, holds the window instead: its
	// values' latest events, sorted only when taken (refs), since a rule
	// firing on every event of a full window mostly adds one event to a
	// finding already pending.
	distinct *distinctGroup
	at       ref   // the event that made it fire
	newest   int64 // the highest seq of window, once pending
}

// refs returns the events that make the hit fire, sorted by time. For a
// distinct rule they are read from the group, which the next event
// changes: take them before judging another.
func (h *hit) refs() []ref {
	if h.distinct != nil {
		return h.distinct.sorted()
	}
	return h.window
}

// maxGroups bounds the groups a rule keeps; past it the group updated
// longest ago (by event time) is dropped.
const maxGroups = 100000

// maxSeen bounds a new_value rule's remembered values.
const maxSeen = 200000

// thresholdGroup keeps the latest N matches (sorted by time): the rule
// fires while the oldest of them is within the window of the newest.
type thresholdGroup struct {
	Last []ref `json:"l"`
}

func (g *thresholdGroup) add(e ref, n int, w int64) (window []ref, fire bool) {
	i := sort.Search(len(g.Last), func(i int) bool { return less(e, g.Last[i]) })
	g.Last = slices.Insert(g.Last, i, e)
	if len(g.Last) > n {
		g.Last = slices.Delete(g.Last, 0, len(g.Last)-n)
	}
	if len(g.Last) < n || g.Last[0].T < g.Last[n-1].T-w || e.T < g.Last[n-1].T-w {
		return nil, false
	}
	return g.Last, true // the caller copies what it keeps
}

func (g *thresholdGroup) latest() int64 { return g.Last[len(g.Last)-1].T }

// less orders refs by time, then seq.
func less(a, b ref) bool { return a.T < b.T || a.T == b.T && a.Seq < b.Seq }

// distinctGroup keeps up to N values with their latest match: the rule
// fires while N distinct values fall within the window.
type distinctGroup struct {
	Values map[string]ref `json:"v"`
	Newest int64          `json:"n"`
	// Oldest is the earliest time in Values (a bound: pruning is skipped
	// while nothing can have left the window).
	Oldest int64 `json:"o"`
}

// add counts value v of event e and reports whether the group holds n
// distinct values within w (its window is then g.sorted()).
func (g *distinctGroup) add(v string, e ref, n int, w int64) (fire bool) {
	if g.Values == nil {
		g.Values = map[string]ref{}
	}
	g.Newest = max(g.Newest, e.T)
	if e.T < g.Newest-w {
		return false
	}
	old, had := g.Values[v]
	if !had || less(old, e) {
		g.Values[v] = e
	}
	if len(g.Values) == 1 || e.T < g.Oldest {
		g.Oldest = e.T
	}
	if g.Oldest < g.Newest-w {
		g.Oldest = g.Newest
		for k, r := range g.Values {
			if r.T < g.Newest-w {
				delete(g.Values, k)
			} else {
				g.Oldest = min(g.Oldest, r.T)
			}
		}
	}
	if len(g.Values) > n { // keep the N most recent values: enough to decide
		// Drop the oldest; the next oldest is the new bound. One pass,
		// not a sort: this runs on every new value of a full group.
		var dropKey string
		var drop, next ref
		first := true
		for k, x := range g.Values {
			switch {
			case first:
				dropKey, drop, first = k, x, false
				next = ref{T: math.MaxInt64}
			case less(x, drop):
				next = drop
				dropKey, drop = k, x
			case less(x, next):
				next = x
			}
		}
		delete(g.Values, dropKey)
		g.Oldest = next.T
	}
	return len(g.Values) >= n
}

func (g *distinctGroup) sorted() []ref {
	refs := make([]ref, 0, len(g.Values))
	for _, r := range g.Values {
		refs = append(refs, r)
	}
	slices.SortFunc(refs, compareRefs)
	return refs
}

// compareRefs orders refs as less does.
func compareRefs(a, b ref) int {
	if less(a, b) {
		return -1
	}
	if less(b, a) {
		return 1
	}
	return 0
}

// sequenceGroup keeps, per step reached, the chain of matches that
// reached it with the latest start.
type sequenceGroup struct {
	Chains [][]ref `json:"c"` // Chains[i]: steps 0..i matched, in order; nil if none
	Newest int64   `json:"n"`
}

// add feeds an event that matches the steps marked in matches; it fires
// when the last step completes a chain started within the window.
func (g *sequenceGroup) add(matches []bool, e ref, w int64) (chain []ref, fire bool) {
	k := len(matches)
	if len(g.Chains) != k-1 {
		g.Chains = make([][]ref, k-1)
	}
	g.Newest = max(g.Newest, e.T)
	for i, c := range g.Chains { // chains that can no longer finish in time
		if c != nil && c[0].T < g.Newest-w {
			g.Chains[i] = nil
		}
	}
	// From the last step down, so that one event fills one step.
	for i := k - 1; i >= 1; i-- {
		prev := g.Chains[i-1]
		if !matches[i] || prev == nil || e.T < prev[len(prev)-1].T || e.T-prev[0].T > w {
			continue
		}
		c := append(slices.Clone(prev), e)
		if i == k-1 {
			clear(g.Chains)
			return c, true
		}
		if g.Chains[i] == nil || g.Chains[i][0].T <= c[0].T {
			g.Chains[i] = c
		}
	}
	if matches[0] {
		g.Chains[0] = []ref{e}
	}
	return nil, false
}

func (g *sequenceGroup) empty() bool {
	for _, c := range g.Chains {
		if c != nil {
			return false
		}
	}
	return true
}

// ruleState is one rule's windows: the groups of its kind, or the
// values a new_value rule has seen.
type ruleState struct {
	Version   string                     `json:"version"`
	Threshold map[string]*thresholdGroup `json:"threshold,omitempty"`
	Distinct  map[string]*distinctGroup  `json:"distinct,omitempty"`
	Sequence  map[string]*sequenceGroup  `json:"sequence,omitempty"`
	// Seen maps group and value to when the value was last seen.
	Seen map[string]int64 `json:"seen,omitempty"`
	// Primed is set once a new_value rule learned the values its
	// lookback held before it started.
	Primed bool `json:"primed,omitempty"`
	// Newest is the latest event time the rule saw.
	Newest int64 `json:"newest,omitempty"`
}

func newRuleState(version string) *ruleState {
	return &ruleState{Version: version, Threshold: map[string]*thresholdGroup{}, Distinct: map[string]*distinctGroup{},
		Sequence: map[string]*sequenceGroup{}, Seen: map[string]int64{}}
}

// fixMaps makes the maps of a restored state usable.
func (s *ruleState) fixMaps() {
	if s.Threshold == nil {
		s.Threshold = map[string]*thresholdGroup{}
	}
	if s.Distinct == nil {
		s.Distinct = map[string]*distinctGroup{}
	}
	if s.Sequence == nil {
		s.Sequence = map[string]*sequenceGroup{}
	}
	if s.Seen == nil {
		s.Seen = map[string]int64{}
	}
}

// sweep forgets groups whose windows are empty as of the rule's newest
// event: a forgotten group behaves exactly as one that expired, so when
// this runs changes nothing the rule decides.
func (s *ruleState) sweep(w, lookback int64) {
	cut := s.Newest - w
	for k, g := range s.Threshold {
		if g.latest() < cut {
			delete(s.Threshold, k)
		}
	}
	for k, g := range s.Distinct {
		if g.Newest < cut {
			delete(s.Distinct, k)
		}
	}
	for k, g := range s.Sequence {
		if g.Newest < cut || g.empty() {
			delete(s.Sequence, k)
		}
	}
	for k, t := range s.Seen {
		if t < s.Newest-lookback {
			delete(s.Seen, k)
		}
	}
}

// capGroups drops the least recently updated groups of m beyond maxGroups
// (by event time, then key: the same every replay).
func capGroups[G any](m map[string]G, newest func(G) int64, limit int) {
	if len(m) <= limit {
		return
	}
	type kv struct {
		k string
		t int64
	}
	all := make([]kv, 0, len(m))
	for k, g := range m {
		all = append(all, kv{k, newest(g)})
	}
	slices.SortFunc(all, func(a, b kv) int {
		if a.t != b.t {
			if a.t < b.t {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.k, b.k)
	})
	// Drop a tenth more than needed, so that this runs seldom.
	for _, x := range all[:len(all)-limit+limit/10] {
		delete(m, x.k)
	}
}
