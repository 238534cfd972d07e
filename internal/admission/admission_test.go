package admission

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// fakeClock is the scheduler's clock and timers, moved by the test: no
// test here depends on how fast the machine is.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// advance moves the clock by d and runs the timers that are due.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	for _, t := range c.timers {
		if !t.stopped && !t.at.After(c.now) {
			t.stopped = true
			due = append(due, t.f)
		}
	}
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

func newTest(cfg Config) (*Scheduler, *fakeClock) {
	c := &fakeClock{now: time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)}
	cfg.Now, cfg.AfterFunc = c.Now, c.AfterFunc
	return New(cfg), c
}

// acquired is the outcome of an Acquire run in its own goroutine.
type acquired struct {
	turn *Turn
	err  error
}

func acquireAsync(s *Scheduler, ctx context.Context, c Class) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		t, err := s.Acquire(ctx, c)
		ch <- acquired{t, err}
	}()
	return ch
}

// waitFor waits until n readers wait (the goroutines have queued).
func waitFor(t *testing.T, s *Scheduler, n int) {
	t.Helper()
	for s.Waiting() != n {
		runtime.Gosched()
	}
}

func granted(ch <-chan acquired) (acquired, bool) {
	select {
	case a := <-ch:
		return a, true
	default:
		return acquired{}, false
	}
}

func TestNilSchedulerAdmitsAll(t *testing.T) {
	var s *Scheduler
	turn, err := s.Acquire(context.Background(), Interactive)
	if err != nil {
		t.Fatal(err)
	}
	turn.Release()
	turn.Release()
	s.CommitDone(time.Second)
	if s.Busy() != 0 || s.Waiting() != 0 {
		t.Error("a nil scheduler reports load")
	}
}

func TestIdleIngestAdmitsEveryReaderAtOnce(t *testing.T) {
	s, _ := newTest(Config{})
	var turns []*Turn
	for i := range 30 {
		turn, err := s.Acquire(context.Background(), Class(i%2))
		if err != nil {
			t.Fatal(err)
		}
		turns = append(turns, turn)
	}
	if s.running != 30 {
		t.Errorf("running = %d, want 30", s.running)
	}
	for _, turn := range turns {
		turn.Release()
	}
	if s.running != 0 {
		t.Errorf("running after release = %d, want 0", s.running)
	}
}

// While ingest is busy, readers run one at a time, and a turn held for d
// is followed by a pause of d·(1−share)/share.
func TestBusyIngestPacesReaders(t *testing.T) {
	s, clk := newTest(Config{ReadShare: 0.2, BusyThreshold: 0.5, Window: time.Second})
	s.CommitDone(time.Second) // the commit lane was busy all the last second
	first, err := s.Acquire(context.Background(), Bulk)
	if err != nil {
		t.Fatal(err)
	}
	second := acquireAsync(s, context.Background(), Bulk)
	waitFor(t, s, 1)
	clk.advance(10 * time.Millisecond)
	s.CommitDone(10 * time.Millisecond)
	if _, ok := granted(second); ok {
		t.Fatal("a second reader ran beside the first while ingest is busy")
	}
	first.Release() // held 10 ms: a pause of 40 ms at a 20% share
	if _, ok := granted(second); ok {
		t.Fatal("the next reader ran without the pause")
	}
	clk.advance(39 * time.Millisecond)
	s.CommitDone(39 * time.Millisecond)
	if _, ok := granted(second); ok {
		t.Fatal("the next reader ran before the pause was over")
	}
	clk.advance(2 * time.Millisecond)
	a := <-second
	if a.err != nil {
		t.Fatal(a.err)
	}
	a.turn.Release()
	a.turn.Release() // a second release changes nothing
	if s.running != 0 {
		t.Errorf("running = %d, want 0", s.running)
	}
}

// Once ingest calms down (its busy fraction decays below the threshold),
// every waiting reader runs, without waiting for its pause.
func TestReadersRunWhenIngestCalms(t *testing.T) {
	s, clk := newTest(Config{ReadShare: 0.1, BusyThreshold: 0.5, Window: time.Second})
	s.CommitDone(time.Second)
	first, _ := s.Acquire(context.Background(), Interactive)
	var waiting []<-chan acquired
	for i := range 5 {
		waiting = append(waiting, acquireAsync(s, context.Background(), Class(i%2)))
	}
	waitFor(t, s, 5)
	clk.advance(500 * time.Millisecond)
	s.CommitDone(500 * time.Millisecond)
	first.Release() // owes 4.5 s of pause, capped at maxPause
	clk.advance(500 * time.Millisecond)
	if n := s.Waiting(); n != 5 {
		t.Fatalf("%d readers wait while ingest is still busy (%.2f), want 5", n, s.Busy())
	}
	clk.advance(time.Second) // no commits since: busy 1.1·e^-1.5 < 0.5
	for i, ch := range waiting {
		a := <-ch
		if a.err != nil {
			t.Fatalf("reader %d: %v", i, a.err)
		}
		defer a.turn.Release()
	}
	if s.running != 5 {
		t.Errorf("running = %d, want 5", s.running)
	}
}

