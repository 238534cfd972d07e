package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// event builds a valid event for tests.
func event(id, typ string, at time.Time) *veritrail.Event {
	return &veritrail.Event{ID: id, Type: typ, Time: at.UTC(), Actor: veritrail.Actor{Type: "user", ID: "u1"}}
}

func mustAppend(t *testing.T, s veritrail.Store, org int64, evs ...*veritrail.Event) []veritrail.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), org, evs)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res
}

func testAppendAndGet(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	org := newOrg(t, s, "acme")
	st := int64(201)
	d := int64(640)
	e := &veritrail.Event{
		ID: "evt-1", Time: time.Date(2026, 11, 2, 8, 15, 30, 250_000_000, time.UTC), Type: "agent.tool_call",
		Actor:   veritrail.Actor{Type: "user", ID: "usr_5521", Email: "Priya@Example.com", Name: "Priya N."},
		AgentID: "agt_1", TaskID: "task_1", SessionID: "sess_1", Connector: "github", Tool: "create_issue",
		Target:  &veritrail.Target{Type: "repo", ID: "acme/payments", Name: "payments"},
		Context: &veritrail.Context{TeamID: "team_1", IP: "198.51.100.23", UserAgent: "claude", RequestID: "req_1"},
		Outcome: "success", Status: &st, DurationMS: &d,
		Decision: &veritrail.Decision{Action: "allowed", Policy: "eng-default", Reason: "ok"},
		Content:  []byte(`{"arguments":{"repo":"acme/payments"},"response":{"isError":false}}`),
	}
	res := mustAppend(t, s, org.ID, e, event("evt-2", "auth.login", e.Time))
	if res[0].Seq != 0 || res[1].Seq != 1 || res[0].Duplicate {
		t.Fatalf("results %+v", res)
	}
	if e.Seq != 0 || e.ReceivedAt.IsZero() || len(e.ContentDigest) != 64 {
		t.Fatalf("append did not set seq/received_at/digest: %+v", e)
	}
	got, err := s.EventByID(ctx, org.ID, "evt-1", true)
	if err != nil {
		t.Fatal(err)
	}
	back, err := veritrail.CheckEnvelope(got.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	want := *e
	want.Content, want.ContentSalt = nil, nil
	if string(veritrail.AppendEnvelope(nil, back)) != string(veritrail.AppendEnvelope(nil, &want)) {
		t.Fatalf("envelope round trip:\n got %s\nwant %s", got.Envelope, veritrail.AppendEnvelope(nil, &want))
	}
	if string(got.Content) != string(e.Content) || veritrail.ContentDigest(got.Salt, got.Content) != back.ContentDigest {
		t.Fatalf("content or digest mismatch: %s salt %x", got.Content, got.Salt)
	}
	noContent, err := s.EventByID(ctx, org.ID, "evt-1", false)
	if err != nil || noContent.Content != nil || noContent.Salt != nil {
		t.Fatalf("content returned without being asked: %+v %v", noContent, err)
	}
	if _, err := s.EventByID(ctx, org.ID, "nope", true); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("missing event: %v", err)
	}
	if _, err := s.Append(ctx, org.ID+1000, []*veritrail.Event{event("x", "a.b", time.Now())}); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("append to a missing org: %v, want not_found", err)
	}
}

