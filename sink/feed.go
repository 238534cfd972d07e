package sink

import (
	"sync"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// Feed hands freshly committed events from the commit path to the sinks'
// workers, so that a sink that keeps up forwards them without reading them
// back from the store; a sink that fell behind (its next event is no longer
// in the feed, or was committed by another node) reads the store as
// before. Its Add is subscribed to the store's Commits.
//
// What a sink forwards from the feed is what it would have read: the
// envelope is rebuilt from the committed event (the same bytes the store
// holds, as the Merkle leaf is computed from them) and the sink's filters
// are applied by veritrail.Query.Match, the reference semantics of every
// store's index. Content is served from the feed only for events committed
// less than ContentAge ago (a sink that keeps up): an older event's
// content is read from the store, where an erasure is seen.
type Feed struct {
	// ContentAge is how long after its commit an event's content may be
	// forwarded from the feed (NewFeed: FeedContentAge).
	ContentAge time.Duration

	keep      int // events kept per organization
	keepBytes int // and at most about this many bytes

	mu   sync.Mutex
	orgs map[int64]*recent
}

// recent is one organization's latest committed events, in seq order.
type recent struct {
	watchers int   // workers of the organization's sinks
	first    int64 // seq of evs[0]
	evs      []*veritrail.Event
	bytes    int // feedSize of evs
}

// feedSize is about what an event costs the feed in memory.
func feedSize(e *veritrail.Event) int { return 512 + len(e.Content) + len(e.ContentSalt) }

// FeedContentAge is a feed's ContentAge unless changed.
const FeedContentAge = 5 * time.Second

// DefaultFeedEvents and DefaultFeedBytes bound what a feed keeps per
// organization: a few commits' worth at full speed, enough for a sink
// that keeps up.
const (
	DefaultFeedEvents = 16384
	DefaultFeedBytes  = 32 << 20
)

// NewFeed returns a feed keeping up to keep events per organization
// (DefaultFeedEvents if keep <= 0), and at most DefaultFeedBytes.
func NewFeed(keep int) *Feed {
	if keep <= 0 {
		keep = DefaultFeedEvents
	}
	return &Feed{ContentAge: FeedContentAge, keep: keep, keepBytes: DefaultFeedBytes, orgs: map[int64]*recent{}}
}

// Add takes one commit's new events of org (a Commits subscriber). It keeps
// them only while the organization has a sink. It does not wake the
// sinks: they keep their poll interval, so that a sink's cursor is written
// once per interval (or full batch), not once per commit.
func (f *Feed) Add(org int64, events []*veritrail.Event) {
	if len(events) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.orgs[org]
	if r == nil {
		return
	}
	if len(r.evs) == 0 || r.first+int64(len(r.evs)) != events[0].Seq {
		// The first events, or a gap (another node committed between):
		// start again from these.
		clear(r.evs)
		r.evs, r.first, r.bytes = r.evs[:0], events[0].Seq, 0
	}
	for _, e := range events {
		c := *e // the appender's event stays its own
		r.evs = append(r.evs, &c)
		r.bytes += feedSize(&c)
	}
	over := max(0, len(r.evs)-f.keep)
	for b := r.bytes; b > f.keepBytes && over < len(r.evs)-1; over++ {
		b -= feedSize(r.evs[over])
	}
	if over > 0 {
		for _, e := range r.evs[:over] {
			r.bytes -= feedSize(e)
		}
		n := copy(r.evs, r.evs[over:])
		clear(r.evs[n:])
		r.evs, r.first = r.evs[:n], r.first+int64(over)
	}
}

// Held reports how many events, and about how many bytes, the feed holds
// for org: never more than its limits, however long a sink is down.
func (f *Feed) Held(org int64) (events, bytes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.orgs[org]; r != nil {
		return len(r.evs), r.bytes
	}
	return 0, 0
}

// watch registers a worker of one of org's sinks: the feed keeps org's
// events while any is registered. The returned function unregisters it.
func (f *Feed) watch(org int64) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.orgs[org]
	if r == nil {
		r = &recent{}
		f.orgs[org] = r
	}
	r.watchers++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.watchers--; r.watchers == 0 {
			delete(f.orgs, org)
		}
	}
}

// after returns org's events with seqs after seq and below head, up to max,
// if the feed holds the one right after seq; ok is false when it does not
// (the sink fell behind, or the events were committed elsewhere) and the
// caller reads the store. soon is true when the feed ends right at seq:
// the next events may be committed and not handed over yet (the store
// answers before the hand-off completes), and asking again in a moment
// may find them. The events are shared: read only.
func (f *Feed) after(org, seq, head int64, max int) (evs []*veritrail.Event, ok, soon bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.orgs[org]
	if r == nil || seq+1 < r.first || seq+1 >= r.first+int64(len(r.evs)) {
		return nil, false, r != nil && len(r.evs) > 0 && seq+1 == r.first+int64(len(r.evs))
	}
	from := seq + 1 - r.first
	to := min(int64(len(r.evs)), head-r.first, from+int64(max))
	if to <= from {
		return nil, false, false
	}
	return append([]*veritrail.Event(nil), r.evs[from:to]...), true, false
}

// receivedAt returns when the event at seq was committed, if the feed holds
// it; soon as for after.
func (f *Feed) receivedAt(org, seq int64) (at time.Time, ok, soon bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.orgs[org]
	if r == nil || seq < r.first || seq >= r.first+int64(len(r.evs)) {
		return time.Time{}, false, r != nil && len(r.evs) > 0 && seq == r.first+int64(len(r.evs))
	}
	return r.evs[seq-r.first].ReceivedAt, true, false
}
