// Package rules watches organizations' logs: detection rules written in CEL
// (match, threshold, distinct, new_value, sequence) judge each event as it
// is committed, and what they find becomes alerts, which are recorded in the
// organization's own log as alert.* events and handed to package notify for
// delivery (docs/RULES.md).
//
// The Engine runs one evaluator per organization that has rules. An
// evaluator follows the log by seq from a durable cursor (RuleState), woken
// by the store's commit announcements (veritrail.Commits) and, as a safety
// net, by a short poll. What it finds is stored with the cursor in one
// transaction (RuleStore.CommitRules), so a crash never loses an alert and
// never repeats one: after a restart the evaluator rebuilds its windows
// from the last snapshot by replaying the log up to the cursor, and only
// events after the cursor raise anything.
package rules

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"cel.dev/cel-go/cel"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/seal"
)

// Notifier is the delivery side (notify.Dispatcher).
type Notifier interface {
	// Wake makes it look at the delivery queue now.
	Wake()
	// MailEnabled reports whether e-mail routes can be delivered.
	MailEnabled() bool
	// Outbound says which destinations routes may reach.
	Outbound() netguard.Guard
}

// Options configure an Engine.
type Options struct {
	Store veritrail.Store
	// Key seals the routes' secrets. Required.
	Key *seal.Key
	// Notifier is told of new deliveries; nil in tools that only test
	// rules.
	Notifier Notifier
	Logger   *slog.Logger
	// Now is the clock of alerts and snoozes. Default time.Now.
	Now func() time.Time

	// PollInterval is how often an evaluator looks at the log when no
	// commit announcement woke it (other nodes' commits; default 250ms).
	PollInterval time.Duration
	// RefreshInterval is how often rules and organizations are reread
	// besides Wake (default 5s).
	RefreshInterval time.Duration
	// ApplyInterval is the least time between two stores of alerts while
	// events pour in (default 200ms): what is found meanwhile is stored
	// together, in one transaction.
	ApplyInterval time.Duration
	// AdvanceInterval is how often the cursor is saved when nothing was
	// found (default 2s); SnapshotInterval how often the windows are
	// (default 30s), which bounds the replay after a restart.
	AdvanceInterval  time.Duration
	SnapshotInterval time.Duration
	// MaxReplay bounds the events replayed to rebuild windows after a
	// restart without a usable snapshot (default 1,000,000).
	MaxReplay int64

	// MayEvaluate decides whether this process evaluates org now. Nil:
	// always (SQLite). Nodes sharing a database plug a lease in, so one
	// node evaluates each organization; the cursor's compare-and-set
	// keeps an overlap from storing anything twice.
	MayEvaluate func(ctx context.Context, org int64) bool
}

// Engine evaluates every organization's rules.
type Engine struct {
	cfg   Options
	store veritrail.Store
	log   *slog.Logger
	now   func() time.Time
	env   *cel.Env

	mu      sync.Mutex
	evals   map[int64]*orgEval
	status  map[string]*ruleStatus // by rule id
	wake    chan struct{}
	running bool
}

// ruleStatus is how a rule fares, as the API shows it.
type ruleStatus struct {
	Err        string // why it does not run
	EvalErrors int64  // evaluations that failed (not a match)
	LastError  string
}

// New returns an engine; Run starts it.
func New(cfg Options) (*Engine, error) {
	if cfg.Store == nil || cfg.Key == nil {
		return nil, errors.New("rules: a store and a master key are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 5 * time.Second
	}
	if cfg.ApplyInterval <= 0 {
		cfg.ApplyInterval = 200 * time.Millisecond
	}
	if cfg.AdvanceInterval <= 0 {
		cfg.AdvanceInterval = 2 * time.Second
	}
	if cfg.SnapshotInterval <= 0 {
		cfg.SnapshotInterval = 30 * time.Second
	}
	if cfg.MaxReplay <= 0 {
		cfg.MaxReplay = 1000000
	}
	env, err := newEnv()
	if err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg, store: cfg.Store, log: cfg.Logger, now: cfg.Now, env: env,
		evals: map[int64]*orgEval{}, status: map[string]*ruleStatus{}, wake: make(chan struct{}, 1)}, nil
}

// Wake makes the engine reread rules now (after a change through the API)
// instead of at the next refresh.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
	e.mu.Lock()
	for _, o := range e.evals {
		o.rulesChanged.Store(true)
		o.poke()
	}
	e.mu.Unlock()
}

// committed is the store's commit announcement: org's log grew by
// events. They go to org's evaluator, which judges them without reading
// them back; when it cannot keep up they are dropped, and it reads them
// from the log instead.
func (e *Engine) committed(org int64, events []*veritrail.Event) {
	e.mu.Lock()
	o := e.evals[org]
	e.mu.Unlock()
	if o == nil {
		return
	}
	select {
	case o.feed <- events:
	default:
	}
	o.poke()
}

