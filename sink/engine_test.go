package sink_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/seal"
	"github.com/veritrail/veritrail/sink"
	"github.com/veritrail/veritrail/sqlite"
)

// recorder is a destination that keeps what it received, and fails while
// told to.
type recorder struct {
	mu       sync.Mutex
	got      []sink.Record
	batches  int
	fail     error         // returned while set
	block    chan struct{} // Send waits on it (or ctx) when set
	contents int
	sends    int
}

func (r *recorder) factory(*sink.Settings) (sink.Destination, error) { return r, nil }

func (r *recorder) Send(ctx context.Context, b *sink.Batch) error {
	r.mu.Lock()
	r.sends++
	fail, block := r.fail, r.block
	r.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		return fail
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, b.Records...)
	r.batches++
	for _, rec := range b.Records {
		if len(rec.Event.Content) > 0 {
			r.contents++
		}
	}
	return nil
}

func (r *recorder) Close() error { return nil }

func (r *recorder) set(fail error, block chan struct{}) {
	r.mu.Lock()
	r.fail, r.block = fail, block
	r.mu.Unlock()
}

// seqs returns the delivered seqs, first deliveries only, and how many
// were duplicates.
func (r *recorder) seqs() (first []int64, dups int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[int64]bool{}
	for _, rec := range r.got {
		if seen[rec.Seq] {
			dups++
			continue
		}
		seen[rec.Seq] = true
		first = append(first, rec.Seq)
	}
	return first, dups
}

// lagObserver keeps the latest lag and the failures.
type lagObserver struct {
	mu        sync.Mutex
	events    int64
	seconds   float64
	maxEvents int64
	failed    int
	delivered int
}

func (o *lagObserver) SinkLag(org, s string, events int64, seconds float64) {
	o.mu.Lock()
	o.events, o.seconds = events, seconds
	o.maxEvents = max(o.maxEvents, events)
	o.mu.Unlock()
}
func (o *lagObserver) SinkDelivered(org, s string, n, bytes int, d time.Duration) {
	o.mu.Lock()
	o.delivered += n
	o.mu.Unlock()
}
func (o *lagObserver) SinkFailed(org, s string, permanent bool) {
	o.mu.Lock()
	o.failed++
	o.mu.Unlock()
}
func (o *lagObserver) SinkGone(string, string) {}

type fixture struct {
	t     *testing.T
	dir   string
	store *sqlite.Store
	org   *veritrail.Org
	rec   *recorder
	obs   *lagObserver
	key   *seal.Key
	eng   *sink.Engine
	stop  func()
	opts  sink.Options
	feed  *sink.Feed // handed every commit's events when set before open
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWithFeed(t, nil)
}

// newFixtureWithFeed is newFixture with forwarding's hand-off from the
// commit path (nil: none).
func newFixtureWithFeed(t *testing.T, feed *sink.Feed) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), rec: &recorder{}, obs: &lagObserver{}, feed: feed}
	f.key, _ = seal.New(make([]byte, seal.KeySize))
	f.open()
	var err error
	if f.org, err = f.store.CreateOrg(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.stopEngine()
		f.store.Close()
	})
	return f
}

func (f *fixture) open() {
	var err error
	f.store, err = sqlite.Open(context.Background(), f.dir, sqlite.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	if f.feed != nil {
		f.store.Commits().Subscribe(f.feed.Add)
		f.store.Commits().WantEnvelopes(f.feed.Wants)
	}
	f.opts = sink.Options{Store: f.store, Key: f.key, Feed: f.feed, Types: map[string]sink.Factory{sink.Webhook: f.rec.factory},
		Observer: f.obs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PollInterval: 5 * time.Millisecond, RefreshInterval: 50 * time.Millisecond,
		MinBackoff: 2 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, PauseAfter: 3}
}

func (f *fixture) startEngine() {
	f.t.Helper()
	var err error
	if f.eng, err = sink.New(f.opts); err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.eng.Run(ctx)
	}()
	f.stop = func() {
		cancel()
		<-done
	}
}

func (f *fixture) stopEngine() {
	if f.stop != nil {
		f.stop()
		f.stop = nil
	}
}