// An interactive read that waits MaxWait is refused as unavailable (503
// with Retry-After); a bulk read waits on, and ends only with its context.
func TestMaxWait(t *testing.T) {
	s, clk := newTest(Config{ReadShare: 0.1, MaxWait: 5 * time.Second})
	s.CommitDone(10 * time.Second)
	held, _ := s.Acquire(context.Background(), Bulk)
	query := acquireAsync(s, context.Background(), Interactive)
	ctx, cancel := context.WithCancel(context.Background())
	export := acquireAsync(s, ctx, Bulk)
	waitFor(t, s, 2)
	for range 6 {
		clk.advance(time.Second)
		s.CommitDone(time.Second) // ingest stays busy
	}
	a := <-query
	if veritrail.ErrorCode(a.err) != veritrail.EUnavailable {
		t.Fatalf("interactive read after MaxWait: %v, want %s", a.err, veritrail.EUnavailable)
	}
	if _, ok := granted(export); ok {
		t.Fatal("the bulk read ended while it should wait on")
	}
	cancel()
	if a := <-export; !errors.Is(a.err, context.Canceled) {
		t.Fatalf("bulk read after its context ended: %v", a.err)
	}
	if n := s.Waiting(); n != 0 {
		t.Errorf("%d readers still queued after giving up", n)
	}
	held.Release()
}

// While both classes wait, exports get about a BulkEvery-th of the time
// turns are held, queries the rest.
func TestSharesBetweenClasses(t *testing.T) {
	s, clk := newTest(Config{ReadShare: 0.5, BusyThreshold: 0.5, Window: time.Hour})
	s.CommitDone(time.Hour)
	blocker, _ := s.Acquire(context.Background(), Interactive)
	var queries, exports []<-chan acquired
	for range 12 {
		queries = append(queries, acquireAsync(s, context.Background(), Interactive))
		waitFor(t, s, len(queries))
	}
	for range 3 {
		exports = append(exports, acquireAsync(s, context.Background(), Bulk))
		waitFor(t, s, len(queries)+len(exports))
	}
	blocker.Release()
	// An export's turn lasts 30 ms, a query's 10 ms; at a 50% share each
	// is followed by a pause as long. Record the order of the turns.
	var order []Class
	running := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.running
	}
	next := func() (Class, *Turn) {
		for running() == 0 {
			clk.advance(time.Millisecond) // the clock stands still while a turn is held
		}
		for {
			for _, chs := range [][]<-chan acquired{queries, exports} {
				for i, ch := range chs {
					if a, ok := granted(ch); ok {
						chs[i] = nil
						return a.turn.class, a.turn
					}
				}
			}
			runtime.Gosched()
		}
	}
	for range 15 {
		c, turn := next()
		order = append(order, c)
		if c == Bulk {
			clk.advance(30 * time.Millisecond)
		} else {
			clk.advance(10 * time.Millisecond)
		}
		turn.Release()
	}
	var bulkTime, queryTime time.Duration
	for _, c := range order[:12] { // while both classes still wait
		if c == Bulk {
			bulkTime += 30 * time.Millisecond
		} else {
			queryTime += 10 * time.Millisecond
		}
	}
	if bulkTime == 0 || bulkTime*(BulkEvery-1) > queryTime+30*time.Millisecond*(BulkEvery-1) {
		t.Errorf("exports held %s and queries %s of the turns (order %v), want exports about 1/%d", bulkTime, queryTime, order, BulkEvery)
	}
	if order[0] != Interactive || order[1] != Bulk {
		t.Errorf("order %v: want a query first, then an export (it has held nothing)", order)
	}
}

// A share of 100% turns pacing off, however busy ingest is.
func TestFullShareNeverPaces(t *testing.T) {
	s, _ := newTest(Config{ReadShare: 1})
	s.CommitDone(time.Hour)
	var turns []*Turn
	for range 10 {
		turn, err := s.Acquire(context.Background(), Interactive)
		if err != nil {
			t.Fatal(err)
		}
		turns = append(turns, turn)
	}
	for _, turn := range turns {
		turn.Release()
	}
}

// Observer forwards every measurement and feeds the commits' time to the
// scheduler.
func TestObserver(t *testing.T) {
	s, _ := newTest(Config{Window: time.Second})
	rec := &recordingObserver{}
	o := s.Observer(rec)
	o.CommitDone(3, 100, 600*time.Millisecond, nil)
	o.Queued(7)
	if rec.commits != 1 || rec.queued != 7 {
		t.Errorf("forwarded %d commits, queued %d; want 1, 7", rec.commits, rec.queued)
	}
	if b := s.Busy(); b < 0.59 || b > 0.61 {
		t.Errorf("busy = %.3f after a 600 ms commit in a 1 s window, want 0.6", b)
	}
	var nilSched *Scheduler
	if nilSched.Observer(rec) != veritrail.Observer(rec) {
		t.Error("a nil scheduler should hand back the observer itself")
	}
}

type recordingObserver struct {
	veritrail.NopObserver
	commits, queued int
}

func (r *recordingObserver) CommitDone(int, int, time.Duration, error) { r.commits++ }
func (r *recordingObserver) Queued(n int)                              { r.queued = n }
