package commitq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// recorder is a Writer for testing the queue itself (batching, lanes,
// closing): it records each batch, optionally waits at a gate before
// answering, and stores nothing. The engines' tests run the queue with
// their real writers.
type recorder struct {
	gate    chan struct{} // if set, each WriteBatch waits for a value
	entered chan struct{} // if set, signalled as each WriteBatch starts
	err     error

	mu      sync.Mutex
	inside  bool // in WriteBatch
	batches [][]*Request
	log     []string // batches and jobs, in the order the lane ran them
}

func (w *recorder) WriteBatch(ctx context.Context, batch []*Request) (int, error) {
	w.mu.Lock()
	w.batches = append(w.batches, slices.Clone(batch))
	w.log = append(w.log, fmt.Sprintf("batch of %d", len(batch)))
	w.inside = true
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.inside = false
		w.mu.Unlock()
	}()
	if w.entered != nil {
		w.entered <- struct{}{}
	}
	if w.gate != nil {
		<-w.gate
	}
	n := 0
	for _, r := range batch {
		if r.Events[0].ID == "refuse" {
			r.Err = veritrail.Errorf(veritrail.EConflict, "refused alone")
			continue
		}
		r.Results = make([]veritrail.AppendResult, len(r.Events))
		n += len(r.Events)
	}
	return n, w.err
}

func (w *recorder) record(s string) {
	w.mu.Lock()
	if w.inside {
		s += " during a batch"
	}
	w.log = append(w.log, s)
	w.mu.Unlock()
}

func events(id string, n int) []*veritrail.Event {
	evs := make([]*veritrail.Event, n)
	for i := range evs {
		evs[i] = &veritrail.Event{ID: id}
	}
	return evs
}

type answer struct {
	id  string
	res []veritrail.AppendResult
	err error
}

// appendAsync queues a request and waits until it is in the lane's queue,
// so requests queued one after the other have a known order.
func appendAsync(t *testing.T, q *Queue, org int64, id string, n int, out chan<- answer) {
	t.Helper()
	l := q.lanes[q.Lane(org)]
	before := len(l.reqs)
	go func() {
		res, err := q.Append(context.Background(), org, events(id, n))
		out <- answer{id, res, err}
	}()
	waitFor(t, func() bool { return len(l.reqs) > before })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in a minute")
		}
	}
}

// startBlocked starts a queue whose lane is busy with a first request
// until gate is given a value.
func startBlocked(t *testing.T, cfg Config) (*Queue, *recorder, chan answer) {
	w := &recorder{gate: make(chan struct{}), entered: make(chan struct{}, 100)}
	q := New(cfg, w)
	out := make(chan answer, 100)
	go func() {
		res, err := q.Append(context.Background(), 1, events("first", 1))
		out <- answer{"first", res, err}
	}()
	<-w.entered
	return q, w, out
}

func TestBatchesWhatWaits(t *testing.T) {
	q, w, out := startBlocked(t, Config{MaxBatchEvents: 10})
	// Queued while the lane is busy: 4+4 fit under 10 events, the third
	// request brings the batch to 12 and closes it, the fourth waits.
	for i, n := range []int{4, 4, 4, 1} {
		appendAsync(t, q, 1, fmt.Sprintf("r%d", i), n, out)
	}
	close(w.gate)
	for range 5 {
		if a := <-out; a.err != nil {
			t.Fatalf("%s: %v", a.id, a.err)
		}
	}
	q.Close()
	var got [][]string
	for _, b := range w.batches {
		var ids []string
		for _, r := range b {
			ids = append(ids, r.Events[0].ID)
		}
		got = append(got, ids)
	}
	want := [][]string{{"first"}, {"r0", "r1", "r2"}, {"r3"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("batches %v, want %v (in queue order)", got, want)
	}
}

func TestFailedBatch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		wantCode string
	}{
		{"internal", errors.New("disk on fire"), veritrail.EUnavailable},
		{"disk full", fmt.Errorf("commit: %w", errors.New("database or disk is full (13)")), veritrail.EInsufficientStorage},
		{"coded", veritrail.Errorf(veritrail.ETooLarge, "too large"), veritrail.ETooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, w, out := startBlocked(t, Config{})
			w.err = tc.err
			appendAsync(t, q, 1, "refuse", 1, out)
			close(w.gate)
			for range 2 {
				a := <-out
				want := tc.wantCode
				if a.id == "refuse" {
					want = veritrail.EConflict // its own verdict stands
				}
				if veritrail.ErrorCode(a.err) != want || a.res != nil {
					t.Errorf("%s: %v %v, want %s and no results", a.id, a.res, a.err, want)
				}
			}
			q.Close()
		})
	}
}

// stuck is a Writer whose database never answers: it waits for its
// context, as a driver does.
type stuck struct{}