func testGapFreeConcurrent(t *testing.T, open Opener) {
	s := openStore(t, open)
	org := newOrg(t, s, "acme")
	const writers, perWriter, batch = 8, 40, 5
	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i += batch {
				var evs []*veritrail.Event
				for j := range batch {
					evs = append(evs, event(fmt.Sprintf("w%d-%d", w, i+j), "auth.login", time.Now()))
				}
				res, err := s.Append(context.Background(), org.ID, evs)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for j, r := range res {
					if prev, dup := seen[r.Seq]; dup {
						t.Errorf("seq %d given to %s and %s", r.Seq, prev, evs[j].ID)
					}
					seen[r.Seq] = evs[j].ID
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for seq := range int64(writers * perWriter) {
		if _, ok := seen[seq]; !ok {
			t.Fatalf("seq %d never assigned: seqs are not gap-free", seq)
		}
	}
	all := pageAll(t, s, org.ID, &veritrail.Query{Order: veritrail.OrderSeq, Limit: 100})
	if len(all) != writers*perWriter {
		t.Fatalf("read back %d events, want %d", len(all), writers*perWriter)
	}
}

func testIdempotency(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	org := newOrg(t, s, "acme")
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	mk := func(id, detail string) *veritrail.Event {
		e := event(id, "auth.login", at)
		e.Content = []byte(`{"detail":"` + detail + `"}`)
		return e
	}
	first := mustAppend(t, s, org.ID, mk("a", "x"), mk("b", "y"))
	// Same ids, same events: nothing new, same seqs.
	again := mustAppend(t, s, org.ID, mk("a", "x"), mk("b", "y"), mk("c", "z"))
	if !again[0].Duplicate || again[0].Seq != first[0].Seq || !again[1].Duplicate || again[1].Seq != first[1].Seq {
		t.Fatalf("resend not recognized: %+v vs %+v", again, first)
	}
	if again[2].Duplicate || again[2].Seq != 2 {
		t.Fatalf("new event after duplicates: %+v", again[2])
	}
	// Same id, different content: conflict, and nothing of the request kept.
	_, err := s.Append(ctx, org.ID, []*veritrail.Event{mk("d", "new"), mk("a", "changed")})
	if veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Fatalf("changed event under a stored id: %v, want conflict", err)
	}
	if _, err := s.EventByID(ctx, org.ID, "d", false); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("event d of a refused request was stored: %v", err)
	}
	// Same id, different envelope.
	other := mk("b", "y")
	other.Type = "auth.logout"
	if _, err := s.Append(ctx, org.ID, []*veritrail.Event{other}); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Fatalf("changed type under a stored id: %v", err)
	}
	// Duplicates inside one request.
	res := mustAppend(t, s, org.ID, mk("e", "1"), mk("e", "1"))
	if res[0].Duplicate || !res[1].Duplicate || res[0].Seq != res[1].Seq {
		t.Fatalf("in-request duplicate: %+v", res)
	}
	if _, err := s.Append(ctx, org.ID, []*veritrail.Event{mk("f", "1"), mk("f", "2")}); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Fatalf("in-request conflict: %v", err)
	}
	// The log is gap-free after all of that: a, b, c, e.
	all := pageAll(t, s, org.ID, &veritrail.Query{Order: veritrail.OrderSeq})
	if got := strings.Join(all, ","); got != "a,b,c,e" {
		t.Fatalf("log holds %s, want a,b,c,e", got)
	}
	next := mustAppend(t, s, org.ID, mk("g", "1"))
	if next[0].Seq != 4 {
		t.Fatalf("seq after refused requests = %d, want 4", next[0].Seq)
	}
	// Concurrent resends of one new event store it once.
	var wg sync.WaitGroup
	seqs := make([]int64, 8)
	for i := range seqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Append(ctx, org.ID, []*veritrail.Event{mk("h", "same")})
			if err != nil {
				t.Error(err)
				return
			}
			seqs[i] = r[0].Seq
		}()
	}
	wg.Wait()
	for _, q := range seqs {
		if q != seqs[0] {
			t.Fatalf("concurrent resends got seqs %v", seqs)
		}
	}
	testRetryWithoutTime(t, s, org.ID, mk)
}

