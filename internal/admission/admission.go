// Package admission runs reads behind ingest. Reads of the log (event
// lists, stats, search, streaming exports and export jobs) acquire a turn
// from one server-wide Scheduler before they work, and give it back after
// each chunk; ingest never asks. While the commit queue is busy (ingest at
// saturation, measured by how much of the recent time its commits took),
// readers run one at a time and only for a share of the time (a duty cycle:
// a turn of d is followed by a pause of d·(1−share)/share), so that ingest
// keeps the processors. When ingest is not busy every reader runs at once,
// at full speed.
//
// Contract:
//
//   - Ingest is never held by a reader's turn: the scheduler only delays
//     readers.
//   - An interactive read (Interactive) waits at most Config.MaxWait (or
//     until its context ends, whichever is first); past it Acquire answers
//     EUnavailable, which the API answers 503 with Retry-After. A bulk read
//     (Bulk, an export) waits as long as its context lasts: it slows down,
//     it is not refused.
//   - While readers of both classes wait, bulk readers get about one
//     BulkEvery-th of the readers' time (turns are given by the time they
//     held, not by their number: an export's page takes longer than a
//     list), interactive readers the rest; so exports progress under a
//     steady stream of queries, and queries are not stuck behind exports.
//   - A caller MUST Release every turn it was given (a Turn's Release is
//     idempotent), and SHOULD NOT hold one while it waits for something
//     other than the processor (a commit, a slow client), since the time a
//     turn is held is what the pause after it is measured from.
package admission

import (
	"context"
	"math"
	"sync"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// Class is what kind of reader asks for a turn.
type Class int

const (
	// Interactive is a read someone waits for: a list, a search, stats.
	Interactive Class = iota
	// Bulk is a long read that may be slowed at will: an export.
	Bulk
)

// Defaults of Config.
const (
	DefaultReadShare     = 0.1
	DefaultBusyThreshold = 0.5
	DefaultMaxWait       = 30 * time.Second
	DefaultWindow        = time.Second
	// BulkEvery: while both classes wait, bulk readers get one
	// BulkEvery-th of the time turns are held.
	BulkEvery = 4
	// maxPause caps the pause owed after turns, so that readers admitted
	// before ingest became busy (several at once, their turns stretched by
	// the contention) do not stop every reader for long.
	maxPause = time.Second
)

// Config configures a Scheduler.
type Config struct {
	// ReadShare is the fraction of the time readers may run while ingest
	// is busy, in (0, 1]; 1 turns pacing off. Default DefaultReadShare.
	ReadShare float64
	// BusyThreshold is the fraction of the recent time spent committing
	// (summed over the commit lanes) from which ingest counts as busy, in
	// (0, 1]. Default DefaultBusyThreshold.
	BusyThreshold float64
	// MaxWait bounds how long an interactive read waits for its turn.
	// Default DefaultMaxWait.
	MaxWait time.Duration
	// Window is the time over which the commits' busy fraction is
	// averaged (an exponential decay of that time constant). Default
	// DefaultWindow.
	Window time.Duration
	// Now and AfterFunc are the clock and its timers; tests replace them.
	Now       func() time.Time
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
}

// Scheduler hands out turns to readers. A nil *Scheduler admits every
// reader at once.
type Scheduler struct {
	cfg Config

	mu       sync.Mutex
	busyAcc  float64   // decayed sum of commit time / Window, as of busyAt
	busyAt   time.Time // of busyAcc
	running  int       // turns held
	nextFree time.Time // while busy, no turn starts before this
	waiting  [2][]*waiter
	// time held by turns of each class since readers of both began
	// waiting (BulkEvery)
	held     [2]time.Duration
	timer    func() bool // stops the pending wake-up, nil if none
	timerAt  time.Time
	timerGen uint64
}

type waiter struct {
	class Class
	ready chan struct{}
	turn  *Turn // set when granted
}

// New returns a scheduler for cfg, its zero fields given their defaults.
func New(cfg Config) *Scheduler {
	if cfg.ReadShare <= 0 || cfg.ReadShare > 1 {
		cfg.ReadShare = DefaultReadShare
	}
	if cfg.BusyThreshold <= 0 || cfg.BusyThreshold > 1 {
		cfg.BusyThreshold = DefaultBusyThreshold
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AfterFunc == nil {
		cfg.AfterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	return &Scheduler{cfg: cfg}
}

// Turn is a reader's permission to run; Release gives it back.
type Turn struct {
	s     *Scheduler
	class Class
	start time.Time
	once  sync.Once
}

// Release ends the turn. The time it was held is charged to readers while
// ingest is busy: the next turn starts no sooner than that time scaled by
// (1−ReadShare)/ReadShare. Releasing a nil or released turn does nothing.
func (t *Turn) Release() {
	if t == nil || t.s == nil {
		return
	}
	t.once.Do(func() { t.s.release(t) })
}

// CommitDone reports a commit that took d (an Observer's CommitDone):
// the measure of ingest's pressure.
func (s *Scheduler) CommitDone(d time.Duration) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	s.busyAcc = s.busyLocked(now) + float64(d)/float64(s.cfg.Window)
	s.busyAt = now
	// Busy readers may have to wait longer now; waiters re-check at the
	// times computed then, so nothing to do.
}

// Busy is the recent fraction of time spent committing (may exceed 1 with
// several commit lanes).
func (s *Scheduler) Busy() float64 {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.busyLocked(s.cfg.Now())
}

// Waiting is how many readers wait for a turn.
func (s *Scheduler) Waiting() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiting[Interactive]) + len(s.waiting[Bulk])
}

func (s *Scheduler) busyLocked(now time.Time) float64 {
	if s.busyAcc == 0 {
		return 0
	}
	age := now.Sub(s.busyAt)
	if age <= 0 {
		return s.busyAcc
	}
	return s.busyAcc * math.Exp(-float64(age)/float64(s.cfg.Window))
}

