package sink_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/sink"
)

// countingStore counts the event queries the engine makes.
type countingStore struct {
	veritrail.Store
	queries atomic.Int64
}

func (s *countingStore) Query(ctx context.Context, org int64, q *veritrail.Query) (*veritrail.Page, error) {
	s.queries.Add(1)
	return s.Store.Query(ctx, org, q)
}

// storeRecords formats every stored event of the fixture's organization as
// the store path does, and returns them by seq with each event's type.
func storeRecords(t *testing.T, f *fixture, format string, content bool) (out map[int64][]byte, types map[int64]string) {
	t.Helper()
	out, types = map[int64][]byte{}, map[int64]string{}
	q := &veritrail.Query{Order: veritrail.OrderSeq, Limit: veritrail.MaxLimit, WithContent: content}
	for {
		page, err := f.store.Query(context.Background(), f.org.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		for i := range page.Events {
			r, err := sink.FormatRecord(format, f.org.Name, &page.Events[i], content)
			if err != nil {
				t.Fatal(err)
			}
			out[r.Seq], types[r.Seq] = r.Body, r.Event.Type
		}
		if len(page.Events) < q.Limit {
			return out, types
		}
		q.After = page.Next
	}
}

// TestFeedHandsOverFreshEvents: sinks that keep up forward fresh events
// from the commit path without one query of the store, and what they send
// is byte for byte what the store path sends (native envelopes, OCSF; with
// content and without), filters applied the same.
func TestFeedHandsOverFreshEvents(t *testing.T) {
	for _, c := range []struct {
		format  string
		content bool
	}{{sink.FormatNative, false}, {sink.FormatNative, true}, {sink.FormatOCSF, true}} {
		format := c.format
		t.Run(fmt.Sprintf("%s content=%v", format, c.content), func(t *testing.T) {
			feed := sink.NewFeed(0)
			feed.ContentAge = time.Hour // -race on a loaded machine may fall seconds behind
			f := newFixtureWithFeed(t, feed)
			// The commit path keeps the envelopes of the organization
			// whose sinks read the feed, and only of it: the records
			// below are made from those bytes.
			other, err := f.store.CreateOrg(context.Background(), "other")
			if err != nil {
				t.Fatal(err)
			}
			var kept, otherSeen, wrong atomic.Int64
			f.store.Commits().Subscribe(func(org int64, evs []*veritrail.Event) {
				for _, e := range evs {
					env := e.Envelope()
					switch {
					case org != f.org.ID:
						otherSeen.Add(1)
						if env != nil {
							wrong.Add(1)
						}
					case env == nil: // before the worker watched
					case !bytes.Equal(env, veritrail.AppendEnvelope(nil, e)):
						wrong.Add(1)
					default:
						kept.Add(1)
					}
				}
			})
			counted := &countingStore{Store: f.store}
			f.opts.Store = counted
			f.startEngine()
			k := f.createSink(`{"type":"webhook","url":"http://x.example","secret":"k","format":"` + format +
				`","content":` + strconv.FormatBool(c.content) + `,"filters":{"types":["auth.login"],"categories":["ai"]},"batch":{"max_events":64,"max_wait":"5ms"}}`)
			// One event first, so that the worker is running (and
			// watching the feed) before the load.
			f.appendEvents(1, "auth.login")
			waitFor(t, "the first event", func() bool { return f.sink(k.ID).Delivered == 0 })
			q0 := counted.queries.Load()
			var wg sync.WaitGroup
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					f.appendEvents(500, "agent.tool_call", "auth.login", "auth.logout", "ai.interaction", "board.opened")
				}()
			}
			wg.Wait()
			if _, err := f.store.Append(context.Background(), other.ID, []*veritrail.Event{{ID: "o1", Type: "auth.login", Time: time.Now()}}); err != nil {
				t.Fatal(err)
			}
			if kept.Load() < 1500 || otherSeen.Load() != 1 || wrong.Load() != 0 {
				t.Fatalf("envelopes kept for %d events, wrong or kept for the other organization for %d (of its %d): want the 1,500 of the load kept, the other organization's not", kept.Load(), wrong.Load(), otherSeen.Load())
			}
			h := f.head()
			waitFor(t, "the cursor at the head", func() bool { return f.sink(k.ID).Delivered == h-1 })
			if n := counted.queries.Load() - q0; n != 0 {
				t.Errorf("%d queries of the store while the sink kept up; the feed should serve them all", n)
			}
			want, types := storeRecords(t, f, format, c.content)
			f.rec.mu.Lock()
			defer f.rec.mu.Unlock()
			matching := 0
			for _, typ := range types {
				if typ == "auth.login" || typ == "ai.interaction" {
					matching++
				}
			}
			if len(f.rec.got) != matching {
				t.Fatalf("delivered %d records, want the %d matching events", len(f.rec.got), matching)
			}
			last := int64(-1)
			for _, r := range f.rec.got {
				if r.Seq <= last {
					t.Fatal("out of order")
				}
				last = r.Seq
				if !bytes.Equal(r.Body, want[r.Seq]) {
					t.Fatalf("seq %d from the feed:\n%s\nfrom the store:\n%s", r.Seq, r.Body, want[r.Seq])
				}
			}
		})
	}
}

// TestFeedFallsBackToStore: a sink whose next event left the feed (it fell
// behind during an outage) reads the store, and loses nothing.
func TestFeedFallsBackToStore(t *testing.T) {
	f := newFixtureWithFeed(t, sink.NewFeed(10))
	counted := &countingStore{Store: f.store}
	f.opts.Store = counted
	f.startEngine()
	k := f.createSink(`{"type":"webhook","url":"http://x.example","secret":"k","batch":{"max_events":50,"max_wait":"5ms"}}`)
	f.appendEvents(1)
	waitFor(t, "the first event", func() bool { return f.sink(k.ID).Delivered == 0 })
	block := make(chan struct{})
	f.rec.set(nil, block)
	f.appendEvents(300)
	q0 := counted.queries.Load()
	close(block)
	f.rec.set(nil, nil)
	h := f.head()
	waitFor(t, "the cursor at the head", func() bool { return f.sink(k.ID).Delivered == h-1 })
	if counted.queries.Load() == q0 {
		t.Error("the sink fell 300 events behind a feed of 10, yet never read the store")
	}
	got, _ := f.rec.seqs()
	wantInOrder(t, got, seqRange(0, h))
}