// Run evaluates until ctx ends, then saves every evaluator's position and
// returns once they stopped.
func (e *Engine) Run(ctx context.Context) {
	if p, ok := e.store.(veritrail.CommitPublisher); ok {
		cancel := p.Commits().Subscribe(e.committed)
		defer cancel()
	}
	var wg sync.WaitGroup
	refresh := time.NewTicker(e.cfg.RefreshInterval)
	defer refresh.Stop()
	chores := time.NewTicker(time.Second)
	defer chores.Stop()
	e.refresh(ctx, &wg)
	e.chores(ctx)
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-refresh.C:
			e.refresh(ctx, &wg)
		case <-e.wake:
			e.refresh(ctx, &wg)
		case <-chores.C:
			e.chores(ctx)
		}
	}
}

// refresh starts an evaluator for every organization with rules and
// stops those of organizations left without.
func (e *Engine) refresh(ctx context.Context, wg *sync.WaitGroup) {
	orgs, err := e.store.ListOrgs(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("rules: list organizations", slog.Any("err", err))
		}
		return
	}
	for _, o := range orgs {
		rs, err := e.store.ListRules(ctx, o.ID)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Error("rules: list rules", slog.String("org", o.Name), slog.Any("err", err))
			}
			return
		}
		e.mu.Lock()
		ev := e.evals[o.ID]
		switch {
		case len(rs) > 0 && ev == nil:
			ectx, cancel := context.WithCancel(ctx)
			ev = newOrgEval(e, o, cancel)
			e.evals[o.ID] = ev
			wg.Add(1)
			go func() {
				defer wg.Done()
				ev.run(ectx)
				e.mu.Lock()
				if e.evals[o.ID] == ev {
					delete(e.evals, o.ID)
				}
				e.mu.Unlock()
			}()
		case len(rs) == 0 && ev != nil:
			ev.cancel()
		}
		e.mu.Unlock()
	}
}

// chores appends alert records left behind (a crash between storing an
// alert and appending its record) and ends snoozes that are due.
func (e *Engine) chores(ctx context.Context) {
	if err := e.flushRecords(ctx); err != nil && ctx.Err() == nil {
		e.log.Warn("rules: appending alert records; will retry", slog.Any("err", err))
	}
	due, err := e.store.SnoozesDue(ctx, e.now(), 100)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("rules: snoozes due", slog.Any("err", err))
		}
		return
	}
	for _, a := range due {
		if _, err := e.endSnooze(ctx, a); err != nil && ctx.Err() == nil && veritrail.ErrorCode(err) != veritrail.EConflict {
			e.log.Error("rules: ending a snooze", slog.String("alert", a.ID), slog.Any("err", err))
		}
	}
}

// flushRecords appends every pending alert record to its log.
func (e *Engine) flushRecords(ctx context.Context) error {
	for {
		recs, err := e.store.AlertRecords(ctx, 500)
		if err != nil || len(recs) == 0 {
			return err
		}
		byOrg := map[int64][]*veritrail.AlertRecord{}
		for _, r := range recs {
			byOrg[r.OrgID] = append(byOrg[r.OrgID], r)
		}
		for org, rs := range byOrg {
			if err := e.appendRecords(ctx, org, rs); err != nil {
				return err
			}
		}
		if len(recs) < 500 {
			return nil
		}
	}
}

// appendRecords appends records of org (idempotently: they carry ids)
// and forgets them.
func (e *Engine) appendRecords(ctx context.Context, org int64, recs []*veritrail.AlertRecord) error {
	evs := make([]*veritrail.Event, 0, len(recs))
	ids := make([]string, 0, len(recs))
	for _, r := range recs {
		ev, err := decodeRecord(r.Event)
		if err != nil {
			e.log.Error("rules: dropping an alert record that does not decode", slog.String("id", r.ID), slog.Any("err", err))
		} else {
			evs = append(evs, ev)
		}
		ids = append(ids, r.ID)
	}
	if len(evs) > 0 {
		if _, err := e.store.Append(ctx, org, evs); err != nil {
			return err
		}
	}
	return e.store.AlertRecorded(ctx, org, ids)
}

// mayEvaluate is the one place that decides whether this process
// evaluates org now.
func (e *Engine) mayEvaluate(ctx context.Context, org int64) bool {
	if e.cfg.MayEvaluate == nil {
		return true
	}
	return e.cfg.MayEvaluate(ctx, org)
}

func (e *Engine) wakeNotifier() {
	if e.cfg.Notifier != nil {
		e.cfg.Notifier.Wake()
	}
}

func (e *Engine) setStatus(id string, fn func(*ruleStatus)) {
	e.mu.Lock()
	st := e.status[id]
	if st == nil {
		st = &ruleStatus{}
		e.status[id] = st
	}
	fn(st)
	e.mu.Unlock()
}

func (e *Engine) statusOf(id string) ruleStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st := e.status[id]; st != nil {
		return *st
	}
	return ruleStatus{}
}

// errString keeps an error short and safe to show.
func errString(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
