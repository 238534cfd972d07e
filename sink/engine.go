// Package sink forwards every organization's events to its sinks (SIEMs,
// data lakes, webhooks, Kafka): at least once, in seq order, with the lag
// of each sink visible.
//
// The Engine runs one worker per sink. A worker reads the organization's
// log after the sink's cursor (SinkStore), formats a batch (native JSON,
// OCSF or CEF, content only if the sink forwards it), hands it to the
// sink's Destination (sub-packages webhook, splunk, datadog, syslog,
// kafka) and moves the cursor only once the destination acknowledged it.
// A crash or restart redelivers from the cursor, never skips: receivers
// deduplicate by the records' id and seq. Failures are retried with
// exponential backoff and jitter; failures that retrying cannot fix
// (refused credentials, bad requests) pause the sink after a few attempts,
// with the reason shown, until an administrator resumes it.
package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/seal"
)

// Observer receives forwarding measurements (metrics.Metrics implements
// it). Calls are cheap and concurrent.
type Observer interface {
	// SinkLag reports how far a sink is behind its organization's log.
	SinkLag(org, sink string, events int64, seconds float64)
	// SinkDelivered reports one acknowledged batch.
	SinkDelivered(org, sink string, events, bytes int, d time.Duration)
	// SinkFailed reports one failed delivery.
	SinkFailed(org, sink string, permanent bool)
	// SinkGone forgets a deleted sink's series.
	SinkGone(org, sink string)
}

type nopObserver struct{}

func (nopObserver) SinkLag(string, string, int64, float64)                {}
func (nopObserver) SinkDelivered(string, string, int, int, time.Duration) {}
func (nopObserver) SinkFailed(string, string, bool)                       {}
func (nopObserver) SinkGone(string, string)                               {}

// Options configure an Engine.
type Options struct {
	Store veritrail.Store
	// Key seals sink secrets at rest. Required.
	Key *seal.Key
	// Types are the destinations this build can deliver to, by sink type.
	Types    map[string]Factory
	Logger   *slog.Logger
	Observer Observer
	Now      func() time.Time

	// PollInterval is how often an idle worker looks for new events
	// (default 200ms). RefreshInterval is how often the engine looks for
	// new or deleted sinks besides Wake (default 5s).
	PollInterval    time.Duration
	RefreshInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait between retries (default
	// 1s and 5m); each failure doubles it, with ±50% jitter.
	MinBackoff, MaxBackoff time.Duration
	// PauseAfter is how many failures in a row marked Permanent pause a
	// sink (default 5). Other failures are retried until they stop.
	PauseAfter int
	// SendTimeout bounds one delivery (default 30s).
	SendTimeout time.Duration

	// Feed, when the store hands it every commit's events (its Add
	// subscribed to the store's Commits), lets sinks that keep up forward
	// fresh events without reading the store. Optional.
	Feed *Feed

	// Outbound says which addresses destinations may connect to; the
	// zero Guard refuses loopback, link-local and metadata addresses. The
	// API checks a sink's URL when it is set; this checks every
	// connection, as a name may resolve elsewhere later.
	Outbound netguard.Guard

	// MayDeliver decides whether this process may deliver a sink now.
	// Nil: always (one process per store, as with SQLite). Several nodes
	// sharing a database plug a lease in here, so that one node at a time
	// delivers each sink; the cursor's compare-and-set (AdvanceSink)
	// keeps even an overlap from moving it wrongly.
	MayDeliver func(ctx context.Context, org int64, sinkID string) bool
}

// Engine delivers every organization's events to its sinks.
type Engine struct {
	cfg   Options
	store veritrail.Store
	log   *slog.Logger
	obs   Observer
	now   func() time.Time

	mu      sync.Mutex
	workers map[workerKey]*worker
	wake    chan struct{}
}

type workerKey struct {
	org int64
	id  string
}

// New returns an engine; Run starts it.
func New(cfg Options) (*Engine, error) {
	if cfg.Store == nil || cfg.Key == nil {
		return nil, errors.New("sink engine: a store and a master key are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 5 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(cfg.MinBackoff, 5*time.Minute)
	}
	if cfg.PauseAfter <= 0 {
		cfg.PauseAfter = 5
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 30 * time.Second
	}
	return &Engine{cfg: cfg, store: cfg.Store, log: cfg.Logger, obs: cfg.Observer, now: cfg.Now,
		workers: map[workerKey]*worker{}, wake: make(chan struct{}, 1)}, nil
}

// Wake makes the engine look at the sinks now (after an administrator's
// change) instead of at the next refresh.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
	e.mu.Lock()
	for _, w := range e.workers {
		w.poke()
	}
	e.mu.Unlock()
}

// Run delivers until ctx ends, then stops every worker and returns once
// they stopped. A batch in flight is abandoned (and delivered again at the
// next start: at least once).
func (e *Engine) Run(ctx context.Context) {
	var wg sync.WaitGroup
	tick := time.NewTicker(e.cfg.RefreshInterval)
	defer tick.Stop()
	for {
		e.refresh(ctx, &wg)
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tick.C:
		case <-e.wake:
		}
	}
}

