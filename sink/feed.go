package sink

import (
	"bytes"
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
// envelope is the one the commit built and kept on the event for
// organizations the feed Wants (or, if none was kept, rebuilt from the
// committed event: the same bytes the store holds, as the Merkle leaf is
// computed from them) and the sink's filters
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

// recent is one organization's latest committed events, in seq order, in
// a ring: evs[(head+i)%len(evs)] is the event at seq first+i, for i < n.
type recent struct {
	watchers int   // workers of the organization's sinks
	expected int64 // events from this seq on are handed over (-1: not known yet)
	first    int64 // seq of the oldest event held
	evs      []*fresh
	head, n  int
	bytes    int           // feedSize of the events held
	grew     chan struct{} // closed by the next Add, made by a waiter
	// missed: a wait for a hand-off ran out since the last Add (the
	// events came from another node): no more waits until the next Add,
	// so a node that commits none of the organization's events reads the
	// store at once rather than waiting HandOffWait per batch.
	missed bool
}

// handOff reports whether the event at seq is not held yet but is on its
// way: it follows the last event held, or the feed is empty and seq is at
// or past what it was told to expect. The store answers a commit before
// the commit path hands its events over, so a worker may see it first.
func (r *recent) handOff(seq int64) bool {
	if r.missed {
		return false
	}
	if r.n > 0 {
		return seq == r.first+int64(r.n)
	}
	return r.expected >= 0 && seq >= r.expected
}

// at returns the i-th oldest event held.
func (r *recent) at(i int) *fresh { return r.evs[(r.head+i)%len(r.evs)] }

// drop lets the oldest event go.
func (r *recent) drop() {
	r.bytes -= feedSize(r.evs[r.head].ev)
	r.evs[r.head] = nil
	r.head = (r.head + 1) % len(r.evs)
	r.n--
	r.first++
}

// fresh is an event in the feed, and the records sinks made of it: every
// sink of an organization forwards the same fresh events, so the first
// one to forward an event builds its envelope and its record in a format,
// and the others share them.
type fresh struct {
	ev *veritrail.Event // the commit's event, copied; read only

	mu      sync.Mutex
	env     []byte
	org     string // the organization name the records were made for
	records [len(recordFormats) * 2]*Record
}

// recordFormats are the formats whose records a fresh event keeps.
var recordFormats = [...]string{FormatNative, FormatOCSF, FormatCEF}

// record returns the event's record for a sink of organization org in
// format, with content or not, as FormatRecord makes it from the stored
// envelope: built once, then shared (its Event and Body are read only).
func (f *fresh) record(format, org string, withContent bool) (Record, error) {
	slot := -1
	for i, rf := range recordFormats {
		if rf == format {
			slot = 2 * i
		}
	}
	content := withContent && len(f.ev.Content) > 0
	if content {
		slot++
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.org != org {
		// Renamed between two sinks' reads: start again under the new
		// name.
		f.org, f.records = org, [len(f.records)]*Record{}
	}
	if slot >= 0 && f.records[slot] != nil {
		return *f.records[slot], nil
	}
	var r Record
	var err error
	if format == FormatNative {
		// The members nativeFields would read back from the envelope,
		// as it would read them (times in UTC).
		e := &veritrail.Event{ID: f.ev.ID, Seq: f.ev.Seq, Time: f.ev.Time.UTC(), Type: f.ev.Type, Outcome: f.ev.Outcome}
		if d := f.ev.Decision; d != nil {
			e.Decision = &veritrail.Decision{Action: d.Action}
		}
		r = nativeRecord(f.envelope(), e, f.ev.Content, f.ev.ContentSalt, withContent)
	} else {
		ev := veritrail.StoredEvent{Seq: f.ev.Seq, TimeNS: f.ev.Time.UnixNano(), Envelope: f.envelope()}
		if withContent {
			ev.Content, ev.Salt = f.ev.Content, f.ev.ContentSalt
		}
		r, err = FormatRecord(format, org, &ev, withContent)
	}
	if err == nil && slot >= 0 {
		f.records[slot] = &r
	}
	return r, err
}

// envelope returns the event's envelope bytes, built at the first call
// (f.mu held).
func (f *fresh) envelope() []byte {
	if f.env == nil {
		if env := f.ev.Envelope(); env != nil {
			// Kept by the commit path (Feed.Wants): the stored bytes.
			f.env = env
			return env
		}
		// Built in a reused buffer, kept in an exact copy: it may be a
		// record's body for as long as the feed holds the event.
		buf := envelopeBuffers.Get().(*[]byte)
		*buf = veritrail.AppendEnvelope((*buf)[:0], f.ev)
		f.env = bytes.Clone(*buf)
		envelopeBuffers.Put(buf)
	}
	return f.env
}

var envelopeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// feedSize is about what an event costs the feed in memory, with its
// envelope and a record or two that sinks build from it (the content is
// held by the event and may be spliced into a record).
func feedSize(e *veritrail.Event) int { return 1024 + 2*len(e.Content) + len(e.ContentSalt) }

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
// once per interval (or full batch), not once per commit. The oldest
// events leave a ring, so a full feed costs a commit nothing per event it
// keeps.
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
	if r.evs == nil {
		r.evs = make([]*fresh, f.keep)
	}
	if r.n == 0 || r.first+int64(r.n) != events[0].Seq {
		// The first events, or a gap (another node committed between):
		// start again from these.
		for r.n > 0 {
			r.drop()
		}
		r.head, r.first = 0, events[0].Seq
	}
	for _, e := range events {
		if r.n == len(r.evs) {
			r.drop()
		}
		c := *e // the appender's event stays its own
		r.evs[(r.head+r.n)%len(r.evs)] = &fresh{ev: &c}
		r.n++
		r.bytes += feedSize(&c)
	}
	for r.bytes > f.keepBytes && r.n > 1 {
		r.drop()
	}
	r.missed = false
	if r.grew != nil {
		close(r.grew)
		r.grew = nil
	}
}

// Wants reports whether org has sinks reading the feed: the commit path
// then keeps the envelopes of org's events for them (Commits.WantEnvelopes).
func (f *Feed) Wants(org int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.orgs[org]
	return r != nil && r.watchers > 0
}

// HandOffWait bounds how long a worker waits for events the store reports
// committed but the commit path has not handed to the feed yet: a moment
// normally, longer on a loaded machine, far less than a store query costs
// a sink that keeps up.
const HandOffWait = 100 * time.Millisecond

// waitFor waits until the feed holds org's event at seq, or d passes, or
// the feed stops keeping org's events; it reports whether the feed holds
// it. It is for the gap between a commit being visible in the store and
// its hand-off (soon from after or receivedAt).
func (f *Feed) waitFor(org, seq int64, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		r := f.orgs[org]
		if r == nil {
			f.mu.Unlock()
			return false
		}
		if r.n > 0 && seq >= r.first && seq < r.first+int64(r.n) {
			f.mu.Unlock()
			return true
		}
		if r.grew == nil {
			r.grew = make(chan struct{})
		}
		grew := r.grew
		f.mu.Unlock()
		select {
		case <-grew:
		case <-deadline.C:
			f.mu.Lock()
			if r := f.orgs[org]; r != nil {
				r.missed = true
			}
			f.mu.Unlock()
			return false
		}
	}
}