func (f *fixture) createSink(body string) *veritrail.Sink {
	f.t.Helper()
	eng := f.eng
	if eng == nil {
		eng, _ = sink.New(f.opts)
	}
	k, err := eng.Create(context.Background(), f.org.ID, []byte(body), true)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.store.CreateSink(context.Background(), k); err != nil {
		f.t.Fatal(err)
	}
	if f.eng != nil {
		f.eng.Wake()
	}
	return k
}

// appendEvents appends n events of the given types (cycled), in requests
// of up to 100.
func (f *fixture) appendEvents(n int, types ...string) {
	f.t.Helper()
	if len(types) == 0 {
		types = []string{"agent.tool_call"}
	}
	now := time.Now().UTC()
	for i := 0; i < n; i += 100 {
		var batch []*veritrail.Event
		for j := i; j < min(n, i+100); j++ {
			batch = append(batch, &veritrail.Event{ID: veritrail.NewEventID(now), Time: now, Type: types[j%len(types)],
				Actor: veritrail.Actor{Type: "agent", ID: fmt.Sprintf("agt_%d", j%7)}, Outcome: "success",
				Content: []byte(fmt.Sprintf(`{"n":%d}`, j))})
		}
		if _, err := f.store.Append(context.Background(), f.org.ID, batch); err != nil {
			f.t.Fatal(err)
		}
	}
}

// waitFor polls cond until it holds (a generous bound; nothing is timed).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fixture) sink(id string) *veritrail.Sink {
	k, err := f.store.SinkByID(context.Background(), f.org.ID, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return k
}

func (f *fixture) head() int64 {
	h, _, err := f.store.LogHead(context.Background(), f.org.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return h
}

func wantInOrder(t *testing.T, got []int64, want []int64) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %d events %v…, want %d in seq order %v…", len(got), head(got), len(want), head(want))
	}
}

func head(s []int64) []int64 { return s[:min(len(s), 10)] }

func seqRange(from, to int64) []int64 {
	var out []int64
	for s := from; s < to; s++ {
		out = append(out, s)
	}
	return out
}

func TestDeliversEverythingInOrder(t *testing.T) {
	f := newFixture(t)
	f.appendEvents(700) // before the sink exists: start "beginning" takes them
	f.startEngine()
	k := f.createSink(`{"type":"webhook","url":"http://x.example","secret":"k","batch":{"max_events":128,"max_wait":"10ms"}}`)
	// More arrive while it delivers, from several writers.
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.appendEvents(400)
		}()
	}
	wg.Wait()
	h := f.head()
	waitFor(t, "the cursor at the head", func() bool { return f.sink(k.ID).Delivered == h-1 })
	got, dups := f.rec.seqs()
	wantInOrder(t, got, seqRange(0, h))
	if dups != 0 {
		t.Fatalf("%d duplicates without any failure", dups)
	}
	f.rec.mu.Lock()
	if f.rec.contents != 0 {
		t.Fatalf("%d records carried content; the sink is metadata only by default", f.rec.contents)
	}
	for _, b := range f.rec.got {
		if b.ID == "" || b.Event == nil {
			t.Fatal("a record without id")
		}
	}
	batches := f.rec.batches
	f.rec.mu.Unlock()
	if batches < int(h)/128 {
		t.Fatalf("%d batches for %d events: batches exceed max_events", batches, h)
	}
	waitFor(t, "lag 0", func() bool { f.obs.mu.Lock(); defer f.obs.mu.Unlock(); return f.obs.events == 0 })
	v, err := f.eng.View(context.Background(), f.sink(k.ID))
	if err != nil || v.LagEvents != 0 || v.LagSeconds != 0 || v.Delivered == nil || *v.Delivered != h-1 || v.State != "active" {
		t.Fatalf("view: %+v %v", v, err)
	}
}