// refresh starts a worker for every sink without one and stops those of
// deleted sinks.
func (e *Engine) refresh(ctx context.Context, wg *sync.WaitGroup) {
	orgs, err := e.store.ListOrgs(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("forwarding: list organizations", slog.Any("err", err))
		}
		return
	}
	seen := map[workerKey]bool{}
	for _, o := range orgs {
		sinks, err := e.store.ListSinks(ctx, o.ID)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Error("forwarding: list sinks", slog.String("org", o.Name), slog.Any("err", err))
			}
			return // do not stop workers on a failed read
		}
		e.mu.Lock()
		for _, k := range sinks {
			key := workerKey{o.ID, k.ID}
			seen[key] = true
			if _, ok := e.workers[key]; ok {
				continue
			}
			wctx, cancel := context.WithCancel(ctx)
			w := &worker{e: e, org: o.ID, orgName: o.Name, id: k.ID, cancel: cancel, wake: make(chan struct{}, 1),
				log: e.log.With(slog.String("org", o.Name), slog.String("sink", k.ID))}
			e.workers[key] = w
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.run(wctx)
				e.mu.Lock()
				if e.workers[key] == w {
					delete(e.workers, key)
				}
				e.mu.Unlock()
			}()
		}
		e.mu.Unlock()
	}
	e.mu.Lock()
	for key, w := range e.workers {
		if !seen[key] {
			w.cancel()
			e.obs.SinkGone(w.orgName, w.id)
		}
	}
	e.mu.Unlock()
}

// mayDeliver is the one place that decides whether this process delivers
// sink id of org now.
func (e *Engine) mayDeliver(ctx context.Context, org int64, id string) bool {
	if e.cfg.MayDeliver == nil {
		return true
	}
	return e.cfg.MayDeliver(ctx, org, id)
}

// secretContext binds a sealed secret to its sink.
func secretContext(org int64, id string) string {
	return fmt.Sprintf("veritrail sink secret\norg %d\nsink %s", org, id)
}

// settings decodes a sink's stored config and opens its secret.
func (e *Engine) settings(k *veritrail.Sink, orgName string) (*Settings, error) {
	st, err := decodeStored(k.Config)
	if err != nil {
		return nil, err
	}
	s := &Settings{SinkID: k.ID, Name: k.Name, Type: k.Type, Org: orgName, Config: &st.Config, Log: e.log, Outbound: e.cfg.Outbound}
	switch {
	case st.SecretSealed != "":
		if s.Secret, err = e.cfg.Key.Open(st.SecretSealed, secretContext(k.OrgID, k.ID)); err != nil {
			return nil, Permanentf("the sink's secret: %v (was the master key changed?)", err)
		}
	case st.SecretFile != "":
		if s.Secret, err = readSecretFile(st.SecretFile); err != nil {
			return nil, Permanentf("secret_file: %v", err)
		}
	}
	return s, nil
}

// worker delivers one sink.
type worker struct {
	e       *Engine
	org     int64
	orgName string
	id      string
	log     *slog.Logger
	cancel  context.CancelFunc
	wake    chan struct{}

	// conf is the stored config that set was decoded from (its secret
	// opened, or its secret file read) and dest built from: both are
	// kept while the config is unchanged and dropped on a failure, so a
	// rotated secret file is read at the next connection.
	conf []byte
	set  *Settings
	dest Destination // built at the first batch to send

	cur  *cursorWriter // saves the acknowledged cursor
	read bool          // the sink was read once (its failures counted)

	failures     int // in a row
	permanent    int // permanent ones in a row
	pendingSince time.Time
}

func (w *worker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// sleep waits d, or until poked or ctx ends.
func (w *worker) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-w.wake:
	}
}

func (w *worker) closeDest() {
	if w.dest != nil {
		w.dest.Close()
	}
	w.conf, w.set, w.dest = nil, nil, nil
}