func (stuck) WriteBatch(ctx context.Context, batch []*Request) (int, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

// TestCommitTimeout: a batch whose database stops answering fails after
// CommitTimeout, and its callers are told to retry (unavailable) instead
// of waiting for ever.
func TestCommitTimeout(t *testing.T) {
	q := New(Config{CommitTimeout: 50 * time.Millisecond}, stuck{})
	defer q.Close()
	done := make(chan error, 1)
	go func() {
		_, err := q.Append(context.Background(), 1, events("a", 1))
		done <- err
	}()
	select {
	case err := <-done:
		if veritrail.ErrorCode(err) != veritrail.EUnavailable {
			t.Fatalf("a stuck commit: %v, want unavailable", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a stuck commit held its caller")
	}
}

func TestCloseDrains(t *testing.T) {
	q, w, out := startBlocked(t, Config{MaxBatchEvents: 2})
	for i := range 5 {
		appendAsync(t, q, 1, fmt.Sprintf("r%d", i), 1, out)
	}
	closed := make(chan struct{})
	go func() { q.Close(); close(closed) }()
	waitFor(t, func() bool {
		q.mu.RLock()
		defer q.mu.RUnlock()
		return q.closed
	})
	if _, err := q.Append(context.Background(), 1, events("late", 1)); veritrail.ErrorCode(err) != veritrail.EUnavailable {
		t.Fatalf("append while closing: %v, want unavailable", err)
	}
	if err := q.Do(context.Background(), 1, func(context.Context) error { return nil }); veritrail.ErrorCode(err) != veritrail.EUnavailable {
		t.Fatalf("job while closing: %v, want unavailable", err)
	}
	select {
	case <-closed:
		t.Fatal("Close returned while a batch was being written")
	default:
	}
	close(w.gate)
	<-closed
	for range 6 {
		if a := <-out; a.err != nil || len(a.res) != 1 {
			t.Fatalf("%s queued before Close: %v %v", a.id, a.res, a.err)
		}
	}
	if len(w.batches) != 4 { // first, then 5 requests two by two
		t.Fatalf("%d batches, want 4", len(w.batches))
	}
	q.Close() // again: returns
}

func TestLanesRunSideBySide(t *testing.T) {
	blocked := &recorder{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	free := &recorder{}
	q := New(Config{}, blocked, free)
	if q.Lanes() != 2 || q.Lane(4) != 0 || q.Lane(7) != 1 {
		t.Fatalf("lanes %d, org 4 on %d, org 7 on %d", q.Lanes(), q.Lane(4), q.Lane(7))
	}
	out := make(chan answer, 1)
	go func() {
		res, err := q.Append(context.Background(), 4, events("a", 1))
		out <- answer{"a", res, err}
	}()
	<-blocked.entered
	if _, err := q.Append(context.Background(), 7, events("b", 1)); err != nil {
		t.Fatal(err)
	}
	close(blocked.gate)
	if a := <-out; a.err != nil {
		t.Fatal(a.err)
	}
	q.Close()
	if len(blocked.batches) != 1 || len(free.batches) != 1 {
		t.Fatalf("batches per lane: %d, %d", len(blocked.batches), len(free.batches))
	}
}

func TestJobsRunBetweenBatches(t *testing.T) {
	q, w, out := startBlocked(t, Config{})
	jobDone := make(chan error, 1)
	go func() {
		jobDone <- q.Do(context.Background(), 1, func(ctx context.Context) error {
			w.record("job")
			return errors.New("job's own error")
		})
	}()
	// Give a broken lane the chance to run the job during the batch.
	time.Sleep(20 * time.Millisecond)
	close(w.gate)
	if err := <-jobDone; err == nil || err.Error() != "job's own error" {
		t.Fatalf("job error %v", err)
	}
	<-out
	q.Close()
	if fmt.Sprint(w.log) != "[batch of 1 job]" {
		t.Fatalf("lane ran %v", w.log)
	}
}

func TestAppendGivesUpBeforeQueued(t *testing.T) {
	q, w, out := startBlocked(t, Config{Depth: 1})
	appendAsync(t, q, 1, "fills the queue", 1, out)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Append(ctx, 1, events("gives up", 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("append on a full queue with a done context: %v", err)
	}
	close(w.gate)
	<-out
	<-out
	q.Close()
	for _, b := range w.batches {
		for _, r := range b {
			if r.Events[0].ID == "gives up" {
				t.Fatal("a request whose caller gave up before it was queued was written")
			}
		}
	}
}

// TestAnnouncesCommits: after a durable batch, Committed hears once of
// each organization with new events, and of those events, before its
// callers are answered; not of a refused request nor of a failed batch.
func TestAnnouncesCommits(t *testing.T) {
	var commits veritrail.Commits
	var mu sync.Mutex
	var told []int64
	var got []string
	commits.Subscribe(func(org int64, evs []*veritrail.Event) {
		mu.Lock()
		told = append(told, org)
		for _, e := range evs {
			got = append(got, e.ID)
		}
		mu.Unlock()
	})
	w := &recorder{}
	q := New(Config{Committed: commits.Publish}, w)
	defer q.Close()
	ctx := context.Background()
	if _, err := q.Append(ctx, 7, events("a", 2)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	first := slices.Clone(told)
	mu.Unlock()
	if !slices.Equal(first, []int64{7}) {
		t.Fatalf("announced %v before the answer, want [7]", first)
	}
	q.Append(ctx, 8, events("refuse", 1))
	w.err = errors.New("disk on fire")
	q.Append(ctx, 9, events("b", 1))
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(told, []int64{7}) || !slices.Equal(got, []string{"a", "a"}) {
		t.Fatalf("announced %v with events %v, want only [7] with its two", told, got)
	}
}

// TestKeepEnvelopesAsked: the queue asks Config.KeepEnvelopes once per
// organization of a batch and marks its requests, so that Assign keeps the
// envelopes of those organizations' events only.
func TestKeepEnvelopesAsked(t *testing.T) {
	var mu sync.Mutex
	asked := map[int64]int{}
	w := &recorder{}
	q := New(Config{KeepEnvelopes: func(org int64) bool {
		mu.Lock()
		asked[org]++
		mu.Unlock()
		return org == 7
	}}, w)
	defer q.Close()
	ctx := context.Background()
	q.Append(ctx, 7, events("a", 2))
	q.Append(ctx, 8, events("b", 1))
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range w.batches {
		for _, r := range b {
			if r.KeepEnvelopes != (r.Org == 7) {
				t.Errorf("org %d: KeepEnvelopes %v", r.Org, r.KeepEnvelopes)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if asked[7] != 1 || asked[8] != 1 {
		t.Errorf("asked %v, want each organization once", asked)
	}
}

// TestEnvelopeChunks: kept envelopes are exact copies, capped so that no
// append reaches the next, which later envelopes and the caller's reused
// buffer never change; one larger than a chunk gets its own.
func TestEnvelopeChunks(t *testing.T) {
	var c envelopeChunks
	var kept [][]byte
	var want []string
	buf := make([]byte, 0, 2*envelopeChunk)
	for i := range 300 {
		buf = fmt.Appendf(buf[:0], `{"id":"e%d","pad":"%0*d"}`, i, i*3, 0)
		if i == 150 {
			buf = append(buf, make([]byte, envelopeChunk)...)
		}
		k := c.add(buf)
		if cap(k) != len(k) {
			t.Fatalf("envelope %d: cap %d > len %d, an append could write into the next", i, cap(k), len(k))
		}
		want = append(want, string(buf))
		kept = append(kept, k)
	}
	for i := range kept {
		if string(kept[i]) != want[i] {
			t.Fatalf("envelope %d changed", i)
		}
	}
}

// idler is a recorder with idle work: pieces of it left.
type idler struct {
	*recorder
	pieces int
	calls  chan struct{}
}

func (w *idler) Idle(ctx context.Context) bool {
	w.record("idle")
	w.pieces--
	more := w.pieces > 0
	w.calls <- struct{}{}
	return more
}

// TestIdleBetweenBatches checks that the lane does idle work only when no
// request waits, never during a batch, takes a request that arrives first,
// and calls Idle until it reports nothing more.
func TestIdleBetweenBatches(t *testing.T) {
	w := &idler{recorder: &recorder{gate: make(chan struct{}), entered: make(chan struct{}, 100)}, pieces: 3, calls: make(chan struct{}, 100)}
	q := New(Config{}, w)
	out := make(chan answer, 100)
	go func() {
		res, err := q.Append(context.Background(), 1, events("first", 1))
		out <- answer{"first", res, err}
	}()
	<-w.entered
	// Queued during the first batch: written before any idle work.
	appendAsync(t, q, 1, "second", 1, out)
	w.gate <- struct{}{}
	<-w.entered
	w.gate <- struct{}{}
	<-out
	<-out
	for range 3 {
		<-w.calls
	}
	// Idle reported nothing more: not called again until after a batch.
	time.Sleep(20 * time.Millisecond)
	if len(w.calls) != 0 {
		t.Fatal("Idle called again after it reported nothing more")
	}
	w.pieces = 1
	close(w.gate)
	if _, err := q.Append(context.Background(), 1, events("third", 1)); err != nil {
		t.Fatal(err)
	}
	<-w.calls
	q.Close()
	want := "[batch of 1 batch of 1 idle idle idle batch of 1 idle]"
	if fmt.Sprint(w.log) != want {
		t.Fatalf("lane ran %v, want %v", w.log, want)
	}
}