func TestOutageLosesNothing(t *testing.T) {
	f := newFixture(t)
	f.startEngine()
	k := f.createSink(`{"type":"webhook","url":"http://x.example","secret":"k","content":true,"batch":{"max_events":50,"max_wait":"5ms"}}`)
	f.appendEvents(120)
	waitFor(t, "first events delivered", func() bool { return f.sink(k.ID).Delivered == 119 })

	// The destination goes down (a 503 is retried, never pauses).
	f.rec.set(fmt.Errorf("HTTP 503 from the destination: maintenance"), nil)
	f.appendEvents(300)
	waitFor(t, "failures recorded", func() bool { return f.sink(k.ID).Failures >= 5 })
	down := f.sink(k.ID)
	if down.Paused || down.Delivered != 119 || !strings.Contains(down.LastError, "503") {
		t.Fatalf("during the outage: %+v", down)
	}
	v, _ := f.eng.View(context.Background(), down)
	if v.State != "retrying" || v.LagEvents != 300 || v.LagSeconds <= 0 {
		t.Fatalf("lag during the outage: state %s, %d events, %.3fs", v.State, v.LagEvents, v.LagSeconds)
	}
	waitFor(t, "lag reported", func() bool { f.obs.mu.Lock(); defer f.obs.mu.Unlock(); return f.obs.events == 300 })
	f.appendEvents(80) // still arriving

	// Back up.
	f.rec.set(nil, nil)
	h := f.head()
	waitFor(t, "caught up", func() bool { return f.sink(k.ID).Delivered == h-1 })
	got, _ := f.rec.seqs()
	wantInOrder(t, got, seqRange(0, h))
	after := f.sink(k.ID)
	if after.Failures != 0 || after.Paused || after.LastError == "" {
		t.Fatalf("after recovery: %+v", after)
	}
	waitFor(t, "lag back to 0", func() bool { f.obs.mu.Lock(); defer f.obs.mu.Unlock(); return f.obs.events == 0 && f.obs.seconds == 0 })
	f.rec.mu.Lock()
	contents := f.rec.contents
	f.rec.mu.Unlock()
	if contents == 0 {
		t.Fatal("content:true delivered no content")
	}
}