// settings returns k's settings, decoded again only when its stored
// config changed since the last call (or a failure dropped them).
func (w *worker) settings(k *veritrail.Sink) (*Settings, error) {
	if w.set != nil && string(w.conf) == string(k.Config) {
		return w.set, nil
	}
	w.closeDest()
	set, err := w.e.settings(k, w.orgName)
	if err != nil {
		return nil, err
	}
	w.conf, w.set = k.Config, set
	return set, nil
}

func (w *worker) run(ctx context.Context) {
	defer w.closeDest()
	e := w.e
	w.cur = newCursorWriter(w)
	defer w.cur.wait(cursorFlushWait) // keep what was acknowledged
	if e.cfg.Feed != nil {
		defer e.cfg.Feed.watch(w.org)()
	}
	for ctx.Err() == nil {
		k, err := e.store.SinkByID(ctx, w.org, w.id)
		if veritrail.ErrorCode(err) == veritrail.ENotFound {
			e.obs.SinkGone(w.orgName, w.id)
			return
		}
		if err != nil {
			if ctx.Err() == nil {
				w.log.Error("forwarding: read sink", slog.Any("err", err))
			}
			w.sleep(ctx, e.cfg.PollInterval)
			continue
		}
		k.Delivered = w.cur.cursor(k.Delivered)
		if !w.read {
			// A restart keeps counting. Only at the first read: the
			// stored count is reset with the cursor, which is saved in
			// the background.
			w.failures, w.read = k.Failures, true
		}
		if k.Paused {
			w.closeDest()
			w.failures, w.permanent = 0, 0
			w.report(ctx, k, -1)
			w.sleep(ctx, e.cfg.RefreshInterval)
			continue
		}
		if !e.mayDeliver(ctx, w.org, w.id) {
			w.sleep(ctx, e.cfg.PollInterval)
			continue
		}
		wait, err := w.step(ctx, k)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.fail(ctx, k, err)
			continue
		}
		if wait > 0 {
			w.sleep(ctx, wait)
		}
	}
}

// step delivers at most one batch of k. It returns how long to wait before
// the next step (0: go on at once).
func (w *worker) step(ctx context.Context, k *veritrail.Sink) (time.Duration, error) {
	e := w.e
	head, _, err := e.store.LogHead(ctx, w.org)
	if err != nil {
		return 0, err
	}
	if e.cfg.Feed != nil {
		e.cfg.Feed.expect(w.org, head)
	}
	pending := head - 1 - k.Delivered
	if pending <= 0 {
		w.pendingSince = time.Time{}
		e.obs.SinkLag(w.orgName, w.id, 0, 0)
		return e.cfg.PollInterval, nil
	}
	set, err := w.settings(k)
	if err != nil {
		return 0, err
	}
	c := set.Config
	ahead := int64(MaxUnsavedBatches) * int64(c.Batch.MaxEvents)
	if _, ok := w.dest.(SavesBeforeNext); ok {
		ahead = 1
	}
	if w.cur.unsaved() >= ahead {
		// The saves fall far behind: wait for them rather than risk
		// delivering more again after a crash.
		w.cur.wait(e.cfg.PollInterval)
		return 0, nil
	}
	// Batching by time: a batch that is not full yet waits until MaxWait
	// passed since events became pending.
	if pending < int64(c.Batch.MaxEvents) && c.Batch.MaxWait > 0 {
		now := e.now()
		if w.pendingSince.IsZero() {
			w.pendingSince = now
		}
		if left := time.Duration(c.Batch.MaxWait) - now.Sub(w.pendingSince); left > 0 {
			w.report(ctx, k, head)
			return min(left, e.cfg.PollInterval), nil
		}
	}
	batch, to, err := w.collect(ctx, k, c, head)
	if err != nil {
		return 0, err
	}
	if len(batch.Records) > 0 {
		if w.dest == nil {
			f := e.cfg.Types[k.Type]
			if f == nil {
				return 0, Permanentf("sink type %s is not part of this build", k.Type)
			}
			if w.dest, err = f(set); err != nil {
				return 0, err
			}
		}
		start := time.Now()
		sctx, cancel := context.WithTimeout(ctx, e.cfg.SendTimeout)
		err = w.dest.Send(sctx, batch)
		cancel()
		if err != nil {
			return 0, err
		}
		e.obs.SinkDelivered(w.orgName, w.id, len(batch.Records), batch.Bytes(), time.Since(start))
	}
	if to <= k.Delivered {
		return 0, fmt.Errorf("forwarding: a batch after seq %d ended at %d", k.Delivered, to)
	}
	// Acknowledged: saved in the background, while the next batch goes.
	w.cur.acknowledged(ctx, k.Delivered, to)
	if w.failures > 0 {
		w.log.Info("forwarding resumed", slog.Int("after_failures", w.failures))
	}
	w.failures, w.permanent, w.pendingSince = 0, 0, time.Time{}
	k.Delivered = to
	w.report(ctx, k, head)
	return 0, nil
}

