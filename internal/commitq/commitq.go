// Package commitq is the group-commit queue both storage engines append
// through: Append calls wait in a queue, a commit lane takes everything
// waiting and hands it to the engine as one batch, and every caller gets
// its own verdict once the batch is durable. The engine only writes a
// batch (Writer); how ids are claimed, seqs assigned, envelopes sealed and
// the Merkle log extended is written once, in Assign.
//
// # Lanes
//
// A queue has one or more commit lanes. Each lane is one goroutine with its
// own writer that runs one batch (or job) at a time; every organization
// belongs to exactly one lane (Lane), so its requests are never written by
// two lanes at once. One lane is a single writer (the embedded store); more
// lanes let organizations commit in parallel where the database can take
// concurrent writers (PostgreSQL).
//
// # Contract
//
// Queue and Writer together MUST guarantee, and the engines' tests check:
//
//   - Durability before the answer: Append returns results only after the
//     batch holding its request is committed and synced. A request whose
//     batch failed is answered with an error and nothing of it is stored.
//   - All or nothing per request: a request is stored whole or refused
//     whole (its error says why); refusing one request MUST NOT refuse the
//     others of its batch.
//   - Order: the requests of one lane are written in the order they were
//     queued, so the events of one organization get seqs in that order.
//   - Gap-free seqs: each organization's new events get the seqs following
//     its log's size, one after the other, and the leaf at seq n of its
//     Merkle log is event n's envelope, in the same transaction. A refused
//     request, or a duplicate event, consumes no seq.
//   - Closing drains acknowledged work: after Close starts, Append and Do
//     refuse new work (EUnavailable), and every request already queued is
//     committed (or refused) and answered before Close returns.
//
// A lane SHOULD put as many waiting requests into one batch as fit under
// MaxBatchEvents, so that one transaction (one fsync) serves them all.
package commitq