// testRetryWithoutTime: a client that sends no time and resends after a
// lost answer sends the same event, though the server stamps every
// submission with its own clock (Event.ServerTime); a time sent once and
// not the other time makes two different events.
func testRetryWithoutTime(t *testing.T, s veritrail.Store, org int64, mk func(id, detail string) *veritrail.Event) {
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	untimed := func(id string, stamp time.Duration) *veritrail.Event {
		e := mk(id, "t")
		e.Time, e.ServerTime = at.Add(stamp), true
		return e
	}
	first := mustAppend(t, s, org, untimed("u1", 0))
	// Resent in a later batch, stamped a minute later.
	again := mustAppend(t, s, org, untimed("u1", time.Minute))
	if !again[0].Duplicate || again[0].Seq != first[0].Seq {
		t.Fatalf("resend without time = %+v, want duplicate of seq %d", again[0], first[0].Seq)
	}
	got, err := s.EventByID(ctx, org, "u1", false)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := veritrail.ParseEnvelope(got.Envelope); err != nil || !e.Time.Equal(at) {
		t.Fatalf("stored time after the resend: %v %v, want the first stamp %v", e, err, at)
	}
	// Resent within one request, stamped apart.
	res := mustAppend(t, s, org, untimed("u2", 0), untimed("u2", time.Second))
	if res[0].Duplicate || !res[1].Duplicate || res[1].Seq != res[0].Seq {
		t.Fatalf("in-request resend without time: %+v", res)
	}
	// Resent with a different content: still a conflict.
	changed := untimed("u1", time.Hour)
	changed.Content = []byte(`{"detail":"other"}`)
	if _, err := s.Append(ctx, org, []*veritrail.Event{changed}); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Fatalf("changed event without time under a stored id: %v, want conflict", err)
	}
	// A time sent now that was not sent before, even the very stamp, and
	// the reverse: different events.
	timed := mk("u1", "t")
	timed.Time = at
	if _, err := s.Append(ctx, org, []*veritrail.Event{timed}); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Fatalf("time added on a resend: %v, want conflict", err)
	}
	sentTime := mk("u3", "t")
	sentTime.Time = at
	mustAppend(t, s, org, sentTime)
	if _, err := s.Append(ctx, org, []*veritrail.Event{untimed("u3", 0)}); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Fatalf("time dropped on a resend: %v, want conflict", err)
	}
	// Concurrent resends stamped apart store the event once.
	var wg sync.WaitGroup
	seqs := make([]int64, 8)
	for i := range seqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Append(ctx, org, []*veritrail.Event{untimed("u4", time.Duration(i)*time.Millisecond)})
			if err != nil {
				t.Error(err)
				return
			}
			seqs[i] = r[0].Seq
		}()
	}
	wg.Wait()
	for _, q := range seqs {
		if q != seqs[0] {
			t.Fatalf("concurrent resends without time got seqs %v", seqs)
		}
	}
}

func testOrgIsolation(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	a, b := newOrg(t, s, "acme"), newOrg(t, s, "globex")
	mustAppend(t, s, a.ID, event("shared-id", "auth.login", time.Now()))
	res := mustAppend(t, s, b.ID, event("shared-id", "auth.logout", time.Now()))
	if res[0].Duplicate || res[0].Seq != 0 {
		t.Fatalf("ids are per organization: %+v", res)
	}
	if _, err := s.EventByID(ctx, b.ID, "shared-id", false); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, a.ID, event("only-a", "auth.login", time.Now()))
	if _, err := s.EventByID(ctx, b.ID, "only-a", false); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("org globex reads acme's event: %v", err)
	}
	if got := pageAll(t, s, b.ID, &veritrail.Query{}); strings.Join(got, ",") != "shared-id" {
		t.Fatalf("org globex lists %v", got)
	}
	if got := pageAll(t, s, a.ID, &veritrail.Query{Order: veritrail.OrderSeq}); strings.Join(got, ",") != "shared-id,only-a" {
		t.Fatalf("org acme lists %v", got)
	}
}

// allEvents reads every event of org in seq order.
func allEvents(t *testing.T, s veritrail.Store, org int64, content bool) []veritrail.StoredEvent {
	t.Helper()
	q := &veritrail.Query{Order: veritrail.OrderSeq, Limit: veritrail.MaxLimit, WithContent: content}
	var out []veritrail.StoredEvent
	for {
		p, err := s.Query(context.Background(), org, q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Events...)
		if len(p.Events) == 0 {
			return out
		}
		q.After = p.Next
	}
}

// testEnqueue: an enqueued event is appended (at once, or by the process
// that appends, soon).
func testEnqueue(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	org := newOrg(t, s, "enq")
	e := event("enq-1", "audit.token_created", time.Now())
	if err := s.Enqueue(ctx, org.ID, e); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := s.EventByID(ctx, org.ID, "enq-1", false); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the enqueued event was not appended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
