package sink

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// feedEvents returns n events with seqs from seq on.
func feedEvents(t testing.TB, seq int64, n int) []*veritrail.Event {
	t.Helper()
	now := time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)
	var evs []*veritrail.Event
	for i := range n {
		e, err := veritrail.NewRecord(now, "auth.login", veritrail.Actor{Type: veritrail.ActorUser, ID: "u1", Email: "a@example.com"},
			nil, veritrail.OutcomeSuccess, map[string]any{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		e.Seq, e.ReceivedAt = seq+int64(i), now
		evs = append(evs, e)
	}
	return evs
}

// TestFeedRing: the feed keeps the latest events of an organization in
// a ring, within its event and byte limits, hands out any run of them in
// seq order, and starts again after a gap.
func TestFeedRing(t *testing.T) {
	cases := []struct {
		name      string
		keep      int
		keepBytes int
		commits   []int // events per commit, consecutive seqs
		gapAt     int   // the commit (if > 0) that comes after a gap of 100 seqs
		wantFirst int64 // the oldest seq held at the end
		wantN     int   // events held at the end
	}{
		{name: "under the limit", keep: 10, keepBytes: 1 << 20, commits: []int{3, 4}, wantFirst: 0, wantN: 7},
		{name: "wraps around many times", keep: 10, keepBytes: 1 << 20, commits: []int{3, 4, 5, 6, 7, 8, 9}, wantFirst: 32, wantN: 10},
		{name: "a commit larger than the feed", keep: 10, keepBytes: 1 << 20, commits: []int{4, 25}, wantFirst: 19, wantN: 10},
		{name: "bytes bound it first", keep: 100, keepBytes: 5 * 1100, commits: []int{7, 7, 7}, wantFirst: 16, wantN: 5},
		{name: "a gap starts again", keep: 10, keepBytes: 1 << 20, commits: []int{6, 6, 3}, gapAt: 2, wantFirst: 112, wantN: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFeed(tc.keep)
			f.keepBytes = tc.keepBytes
			const org = 7
			stop := f.watch(org)
			defer stop()
			seq := int64(0)
			for i, n := range tc.commits {
				if i > 0 && i == tc.gapAt {
					seq += 100
				}
				f.Add(org, feedEvents(t, seq, n))
				seq += int64(n)
				held, bytes := f.Held(org)
				if held > tc.keep || (held > 1 && bytes > tc.keepBytes) {
					t.Fatalf("after commit %d: %d events, %d bytes held", i, held, bytes)
				}
			}
			if held, _ := f.Held(org); held != tc.wantN {
				t.Fatalf("held %d events, want %d", held, tc.wantN)
			}
			// Every run from every held position, in order.
			for from := tc.wantFirst; from < seq; from++ {
				evs, ok, _ := f.after(org, from-1, seq, 1000)
				if !ok || len(evs) != int(seq-from) {
					t.Fatalf("after %d: ok=%v, %d events", from-1, ok, len(evs))
				}
				for i, e := range evs {
					if e.ev.Seq != from+int64(i) {
						t.Fatalf("after %d: event %d has seq %d", from-1, i, e.ev.Seq)
					}
				}
				if at, ok, _ := f.receivedAt(org, from); !ok || at.IsZero() {
					t.Fatalf("receivedAt %d: %v %v", from, at, ok)
				}
			}
			if _, ok, _ := f.after(org, tc.wantFirst-2, seq, 1000); ok {
				t.Fatalf("the feed served seq %d, which it let go", tc.wantFirst-1)
			}
			if evs, ok, _ := f.after(org, tc.wantFirst-1, tc.wantFirst+2, 1000); !ok || len(evs) != 2 {
				t.Fatalf("below the head: %v %d", ok, len(evs))
			}
			if evs, ok, _ := f.after(org, tc.wantFirst-1, seq, 1); !ok || len(evs) != 1 {
				t.Fatalf("up to max: %v %d", ok, len(evs))
			}
		})
	}
}