// Held reports how many events, and about how many bytes, the feed holds
// for org: never more than its limits, however long a sink is down.
func (f *Feed) Held(org int64) (events, bytes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.orgs[org]; r != nil {
		return r.n, r.bytes
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
		r = &recent{expected: -1}
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

// expect tells the feed that org's head was head after a watch of org
// began: every event from head on is committed after the watch, so the
// feed will be handed it (by this node's commit path).
func (f *Feed) expect(org, head int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.orgs[org]; r != nil && r.expected < 0 {
		r.expected = head
	}
}

// after returns org's events with seqs after seq and below head, up to max,
// if the feed holds the one right after seq; ok is false when it does not
// (the sink fell behind, or the events were committed elsewhere) and the
// caller reads the store. soon is true when the next event is on its way
// (recent.handOff): committed, not handed over yet, so waitFor it rather
// than query the store. The events are shared: read only.
func (f *Feed) after(org, seq, head int64, max int) (evs []*fresh, ok, soon bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.orgs[org]
	if r == nil || seq+1 < r.first || seq+1 >= r.first+int64(r.n) {
		return nil, false, r != nil && r.handOff(seq+1)
	}
	from := seq + 1 - r.first
	to := min(int64(r.n), head-r.first, from+int64(max))
	if to <= from {
		return nil, false, false
	}
	evs = make([]*fresh, 0, to-from)
	for i := from; i < to; i++ {
		evs = append(evs, r.at(int(i)))
	}
	return evs, true, false
}

// receivedAt returns when the event at seq was committed, if the feed holds
// it; soon as for after.
func (f *Feed) receivedAt(org, seq int64) (at time.Time, ok, soon bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.orgs[org]
	if r == nil || seq < r.first || seq >= r.first+int64(r.n) {
		return time.Time{}, false, r != nil && r.handOff(seq)
	}
	return r.at(int(seq - r.first)).ev.ReceivedAt, true, false
}