// collect reads the events after k's cursor, up to head (exclusive), that
// pass the sink's filters, into a batch within the sink's limits. It
// returns the new cursor: the last record's seq, or head-1 when every
// matching event below head is in the batch (filtered-out events are
// passed over).
func (w *worker) collect(ctx context.Context, k *veritrail.Sink, c *Config, head int64) (*Batch, int64, error) {
	b := &Batch{Org: w.orgName, SinkID: w.id, Records: make([]Record, 0, min(c.Batch.MaxEvents, veritrail.MaxLimit))}
	q := &veritrail.Query{Order: veritrail.OrderSeq, Filters: c.filters(), WithContent: c.Content,
		Limit: min(c.Batch.MaxEvents, veritrail.MaxLimit)}
	q.After = &veritrail.Cursor{Order: veritrail.OrderSeq, Seq: k.Delivered, Fingerprint: q.Fingerprint()}
	size := 0
	if feed := w.e.cfg.Feed; feed != nil {
		evs, ok, soon := feed.after(w.org, k.Delivered, head, q.Limit)
		if soon && feed.waitFor(w.org, k.Delivered+1, HandOffWait) {
			// Committed, not yet handed over: a moment, not a query.
			evs, ok, _ = feed.after(w.org, k.Delivered, head, q.Limit)
		}
		if ok && (!c.Content || w.e.now().Sub(evs[0].ev.ReceivedAt) < feed.ContentAge) {
			return w.collectFresh(b, c, q, evs, size)
		}
	}
	for {
		page, err := w.e.store.Query(ctx, w.org, q)
		if err != nil {
			return nil, 0, err
		}
		for i := range page.Events {
			ev := &page.Events[i]
			if ev.Seq >= head {
				return b, head - 1, nil
			}
			if done, to, err := w.add(b, c, ev, &size); err != nil || done {
				return b, to, err
			}
		}
		if len(page.Events) < q.Limit || page.Next == nil {
			return b, head - 1, nil
		}
		q.After = page.Next
	}
}

// collectFresh is collect over events handed over by the feed (in seq
// order, the first right after the cursor, none at or past the head, the
// oldest committed less than the feed's ContentAge ago if the sink
// forwards content): the records are made from the envelopes rebuilt from
// the events, and their content, as the store would return them, once
// for every sink of the organization that forwards them alike.
func (w *worker) collectFresh(b *Batch, c *Config, q *veritrail.Query, evs []*fresh, size int) (*Batch, int64, error) {
	for _, f := range evs {
		if !q.Match(f.ev) {
			continue
		}
		r, err := f.record(c.Format, w.orgName, c.Content)
		if err != nil {
			return b, 0, err
		}
		if done, to := w.addRecord(b, c, r, &size); done {
			return b, to, nil
		}
	}
	return b, evs[len(evs)-1].ev.Seq, nil
}

// add formats ev into b, whose records' bodies hold *size bytes, unless
// that would pass the sink's byte limit. done is true when the batch is
// complete (or err is set), with the cursor it ends at: the last record's
// seq.
func (w *worker) add(b *Batch, c *Config, ev *veritrail.StoredEvent, size *int) (done bool, cursor int64, err error) {
	r, err := FormatRecord(c.Format, w.orgName, ev, c.Content)
	if err != nil {
		return true, 0, err
	}
	done, cursor = w.addRecord(b, c, r, size)
	return done, cursor, nil
}

// addRecord is add of a formatted record.
func (w *worker) addRecord(b *Batch, c *Config, r Record, size *int) (done bool, cursor int64) {
	if len(b.Records) > 0 && *size+len(r.Body) > c.Batch.MaxBytes {
		return true, b.Records[len(b.Records)-1].Seq
	}
	b.Records = append(b.Records, r)
	*size += len(r.Body)
	return len(b.Records) >= c.Batch.MaxEvents, r.Seq
}