import (
	"context"
	"log/slog"
	"sync"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// Request is one Append call: events of one organization, stored all
// together or not at all.
type Request struct {
	Org    int64
	Events []*veritrail.Event
	// Results and Err are the verdict, set by the writer (Assign): one
	// result per event on success, or the error that refuses the request.
	Results []veritrail.AppendResult
	Err     error
	// KeepEnvelopes asks Assign to keep each new event's envelope on the
	// event (veritrail.Event.KeepEnvelope); the queue sets it from
	// Config.KeepEnvelopes before the batch is written.
	KeepEnvelopes bool

	done chan struct{}
}

// Writer is an engine's side of one lane.
type Writer interface {
	// WriteBatch writes batch in one transaction and returns how many new
	// events it stored. It MUST commit durably before it returns nil. It
	// sets each request's Results or, to refuse that request alone, its
	// Err (Assign does both). If it returns an error, nothing of the batch
	// may be stored, and the writer MUST forget anything it cached from
	// the failed transaction (log heads are reloaded from what is durable).
	// The queue answers every request of a failed batch that carries no
	// Err of its own with that error.
	WriteBatch(ctx context.Context, batch []*Request) (stored int, err error)
}

// Idler is a Writer with deferred work of its own (the SQLite store's
// postings tail) that its lane runs when it has nothing else to do, so
// that the work is not in a batch whose requests wait for it.
//
// After each batch or job the lane calls Idle whenever no request and no
// job is waiting, until Idle reports that nothing more remains; a request
// or job that arrives meanwhile is taken first, and Idle is called again
// after it. Idle runs on the lane like a job (no batch of the lane is being
// written), so one call SHOULD be short: requests that arrive during it
// wait for it. Idle MUST leave the writer consistent whatever it returns
// (an error is its own to log). It is never called once Close has
// started; work it leaves then is the writer's to finish.
type Idler interface {
	Idle(ctx context.Context) (more bool)
}

// Config configures a Queue.
type Config struct {
	// MaxBatchEvents stops a lane adding requests to a batch once it holds
	// this many events; a single larger request is still one batch.
	MaxBatchEvents int
	// Depth is how many requests may wait per lane before Append blocks.
	// Default 1024.
	Depth int
	// Observer receives queue lengths and commit measurements. Optional.
	Observer veritrail.Observer
	// Logger receives failed commits. Default slog.Default().
	Logger *slog.Logger
	// CommitTimeout bounds one batch's transaction, so that a database
	// that stops answering fails the batch (its requests get EUnavailable)
	// instead of holding every caller. 0: no bound (an embedded store,
	// whose disk the process waits on anyway).
	CommitTimeout time.Duration
	// Committed receives each durable batch's new events. Optional.
	Committed veritrail.Committed
	// KeepEnvelopes reports whether the new events of an organization
	// should carry their envelopes to Committed (a subscriber forwards
	// them). Optional: none are kept without it.
	KeepEnvelopes func(org int64) bool
}

// Queue is a group-commit queue with one or more commit lanes.
type Queue struct {
	cfg   Config
	lanes []*lane

	mu      sync.RWMutex // held for reading while work is handed to a lane
	closed  bool
	closing chan struct{}
	wg      sync.WaitGroup
}

type lane struct {
	w    Writer
	reqs chan *Request
	jobs chan *job
}

// job is work other than an append that needs a lane to itself.
type job struct {
	run  func(ctx context.Context) error
	err  error
	done chan struct{}
}

// New starts a queue with one lane per writer; each writer is used only
// by its lane's goroutine.
func New(cfg Config, writers ...Writer) *Queue {
	if len(writers) == 0 {
		panic("commitq: a queue needs at least one writer")
	}
	if cfg.MaxBatchEvents <= 0 {
		cfg.MaxBatchEvents = 10000
	}
	if cfg.Depth <= 0 {
		cfg.Depth = 1024
	}
	if cfg.Observer == nil {
		cfg.Observer = veritrail.NopObserver{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	q := &Queue{cfg: cfg, closing: make(chan struct{})}
	for _, w := range writers {
		l := &lane{w: w, reqs: make(chan *Request, cfg.Depth), jobs: make(chan *job)}
		q.lanes = append(q.lanes, l)
		q.wg.Add(1)
		go q.run(l)
	}
	return q
}

// Lanes is the number of commit lanes.
func (q *Queue) Lanes() int { return len(q.lanes) }

// Lane returns the lane that writes org's requests: organization ids are
// spread over the lanes by remainder, so a given organization always has
// the same lane.
func (q *Queue) Lane(org int64) int { return int(uint64(org) % uint64(len(q.lanes))) }

// ClosedError is the error of work refused because the store is closing
// or was opened without a commit loop.
func ClosedError() error {
	return veritrail.Errorf(veritrail.EUnavailable, "the store is closed; retry against a running server")
}

// Append queues events of org and waits for the verdict: one result per
// event, or the error that refused them all. If ctx ends before the
// request is queued, Append returns ctx's error and nothing is stored;
// once queued, it waits for the verdict whatever ctx does, so that no
// caller is told an event was lost when it was stored.
func (q *Queue) Append(ctx context.Context, org int64, events []*veritrail.Event) ([]veritrail.AppendResult, error) {
	if len(events) == 0 {
		return nil, nil
	}
	r := &Request{Org: org, Events: events, done: make(chan struct{})}
	l := q.lanes[q.Lane(org)]
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return nil, ClosedError()
	}
	select {
	case l.reqs <- r:
	case <-ctx.Done():
		q.mu.RUnlock()
		return nil, ctx.Err()
	}
	q.mu.RUnlock()
	<-r.done
	return r.Results, r.Err
}

// Do runs fn on org's lane, between two batches: no batch of that lane is
// being written while fn runs, so fn may change what the lane's writer
// caches, and it sees every batch written before. Like Append it refuses
// when the queue is closing, and waits for fn once fn was handed over.
func (q *Queue) Do(ctx context.Context, org int64, fn func(ctx context.Context) error) error {
	j := &job{run: fn, done: make(chan struct{})}
	l := q.lanes[q.Lane(org)]
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return ClosedError()
	}
	select {
	case l.jobs <- j:
	case <-ctx.Done():
		q.mu.RUnlock()
		return ctx.Err()
	}
	q.mu.RUnlock()
	<-j.done
	return j.err
}

// Close refuses new work, lets every lane write what was queued, and
// returns once all lanes have stopped. Calling it again waits the same way.
func (q *Queue) Close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.closing)
	}
	q.mu.Unlock()
	q.wg.Wait()
}