func TestPermanentFailurePausesWithReason(t *testing.T) {
	f := newFixture(t)
	f.startEngine()
	f.rec.set(sink.Permanentf("HTTP 401 from the destination: bad token"), nil)
	k := f.createSink(`{"type":"webhook","name":"siem","url":"http://x.example","secret":"k","batch":{"max_wait":"5ms"}}`)
	f.appendEvents(10)
	waitFor(t, "paused", func() bool { return f.sink(k.ID).Paused })
	p := f.sink(k.ID)
	if !strings.Contains(p.PausedReason, "401") || p.Delivered != -1 {
		t.Fatalf("paused: %+v", p)
	}
	v, _ := f.eng.View(context.Background(), p)
	if v.State != "paused" || v.PausedReason == "" || v.LagEvents < 10 {
		t.Fatalf("view of a paused sink: %+v", v)
	}
	// The pause is itself recorded in the organization's log.
	waitFor(t, "audit.sink_paused recorded", func() bool {
		page, _ := f.store.Query(context.Background(), f.org.ID, &veritrail.Query{Order: veritrail.OrderSeq, Limit: 1000,
			Filters: []veritrail.Filter{{Field: veritrail.FieldType, Ranges: []veritrail.KeyRange{veritrail.Exact("audit.sink_paused")}}}})
		return page != nil && len(page.Events) == 1 && strings.Contains(string(page.Events[0].Envelope), k.ID)
	})
	// Paused: no more attempts.
	f.rec.mu.Lock()
	sends := f.rec.sends
	f.rec.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	f.rec.mu.Lock()
	if f.rec.sends != sends {
		t.Fatalf("a paused sink was still sent to (%d → %d)", sends, f.rec.sends)
	}
	f.rec.mu.Unlock()

	// Fixed and resumed by an administrator: everything arrives.
	f.rec.set(nil, nil)
	if _, err := f.eng.Update(context.Background(), p, []byte(`{"paused":false}`), false); err != nil {
		t.Fatal(err)
	}
	if err := f.store.UpdateSink(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	f.eng.Wake()
	h := f.head()
	waitFor(t, "delivered after resume", func() bool { return f.sink(k.ID).Delivered == h-1 })
	got, _ := f.rec.seqs()
	wantInOrder(t, got, seqRange(0, h))
}

// A secret file is read when the destination connects (after a change of
// settings or a failure), not at every batch: a delivering sink does not
// read it again, nor open or decode its settings again.
func TestSecretFileReadAtConnection(t *testing.T) {
	f := newFixture(t)
	var builds atomic.Int32
	f.opts.Types = map[string]sink.Factory{sink.Webhook: func(s *sink.Settings) (sink.Destination, error) {
		builds.Add(1)
		if string(s.Secret) != "from-file" {
			return nil, fmt.Errorf("secret %q", s.Secret)
		}
		return f.rec, nil
	}}
	f.startEngine()
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k := f.createSink(`{"type":"webhook","url":"http://x.example","secret_file":"` + file + `","batch":{"max_events":10,"max_wait":"1ms"}}`)
	f.appendEvents(10)
	waitFor(t, "first batch", func() bool { return f.sink(k.ID).Delivered == 9 })
	os.Remove(file) // unreadable from now on
	f.appendEvents(95)
	waitFor(t, "the next batches", func() bool { return f.sink(k.ID).Delivered == 104 })
	if n := builds.Load(); n != 1 || f.sink(k.ID).Failures != 0 {
		t.Fatalf("%d destinations built, %d failures: the settings were read again", n, f.sink(k.ID).Failures)
	}
}

// A destination's long error is cut to size for last_error and the pause
// reason at a character's start: PostgreSQL refuses invalid UTF-8, and the
// failure (so the pause) would then never be recorded.
func TestLongErrorCutAsValidUTF8(t *testing.T) {
	f := newFixture(t)
	f.startEngine()
	f.rec.set(sink.Permanentf("HTTP 400 from the destination: xy%s", strings.Repeat("é", 400)), nil)
	k := f.createSink(`{"type":"webhook","url":"http://x.example","secret":"k","batch":{"max_wait":"5ms"}}`)
	f.appendEvents(3)
	waitFor(t, "paused", func() bool { return f.sink(k.ID).Paused })
	p := f.sink(k.ID)
	if !utf8.ValidString(p.LastError) || !utf8.ValidString(p.PausedReason) || len(p.LastError) > 510 || !strings.HasSuffix(p.LastError, "é…") {
		t.Fatalf("last_error %q (%d bytes), paused_reason valid %v", p.LastError, len(p.LastError), utf8.ValidString(p.PausedReason))
	}
}

func TestRestartResumesFromCursor(t *testing.T) {
	f := newFixture(t)
	f.startEngine()
	k := f.createSink(`{"type":"webhook","url":"http://x.example","secret":"k","batch":{"max_events":100,"max_wait":"5ms"}}`)
	f.appendEvents(250)
	waitFor(t, "delivered", func() bool { return f.sink(k.ID).Delivered == 249 })

	// A batch is in flight when the server stops: it hangs at the
	// destination, unacknowledged.
	block := make(chan struct{})
	f.rec.set(nil, block)
	f.appendEvents(300)
	waitFor(t, "a batch in flight", func() bool { f.rec.mu.Lock(); defer f.rec.mu.Unlock(); return f.rec.sends > 3 })
	f.stopEngine()
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}

	// A new process on the same data: it resumes at the cursor.
	f.rec.set(nil, nil)
	f.open()
	if got := f.sink(k.ID).Delivered; got != 249 {
		t.Fatalf("cursor after restart: %d, want 249 (the batch in flight was not acknowledged)", got)
	}
	f.startEngine()
	h := f.head()
	waitFor(t, "caught up after restart", func() bool { return f.sink(k.ID).Delivered == h-1 })
	got, dups := f.rec.seqs()
	wantInOrder(t, got, seqRange(0, h))
	if dups != 0 {
		t.Fatalf("%d duplicates: the blocked batch was never acknowledged, so nothing repeats", dups)
	}
}

