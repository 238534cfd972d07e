package commitq

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	veritrail "github.com/veritrail/veritrail"
)

// overlapper is an OverlappingWriter for testing the lane: each batch
// says it is assigned at once, then waits for its own gate (by the first
// event's id) before it finishes.
type overlapper struct {
	recorder
	gates   map[string]chan struct{}
	started chan string
}

func (w *overlapper) WriteBatchOverlapped(ctx context.Context, batch []*Request, assigned func()) (int, error) {
	id := batch[0].Events[0].ID
	w.mu.Lock()
	w.log = append(w.log, "start "+id)
	w.mu.Unlock()
	w.started <- id
	assigned()
	<-w.gates[id]
	w.mu.Lock()
	w.log = append(w.log, "end "+id)
	w.mu.Unlock()
	for _, r := range batch {
		r.Results = make([]veritrail.AppendResult, len(r.Events))
	}
	return len(batch), nil
}

// TestOverlappedBatches: a lane whose writer overlaps starts the next batch
// once the previous one is assigned, holds a third until the first is
// answered, answers (and announces) in batch order even when the second
// finishes first, and runs a job only with no batch in flight.
func TestOverlappedBatches(t *testing.T) {
	var commits veritrail.Commits
	var mu sync.Mutex
	var announced []string
	commits.Subscribe(func(org int64, evs []*veritrail.Event) {
		mu.Lock()
		announced = append(announced, evs[0].ID)
		mu.Unlock()
	})
	w := &overlapper{started: make(chan string, 10), gates: map[string]chan struct{}{}}
	for _, id := range []string{"a", "b", "c"} {
		w.gates[id] = make(chan struct{})
	}
	q := New(Config{Committed: commits.Publish}, w)
	out := make(chan answer, 10)
	send := func(id string) {
		go func() {
			res, err := q.Append(context.Background(), 1, events(id, 1))
			out <- answer{id, res, err}
		}()
	}
	send("a")
	if id := <-w.started; id != "a" {
		t.Fatalf("first batch %q", id)
	}
	// The lane takes a and b at once (a is assigned), so they are not
	// waited for in the queue; c waits there.
	send("b")
	if id := <-w.started; id != "b" {
		t.Fatalf("second batch %q", id)
	}
	appendAsync(t, q, 1, "c", 1, out)
	jobDone := make(chan error, 1)
	go func() {
		jobDone <- q.Do(context.Background(), 1, func(ctx context.Context) error {
			w.mu.Lock()
			w.log = append(w.log, "job")
			w.mu.Unlock()
			return nil
		})
	}()
	// b finishes writing first; it is answered only after a.
	close(w.gates["b"])
	waitFor(t, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return slices.Contains(w.log, "end b") })
	select {
	case a := <-out:
		t.Fatalf("%s answered before the first batch finished", a.id)
	default:
	}
	close(w.gates["a"])
	for _, want := range []string{"a", "b"} {
		if a := <-out; a.id != want || a.err != nil {
			t.Fatalf("answer %s (%v), want %s", a.id, a.err, want)
		}
	}
	close(w.gates["c"])
	if a := <-out; a.id != "c" {
		t.Fatalf("answer %s, want c", a.id)
	}
	if err := <-jobDone; err != nil {
		t.Fatal(err)
	}
	q.Close()
	// c started only once a was answered, and the job only with no
	// batch in flight; b's end may come before a's.
	got := fmt.Sprint(w.log)
	if got != "[start a start b end b end a start c end c job]" && got != "[start a start b end b end a job start c end c]" {
		t.Fatalf("lane ran %v", got)
	}
	if !slices.Equal(announced, []string{"a", "b", "c"}) {
		t.Fatalf("announced %v, want a, b, c", announced)
	}
}