// fail records a failed step and waits out the backoff.
func (w *worker) fail(ctx context.Context, k *veritrail.Sink, err error) {
	e := w.e
	w.closeDest() // reconnect (and reopen the secret or reread its file) next time
	w.failures++
	perm := IsPermanent(err)
	if perm {
		w.permanent++
	} else {
		w.permanent = 0
	}
	msg := truncate(strings.ToValidUTF8(err.Error(), "?"), 500) // stored as text
	pause := perm && w.permanent >= e.cfg.PauseAfter
	e.obs.SinkFailed(w.orgName, w.id, perm)
	at := e.now().UTC()
	if serr := e.store.SinkFailed(ctx, w.org, w.id, veritrail.SinkFailure{Failures: w.failures, Error: msg, At: at, Pause: pause}); serr != nil && ctx.Err() == nil {
		w.log.Error("forwarding: record failure", slog.Any("err", serr))
	}
	w.report(ctx, k, -1)
	if pause {
		w.log.Warn("forwarding paused: the destination keeps refusing", slog.String("reason", msg), slog.Int("failures", w.failures))
		w.recordPause(ctx, k, msg)
		w.failures, w.permanent = 0, 0
		return
	}
	d := Backoff(e.cfg.MinBackoff, e.cfg.MaxBackoff, w.failures)
	w.log.Warn("forwarding failed; retrying", slog.String("err", msg), slog.Int("failures", w.failures),
		slog.Bool("permanent", perm), slog.Duration("retry_in", d))
	w.sleep(ctx, d)
}

// recordPause appends the automatic pause to the organization's log: a
// change to a sink, like an administrator's.
func (w *worker) recordPause(ctx context.Context, k *veritrail.Sink, reason string) {
	ev, err := veritrail.NewRecord(w.e.now(), "audit.sink_paused", veritrail.SystemActor("forwarding"),
		&veritrail.Target{Type: "sink", ID: k.ID, Name: k.Name}, veritrail.OutcomeFailure,
		map[string]any{"reason": reason, "failures": w.failures, "last_delivered_seq": k.Delivered})
	if err == nil {
		_, err = w.e.store.Append(ctx, w.org, []*veritrail.Event{ev})
	}
	if err != nil && ctx.Err() == nil {
		w.log.Error("forwarding: the pause was not recorded in the log", slog.Any("err", err))
	}
}

// Backoff is the wait after n failures in a row: lo·2^(n-1), capped at hi,
// with ±50% jitter so that many deliveries failing together do not retry
// together. Sinks and alert routes (notify) wait by it.
func Backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	j := time.Duration(float64(d) * (0.5 + rand.Float64()))
	return min(j, hi)
}

// report publishes k's lag; head < 0 means read it.
func (w *worker) report(ctx context.Context, k *veritrail.Sink, head int64) {
	lag, err := w.e.lag(ctx, k, head)
	if err == nil {
		w.e.obs.SinkLag(w.orgName, w.id, lag.Events, lag.Seconds)
	}
}

// Lag is how far a sink is behind its organization's log.
type Lag struct {
	Events  int64   // events after the cursor
	Seconds float64 // age of the oldest of them (since it was received)
}

// lag computes k's lag against head (read when < 0).
func (e *Engine) lag(ctx context.Context, k *veritrail.Sink, head int64) (Lag, error) {
	if head < 0 {
		var err error
		if head, _, err = e.store.LogHead(ctx, k.OrgID); err != nil {
			return Lag{}, err
		}
	}
	n := head - 1 - k.Delivered
	if n <= 0 {
		return Lag{}, nil
	}
	if feed := e.cfg.Feed; feed != nil {
		at, ok, soon := feed.receivedAt(k.OrgID, k.Delivered+1)
		if soon && feed.waitFor(k.OrgID, k.Delivered+1, HandOffWait) { // as in collect
			at, ok, _ = feed.receivedAt(k.OrgID, k.Delivered+1)
		}
		if ok {
			return Lag{Events: n, Seconds: max(0, e.now().Sub(at).Seconds())}, nil
		}
	}
	q := &veritrail.Query{Order: veritrail.OrderSeq, Limit: 1}
	q.After = &veritrail.Cursor{Order: veritrail.OrderSeq, Seq: k.Delivered, Fingerprint: q.Fingerprint()}
	page, err := e.store.Query(ctx, k.OrgID, q)
	if err != nil {
		return Lag{}, err
	}
	l := Lag{Events: n}
	if len(page.Events) > 0 {
		if ev, err := veritrail.ParseEnvelope(page.Events[0].Envelope); err == nil {
			l.Seconds = max(0, e.now().Sub(ev.ReceivedAt).Seconds())
		}
	}
	return l, nil
}

// truncate cuts s to at most n bytes, at a character's start so that the
// result stays valid UTF-8 (PostgreSQL refuses anything else), and marks
// the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