func TestFiltersAndCursorPassOverOthers(t *testing.T) {
	f := newFixture(t)
	f.startEngine()
	k := f.createSink(`{"type":"webhook","url":"http://x.example","secret":"k","filters":{"types":["auth.login"],"categories":["ai"]},"batch":{"max_wait":"5ms"}}`)
	f.appendEvents(300, "agent.tool_call", "auth.login", "auth.logout", "ai.interaction", "board.opened")
	h := f.head()
	waitFor(t, "cursor at the head", func() bool { return f.sink(k.ID).Delivered == h-1 })
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	if len(f.rec.got) != 120 {
		t.Fatalf("delivered %d, want the 120 auth.login and ai.* events", len(f.rec.got))
	}
	last := int64(-1)
	for _, r := range f.rec.got {
		if r.Event.Type != "auth.login" && r.Event.Type != "ai.interaction" {
			t.Fatalf("filtered out type delivered: %s", r.Event.Type)
		}
		if r.Seq <= last {
			t.Fatal("out of order")
		}
		last = r.Seq
	}
}

func TestMayDeliverGatesDelivery(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	allowed := false
	f.opts.MayDeliver = func(ctx context.Context, org int64, id string) bool {
		mu.Lock()
		defer mu.Unlock()
		return allowed
	}
	f.startEngine()
	k := f.createSink(`{"type":"webhook","url":"http://x.example","secret":"k","batch":{"max_wait":"5ms"}}`)
	f.appendEvents(50)
	time.Sleep(100 * time.Millisecond)
	if d := f.sink(k.ID).Delivered; d != -1 {
		t.Fatalf("delivered up to %d without the lease", d)
	}
	mu.Lock()
	allowed = true
	mu.Unlock()
	waitFor(t, "delivered with the lease", func() bool { return f.sink(k.ID).Delivered == 49 })
}

func TestStartNowAndDelete(t *testing.T) {
	f := newFixture(t)
	f.appendEvents(30)
	f.startEngine()
	k := f.createSink(`{"type":"webhook","url":"http://x.example","secret":"k","start":"now","batch":{"max_wait":"5ms"}}`)
	if k.Delivered != 29 {
		t.Fatalf("start now: cursor %d, want 29", k.Delivered)
	}
	f.appendEvents(5)
	waitFor(t, "new events only", func() bool { return f.sink(k.ID).Delivered == 34 })
	got, _ := f.rec.seqs()
	wantInOrder(t, got, seqRange(30, 35))
	if err := f.store.DeleteSink(context.Background(), f.org.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	f.eng.Wake()
	n := len(got)
	f.appendEvents(5)
	time.Sleep(100 * time.Millisecond)
	if got, _ := f.rec.seqs(); len(got) != n {
		t.Fatal("a deleted sink still receives events")
	}
}

func TestSecretsSealedAndNeverShown(t *testing.T) {
	f := newFixture(t)
	f.opts.Types = map[string]sink.Factory{sink.SplunkHEC: func(s *sink.Settings) (sink.Destination, error) {
		if string(s.Secret) != "hec-SECRET-token" {
			return nil, errors.New("wrong secret")
		}
		return f.rec, nil
	}}
	eng, _ := sink.New(f.opts)
	k, err := eng.Create(context.Background(), f.org.ID, []byte(`{"type":"splunk_hec","url":"https://splunk.example:8088","secret":"hec-SECRET-token"}`), true)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(k.Config), "hec-SECRET-token") {
		t.Fatalf("the stored config shows the secret: %s", k.Config)
	}
	f.store.CreateSink(context.Background(), k)
	v, err := eng.View(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	if strings.Contains(string(b), "SECRET") || strings.Contains(string(b), "sealed") || !v.SecretSet {
		t.Fatalf("the view: %s", b)
	}
	// A sealed secret copied onto another sink does not open there.
	k2 := *k
	k2.ID = "snk_other"
	if _, err := eng.Update(context.Background(), &k2, []byte(`{"name":"copy"}`), true); err != nil {
		t.Fatal(err)
	}
	f.store.CreateSink(context.Background(), &k2)
	f.startEngine()
	f.appendEvents(3)
	waitFor(t, "the real sink delivers", func() bool { return f.sink(k.ID).Delivered >= 2 })
	waitFor(t, "the copy is refused", func() bool { return strings.Contains(f.sink("snk_other").LastError, "does not open") })
}