func (s *Scheduler) saturated(now time.Time) bool {
	return s.cfg.ReadShare < 1 && s.busyLocked(now) >= s.cfg.BusyThreshold
}

// mayStart reports whether a turn may start now.
func (s *Scheduler) mayStart(now time.Time) bool {
	if !s.saturated(now) {
		return true
	}
	return s.running == 0 && !now.Before(s.nextFree)
}

// Acquire waits for a turn of class c. It fails with ctx's error when ctx
// ends first, and for an interactive read with EUnavailable once it has
// waited MaxWait.
func (s *Scheduler) Acquire(ctx context.Context, c Class) (*Turn, error) {
	if s == nil {
		return &Turn{}, nil
	}
	s.mu.Lock()
	now := s.cfg.Now()
	if len(s.waiting[Interactive])+len(s.waiting[Bulk]) == 0 && s.mayStart(now) {
		s.running++
		s.mu.Unlock()
		return &Turn{s: s, class: c, start: now}, nil
	}
	w := &waiter{class: c, ready: make(chan struct{})}
	s.waiting[c] = append(s.waiting[c], w)
	s.dispatchLocked(now)
	s.mu.Unlock()

	var expired <-chan struct{}
	if c == Interactive {
		ch := make(chan struct{})
		stop := s.cfg.AfterFunc(s.cfg.MaxWait, func() { close(ch) })
		defer stop()
		expired = ch
	}
	select {
	case <-w.ready:
		return w.turn, nil
	case <-ctx.Done():
		if t := s.giveUp(w); t != nil {
			t.Release()
		}
		return nil, ctx.Err()
	case <-expired:
		if t := s.giveUp(w); t != nil {
			return t, nil // granted just now: take it
		}
		return nil, veritrail.Errorf(veritrail.EUnavailable,
			"the server is busy storing events and this read waited %s for its turn; retry after the number of seconds in Retry-After", s.cfg.MaxWait)
	}
}

// giveUp takes w out of the queue, or returns its turn if it was granted
// meanwhile.
func (s *Scheduler) giveUp(w *waiter) *Turn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.turn != nil {
		return w.turn
	}
	q := s.waiting[w.class]
	for i, o := range q {
		if o == w {
			s.waiting[w.class] = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	return nil
}

func (s *Scheduler) release(t *Turn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	s.running--
	held := max(now.Sub(t.start), 0)
	s.held[t.class] += held
	if s.saturated(now) {
		pause := time.Duration(float64(held) * (1 - s.cfg.ReadShare) / s.cfg.ReadShare)
		if s.nextFree.Before(now) {
			s.nextFree = now
		}
		s.nextFree = s.nextFree.Add(pause)
		if limit := now.Add(maxPause); s.nextFree.After(limit) {
			s.nextFree = limit
		}
	}
	s.dispatchLocked(now)
}

// dispatchLocked grants turns to waiters while turns may start, and
// otherwise sets a timer for when one may.
func (s *Scheduler) dispatchLocked(now time.Time) {
	for {
		c, ok := s.nextClass()
		if !ok {
			return
		}
		if !s.mayStart(now) {
			break
		}
		w := s.waiting[c][0]
		s.waiting[c] = s.waiting[c][1:]
		s.running++
		w.turn = &Turn{s: s, class: c, start: now}
		close(w.ready)
	}
	if s.running > 0 {
		return // a release dispatches again
	}
	// Saturated and paused: wake when the pause is over or when ingest's
	// busy fraction has decayed below the threshold, whichever is first.
	at := s.nextFree
	if b := s.busyLocked(now); b > 0 {
		calm := now.Add(time.Duration(float64(s.cfg.Window)*math.Log(b/s.cfg.BusyThreshold)) + time.Millisecond)
		if calm.Before(at) {
			at = calm
		}
	}
	if soon := now.Add(time.Millisecond); at.Before(soon) {
		at = soon
	}
	if s.timer != nil && !s.timerAt.After(at) && s.timerAt.After(now) {
		return // an earlier wake-up is set
	}
	if s.timer != nil {
		s.timer()
	}
	s.timerGen++
	gen := s.timerGen
	s.timerAt = at
	s.timer = s.cfg.AfterFunc(at.Sub(now), func() { s.wake(gen) })
}

// wake is a timer's: a pause may be over, or ingest calmer.
func (s *Scheduler) wake(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen == s.timerGen {
		s.timer = nil
	}
	s.dispatchLocked(s.cfg.Now())
}

// nextClass is the class of the next waiter to serve: while both classes
// wait, bulk when it has held less than one BulkEvery-th of the time.
func (s *Scheduler) nextClass() (Class, bool) {
	i, b := len(s.waiting[Interactive]) > 0, len(s.waiting[Bulk]) > 0
	if !i || !b {
		s.held = [2]time.Duration{} // the shares count while both wait
	}
	switch {
	case i && b:
		if s.held[Bulk]*(BulkEvery-1) < s.held[Interactive] {
			return Bulk, true
		}
		return Interactive, true
	case i:
		return Interactive, true
	case b:
		return Bulk, true
	}
	return 0, false
}

// Observer returns next with the commits it reports fed to s as well.
func (s *Scheduler) Observer(next veritrail.Observer) veritrail.Observer {
	if next == nil {
		next = veritrail.NopObserver{}
	}
	if s == nil {
		return next
	}
	return observer{next, s}
}

type observer struct {
	veritrail.Observer
	s *Scheduler
}

func (o observer) CommitDone(requests, events int, d time.Duration, err error) {
	o.s.CommitDone(d)
	o.Observer.CommitDone(requests, events, d, err)
}
