package sink_test

import (
	"context"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/sink"
)

// slowCursorStore holds every cursor save until let through, as a store
// whose one writer is busy with ingest does, and checks that each save is
// of a cursor the destination acknowledged.
type slowCursorStore struct {
	veritrail.Store
	t     *testing.T
	rec   *recorder
	mu    sync.Mutex
	gate  chan struct{} // saves wait on it while set
	saves []int64
}

func (s *slowCursorStore) AdvanceSink(ctx context.Context, org int64, id string, from, to int64, at time.Time) error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Everything up to `to` must have been acknowledged by now.
	s.rec.mu.Lock()
	acked := int64(-1)
	if n := len(s.rec.got); n > 0 {
		acked = s.rec.got[n-1].Seq
	}
	s.rec.mu.Unlock()
	if to > acked {
		s.t.Errorf("cursor saved at %d, past the last acknowledged event %d", to, acked)
	}
	s.mu.Lock()
	s.saves = append(s.saves, to)
	s.mu.Unlock()
	return s.Store.AdvanceSink(ctx, org, id, from, to, at)
}

func (s *slowCursorStore) setGate(g chan struct{}) {
	s.mu.Lock()
	s.gate = g
	s.mu.Unlock()
}

// startSlowCursor starts a fixture whose cursor saves wait on a gate,
// with a sink delivering batches of 10 through dest (nil: the recorder),
// its first event delivered.
func startSlowCursor(t *testing.T, dest func(*recorder) sink.Destination) (*fixture, *slowCursorStore, *veritrail.Sink) {
	f := newFixtureWithFeed(t, sink.NewFeed(0))
	slow := &slowCursorStore{Store: f.store, t: t, rec: f.rec}
	f.opts.Store = slow
	if dest != nil {
		f.opts.Types = map[string]sink.Factory{sink.Webhook: func(*sink.Settings) (sink.Destination, error) { return dest(f.rec), nil }}
	}
	f.startEngine()
	k := f.createSink(`{"type":"webhook","url":"http://x.example","secret":"k","batch":{"max_events":10,"max_wait":"1ms"}}`)
	f.appendEvents(1)
	waitFor(t, "the first event", func() bool { return f.sink(k.ID).Delivered == 0 })
	return f, slow, k
}

// releaseAndCheck lets the saves through and checks that every event is
// saved and delivered once, in order.
func releaseAndCheck(t *testing.T, f *fixture, slow *slowCursorStore, gate chan struct{}, k *veritrail.Sink) {
	slow.setGate(nil)
	close(gate)
	deliveredOnceInOrder(t, f, k)
}

// deliveredOnceInOrder waits for k's cursor to reach the head and checks
// that every event was delivered once, in seq order.
func deliveredOnceInOrder(t *testing.T, f *fixture, k *veritrail.Sink) {
	t.Helper()
	h := f.head()
	waitFor(t, "the cursor at the head", func() bool { return f.sink(k.ID).Delivered == h-1 })
	got, dups := f.rec.seqs()
	wantInOrder(t, got, seqRange(0, h))
	if dups != 0 {
		t.Fatalf("%d events delivered twice without a crash", dups)
	}
}

// TestDeliveryGoesOnWhileTheCursorIsSaved: a slow cursor save (the
// store's writer busy with ingest) does not hold delivery up: the next
// batches go from the acknowledged cursor, at most MaxUnsavedBatches
// ahead of the saved one; the saved cursor is only ever one the
// destination acknowledged, several batches are saved in one write, and
// nothing is delivered twice or out of order.
func TestDeliveryGoesOnWhileTheCursorIsSaved(t *testing.T) {
	f, slow, k := startSlowCursor(t, nil)
	gate := make(chan struct{})
	slow.setGate(gate)
	f.appendEvents(1000)
	limit := int64(sink.MaxUnsavedBatches * 10)
	waitFor(t, "batches delivered while the save waits", func() bool {
		f.rec.mu.Lock()
		defer f.rec.mu.Unlock()
		return len(f.rec.got) >= 1+int(limit)
	})
	time.Sleep(50 * time.Millisecond) // a chance to run past the bound
	f.rec.mu.Lock()
	ahead := int64(len(f.rec.got)) - 1
	f.rec.mu.Unlock()
	if d := f.sink(k.ID).Delivered; d != 0 {
		t.Fatalf("cursor %d saved while the store's writer was held", d)
	}
	if ahead > limit {
		t.Fatalf("%d events delivered past the saved cursor, bound %d", ahead, limit)
	}
	releaseAndCheck(t, f, slow, gate, k)
	h := f.head()
	slow.mu.Lock()
	saves := len(slow.saves)
	slow.mu.Unlock()
	if batches := int(h-1) / 10; saves >= batches {
		t.Errorf("%d saves for %d batches: acknowledged batches should share a save", saves, batches)
	}
}

// TestFeedStoreHandOffKeepsOrder: a sink whose destination stalls now and
// then, with a feed that keeps few events, goes back and forth between the
// store and the feed while events are committed; every event is delivered
// once, in seq order, with none skipped at a switch.
func TestFeedStoreHandOffKeepsOrder(t *testing.T) {
	feed := sink.NewFeed(25)
	f := newFixtureWithFeed(t, feed)
	counted := &countingStore{Store: f.store}
	f.opts.Store = counted
	f.startEngine()
	k := f.createSink(`{"type":"webhook","url":"http://x.example","secret":"k","content":true,"batch":{"max_events":7,"max_wait":"1ms"}}`)
	f.appendEvents(1)
	waitFor(t, "the first event", func() bool { return f.sink(k.ID).Delivered == 0 })

	// Stall the destination while more events than the feed keeps are
	// committed (the sink falls out of it and reads the store), then let
	// it catch up while more come (back to the feed).
	for range 4 {
		block := make(chan struct{})
		f.rec.set(nil, block)
		f.appendEvents(60, "agent.tool_call", "auth.login")
		f.rec.set(nil, nil)
		close(block)
		for range 6 {
			f.appendEvents(10, "agent.tool_call", "auth.login")
			time.Sleep(time.Millisecond)
		}
	}
	deliveredOnceInOrder(t, f, k)
	if counted.queries.Load() == 0 {
		t.Error("the store was never read: the test did not exercise the hand-off")
	}
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	for _, r := range f.rec.got {
		if len(r.Event.Content) == 0 {
			t.Fatalf("seq %d delivered without its content", r.Seq)
		}
	}
}

// savingRecorder is a recorder whose batches wait for the cursor.
type savingRecorder struct{ *recorder }

func (savingRecorder) SavesBeforeNext() {}

// TestSavesBeforeNextWaitsForTheCursor: a destination that needs what a
// crash sends again to be exactly the batch in flight (s3) gets no batch
// before the previous one's cursor is saved.
func TestSavesBeforeNextWaitsForTheCursor(t *testing.T) {
	f, slow, k := startSlowCursor(t, func(r *recorder) sink.Destination { return savingRecorder{r} })
	gate := make(chan struct{})
	slow.setGate(gate)
	f.appendEvents(100)
	waitFor(t, "a batch delivered", func() bool {
		f.rec.mu.Lock()
		defer f.rec.mu.Unlock()
		return f.rec.batches >= 2
	})
	time.Sleep(50 * time.Millisecond) // a chance to send another
	f.rec.mu.Lock()
	batches := f.rec.batches
	f.rec.mu.Unlock()
	if batches != 2 {
		t.Fatalf("%d batches delivered while the first one's cursor was not saved", batches-1)
	}
	releaseAndCheck(t, f, slow, gate, k)
}