// run is a lane's loop: a job alone, or a batch of every request waiting;
// when neither waits, the writer's idle work (Idler).
func (q *Queue) run(l *lane) {
	defer q.wg.Done()
	var batch []*Request
	idler, _ := l.w.(Idler)
	idle := false // the idler may have work
	for {
		if idle {
			// Take waiting work first; with none, one piece of idle work.
			// (The select below is this one without the default: Go has
			// no conditional default.)
			select {
			case j := <-l.jobs:
				q.job(j)
			case r := <-l.reqs:
				batch = q.batch(l, batch, r)
			case <-q.closing:
				q.drain(l, batch)
				return
			default:
				idle = idler.Idle(context.Background())
				continue
			}
		} else {
			select {
			case j := <-l.jobs:
				q.job(j)
			case r := <-l.reqs:
				batch = q.batch(l, batch, r)
			case <-q.closing:
				q.drain(l, batch)
				return
			}
		}
		idle = idler != nil
	}
}

// job runs a job on the lane.
func (q *Queue) job(j *job) {
	j.err = j.run(context.Background())
	close(j.done)
}

// batch commits r and the requests waiting behind it, and returns the
// batch slice for reuse.
func (q *Queue) batch(l *lane, batch []*Request, r *Request) []*Request {
	batch = q.fill(l, append(batch[:0], r))
	q.commit(l, batch)
	clear(batch) // let answered requests be collected
	return batch
}

// drain commits what is queued once Close has started. Close took the
// lock, so nobody is handing work over now and nobody will again.
func (q *Queue) drain(l *lane, batch []*Request) {
	for {
		batch = q.fill(l, batch[:0])
		if len(batch) == 0 {
			return
		}
		q.commit(l, batch)
	}
}

// fill adds waiting requests to batch, without waiting, while it holds
// fewer than MaxBatchEvents events.
func (q *Queue) fill(l *lane, batch []*Request) []*Request {
	n := 0
	for _, r := range batch {
		n += len(r.Events)
	}
	for n < q.cfg.MaxBatchEvents {
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
			n += len(r.Events)
		default:
			return batch
		}
	}
	return batch
}

// commit has the lane's writer write batch and answers every request.
func (q *Queue) commit(l *lane, batch []*Request) {
	waiting := 0
	for _, o := range q.lanes {
		waiting += len(o.reqs)
	}
	q.cfg.Observer.Queued(waiting)
	if keep := q.cfg.KeepEnvelopes; keep != nil {
		var org int64
		var want bool
		for i, r := range batch {
			if i == 0 || r.Org != org {
				org, want = r.Org, keep(r.Org)
			}
			r.KeepEnvelopes = want
		}
	}
	start := time.Now()
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if q.cfg.CommitTimeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, q.cfg.CommitTimeout)
	}
	stored, err := l.w.WriteBatch(ctx, batch)
	cancel()
	if err != nil {
		q.cfg.Logger.Error("commit failed", slog.Any("err", err), slog.Int("requests", len(batch)))
		for _, r := range batch {
			if r.Err != nil {
				continue // refused on its own account
			}
			r.Results = nil
			r.Err = failedBatch(err)
		}
	}
	q.cfg.Observer.CommitDone(len(batch), stored, time.Since(start), err)
	if err == nil && stored > 0 && q.cfg.Committed != nil {
		handOver(batch, q.cfg.Committed)
	}
	for _, r := range batch {
		close(r.done)
	}
}

// failedBatch is the error of a request whose batch failed with err. A
// commit that timed out or lost its connection may still have been
// committed, so the client is told to retry with the same ids: a stored
// event is then answered as a duplicate, a lost one stored.
func failedBatch(err error) error {
	if veritrail.ErrorCode(err) != veritrail.EInternal {
		return err
	}
	if f := veritrail.FaultOf(err); f != nil && f.Code == veritrail.EInsufficientStorage {
		return veritrail.Errorf(veritrail.EInsufficientStorage, "the server's storage is full, so the events were not stored; retry with the same ids once space is freed")
	}
	return veritrail.Errorf(veritrail.EUnavailable, "the events could not be committed; retry with the same ids")
}

// handOver gives committed the new events of a durable batch, one call per
// run of requests of one organization (their events' seqs follow each
// other: requests of a lane are written in order). Refused requests and
// duplicates are left out.
func handOver(batch []*Request, committed veritrail.Committed) {
	var org int64
	var evs []*veritrail.Event
	for _, r := range batch {
		if r.Err != nil {
			continue
		}
		if len(evs) > 0 && r.Org != org {
			committed(org, evs)
			evs = nil
		}
		org = r.Org
		for i, e := range r.Events {
			if i < len(r.Results) && !r.Results[i].Duplicate {
				evs = append(evs, e)
			}
		}
	}
	if len(evs) > 0 {
		committed(org, evs)
	}
}