// TestFreshRecordShared: a fresh event's record is built once per format
// and content choice and shared by every sink that asks for it, and it is
// what FormatRecord makes of the stored envelope.
func TestFreshRecordShared(t *testing.T) {
	e := feedEvents(t, 41, 1)[0]
	e.ContentSalt = []byte("0123456789abcdef")
	// A time in another zone and a decision: the fresh record's event
	// must still be what the envelope reads back as.
	e.Time = e.Time.In(time.FixedZone("CET", 3600))
	e.Decision = &veritrail.Decision{Action: "deny", Policy: "p1", Reason: "r"}
	status := int64(403)
	e.Target, e.Context, e.Status = &veritrail.Target{}, &veritrail.Context{IP: "10.0.0.1"}, &status
	f := &fresh{ev: e}
	env := veritrail.AppendEnvelope(nil, e)
	for _, format := range []string{FormatNative, FormatOCSF, FormatCEF} {
		for _, content := range []bool{false, true} {
			a, err := f.record(format, "acme", content)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := f.record(format, "acme", content)
			if &a.Body[0] != &b.Body[0] || a.Event != b.Event {
				t.Errorf("%s content=%v: built twice", format, content)
			}
			want, err := FormatRecord(format, "acme", &veritrail.StoredEvent{Seq: e.Seq, Envelope: env, Content: e.Content, Salt: e.ContentSalt}, content)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Body, want.Body) || a.Seq != 41 || a.ID != e.ID {
				t.Errorf("%s content=%v:\n%s\nwant\n%s", format, content, a.Body, want.Body)
			}
			if !reflect.DeepEqual(a.Event, want.Event) {
				t.Errorf("%s content=%v: event\n%+v\nwant\n%+v", format, content, a.Event, want.Event)
			}
			if other, _ := f.record(format, "renamed", content); format != FormatNative && bytes.Equal(other.Body, a.Body) {
				t.Errorf("%s: a record made for another organization name", format)
			}
		}
	}
	// The envelope the commit path kept is the one forwarded, not a
	// second encoding.
	kept := *e
	kept.KeepEnvelope(bytes.Clone(env))
	r, err := (&fresh{ev: &kept}).record(FormatNative, "acme", false)
	if err != nil || &r.Body[0] != &kept.Envelope()[0] {
		t.Errorf("native record without content: not the kept envelope (%v)", err)
	}
}

// TestFeedHandOffGap: the store shows a commit before the commit path
// hands its events to the feed. A worker that asks in that gap — whether
// the feed holds earlier events or none yet since its watch began — is
// told the events are on their way and waits for them instead of querying
// the store; events from before the watch are not waited for, nor, after
// one wait ran out (events of another node), any until the next hand-off.
func TestFeedHandOffGap(t *testing.T) {
	for _, held := range []int{0, 5} {
		f := NewFeed(0)
		stop := f.watch(1)
		f.expect(1, 10) // the head when the worker first looked
		if held > 0 {
			f.Add(1, feedEvents(t, 10, held))
		}
		next := int64(10 + held)
		if _, ok, soon := f.after(1, 3, 100, 10); ok || soon {
			t.Fatalf("held %d: seq 4 precedes the watch: ok=%v soon=%v, want a store read", held, ok, soon)
		}
		if _, ok, soon := f.after(1, next-1, next+3, 10); ok || !soon {
			t.Fatalf("held %d: seq %d committed, not handed over: ok=%v soon=%v, want soon", held, next, ok, soon)
		}
		if _, ok, soon := f.receivedAt(1, next); ok || !soon {
			t.Fatalf("held %d: receivedAt(%d): ok=%v soon=%v, want soon", held, next, ok, soon)
		}
		go func() {
			time.Sleep(20 * time.Millisecond)
			f.Add(1, feedEvents(t, next, 3))
		}()
		if !f.waitFor(1, next, 10*time.Second) {
			t.Fatalf("held %d: waitFor(%d) gave up though the events were handed over", held, next)
		}
		if evs, ok, _ := f.after(1, next-1, next+3, 10); !ok || len(evs) != 3 {
			t.Fatalf("held %d: after the hand-off: ok=%v, %d events", held, ok, len(evs))
		}
		if f.waitFor(1, next+50, 10*time.Millisecond) {
			t.Fatalf("held %d: waitFor of an event never handed over said yes", held)
		}
		// That wait ran out (the events came from another node): no more
		// waits until this node hands over events again.
		if _, _, soon := f.after(1, next+2, next+10, 10); soon {
			t.Fatalf("held %d: after a wait ran out, the next event is still said to be on its way", held)
		}
		if _, _, soon := f.receivedAt(1, next+3); soon {
			t.Fatalf("held %d: receivedAt after a wait ran out: soon", held)
		}
		f.Add(1, feedEvents(t, next+3, 1))
		if _, _, soon := f.after(1, next+3, next+10, 10); !soon {
			t.Fatalf("held %d: after a new hand-off, the next event is not said to be on its way", held)
		}
		stop()
	}
}
