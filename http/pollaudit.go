package http

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// Quiet polling. Every read of the log is recorded in the log, so a poller
// that reads until an empty page would never get one: each page it reads
// adds the record the next page returns. Repeated reads are therefore
// recorded per reader and window, not one by one:
//
//   - A reader is a token (or console session) reading one endpoint with
//     the same parameters, the cursor (or Miro's offset) aside: a poller
//     walking its cursor.
//   - Its first read in a window of PollRecordInterval is recorded before
//     it is answered, as every read is; that record also carries the count,
//     results and seq range of the reader's reads coalesced since its
//     previous record ("repeated").
//   - Its further reads within the window are answered without a record of
//     their own and counted; an idle reader's count is written once its
//     window has been over for another interval, and every count at
//     shutdown.
//   - Reads that return content are recorded one by one, always; the
//     details of audit.query records (kept as their content) do not count
//     as content here, or a reader of its own records would never be quiet.
//
// A drain-until-empty poller thus stops: the page after a recorded read
// returns that record, and the page after that is empty. The trade-off:
// a coalesced read is answered before it is written down, so a crash
// loses the counts of at most the last two windows of each reader — never
// the fact that it read (its first read of every window is in the log
// before any answer of that window), and never a read of content.

// DefaultPollRecordInterval is the window of coalesced reads when
// Config.PollRecordInterval is 0.
const DefaultPollRecordInterval = time.Minute

// maxPollReaders bounds the readers kept in memory; beyond it, reads are
// recorded one by one.
const maxPollReaders = 10000

// pollKey is a reader.
type pollKey struct {
	org    int64
	reader string // the token, or the console session
	read   string // endpoint and parameters, without the cursor
}

// pollCount sums coalesced reads.
type pollCount struct {
	reads, results      int
	firstSeq, lastSeq   int64 // of the events returned, when results > 0
	firstRead, lastRead time.Time
}

func (c *pollCount) add(o pollCount) {
	if o.reads == 0 {
		return
	}
	if c.reads == 0 {
		*c = o
		return
	}
	switch {
	case o.results == 0:
	case c.results == 0:
		c.firstSeq, c.lastSeq = o.firstSeq, o.lastSeq
	default:
		c.firstSeq, c.lastSeq = min(c.firstSeq, o.firstSeq), max(c.lastSeq, o.lastSeq)
	}
	c.reads += o.reads
	c.results += o.results
	if o.firstRead.Before(c.firstRead) {
		c.firstRead = o.firstRead
	}
	if o.lastRead.After(c.lastRead) {
		c.lastRead = o.lastRead
	}
}

// details is the "repeated" member of a record.
func (c *pollCount) details() map[string]any {
	d := map[string]any{"reads": c.reads, "results": c.results,
		"first_read": c.firstRead.UTC().Format(time.RFC3339Nano), "last_read": c.lastRead.UTC().Format(time.RFC3339Nano)}
	if c.results > 0 {
		d["first_seq"], d["last_seq"] = c.firstSeq, c.lastSeq
	}
	return d
}

// pollReader is a reader's window and what it read since its last record.
type pollReader struct {
	start   time.Time // of the window; zero: the next read is recorded
	pending pollCount
	// of the reader's last read, for the record of an idle reader: the
	// actor, the request's context, and the details' parameters and
	// endpoint (values no one changes once made)
	actor            veritrail.Actor
	context          *veritrail.Context
	params, endpoint any
}

type pollReaders struct {
	interval time.Duration
	mu       sync.Mutex
	readers  map[pollKey]*pollReader
}

// auditQuery records a read of events (type audit.query, with details),
// coalescing a reader's repeated reads that return no content.
func (s *Server) auditQuery(ctx context.Context, r *http.Request, p *veritrail.Principal, page *veritrail.Page, details map[string]any) error {
	now := s.now()
	read := pollCount{reads: 1, results: len(page.Events), firstRead: now, lastRead: now}
	if read.results > 0 {
		read.firstSeq, read.lastSeq = seqRange(page)
		details["first_seq"], details["last_seq"] = read.firstSeq, read.lastSeq
	}
	if s.polls == nil || readsContent(page) {
		return s.audit(ctx, r, p, "audit.query", nil, details)
	}
	vals := r.URL.Query()
	vals.Del("cursor")
	vals.Del("offset") // Miro's older paging
	reader := p.TokenID
	if p.SessionID != "" {
		reader = "session " + p.SessionID
	}
	key := pollKey{org: p.OrgID, reader: reader, read: r.URL.Path + "?" + vals.Encode()}
	// What an idle reader's record needs, made before the lock: every
	// reader's read takes it, so it holds only map work and sums.
	actor, rctx, params, endpoint := actorOf(p), requestContext(r), details["parameters"], details["endpoint"]
	pr := s.polls
	pr.mu.Lock()
	rd := pr.readers[key]
	if rd == nil && len(pr.readers) >= maxPollReaders {
		pr.mu.Unlock()
		return s.audit(ctx, r, p, "audit.query", nil, details)
	}
	if rd == nil {
		rd = &pollReader{}
		pr.readers[key] = rd
	}
	rd.actor, rd.context, rd.params, rd.endpoint = actor, rctx, params, endpoint
	if !rd.start.IsZero() && now.Before(rd.start.Add(pr.interval)) {
		rd.pending.add(read)
		pr.mu.Unlock()
		return nil
	}
	carried := rd.pending
	rd.start, rd.pending = now, pollCount{}
	pr.mu.Unlock()

	if carried.reads > 0 {
		details["repeated"] = carried.details()
	}
	if err := s.audit(ctx, r, p, "audit.query", nil, details); err != nil {
		// Not recorded, so not answered: the next read must be recorded,
		// and what this record would have carried is still owed.
		pr.mu.Lock()
		rd.start = time.Time{}
		rd.pending.add(carried)
		pr.mu.Unlock()
		return err
	}
	return nil
}

// seqRange is the least and greatest seq of a page that is not empty.
func seqRange(page *veritrail.Page) (first, last int64) {
	first, last = page.Events[0].Seq, page.Events[0].Seq
	for _, ev := range page.Events[1:] {
		first, last = min(first, ev.Seq), max(last, ev.Seq)
	}
	return first, last
}

// readsContent reports whether a page returns content other than the
// details of records of reads (audit.query), which are what a poller
// reading its own records gets.
func readsContent(page *veritrail.Page) bool {
	for _, ev := range page.Events {
		if len(ev.Content) == 0 {
			continue
		}
		read := false
		veritrail.ScanEnvelopeIndex(ev.Envelope, func(f veritrail.Field, key []byte) {
			if f == veritrail.FieldType && string(key) == "audit.query" {
				read = true
			}
		})
		if !read {
			return true
		}
	}
	return false
}

// flushPolls writes the counts of readers whose window has been over for
// another interval (all of them when all is set) and forgets idle readers.
// A count that cannot be written is kept for the next flush; at the last
// one (all), it is logged instead.
func (s *Server) flushPolls(all bool) {
	pr := s.polls
	now := s.now()
	type owed struct {
		key pollKey
		rd  pollReader
	}
	var due []owed
	pr.mu.Lock()
	for k, rd := range pr.readers {
		if !all && now.Before(rd.start.Add(2*pr.interval)) {
			continue
		}
		if rd.pending.reads > 0 {
			due = append(due, owed{k, *rd})
		}
		delete(pr.readers, k)
	}
	pr.mu.Unlock()
	// One bound for the whole flush (with the commit queue's own bound on
	// a commit behind it): a database that stopped answering must not hold
	// the flush, nor shutdown, for a store timeout per reader.
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
	defer cancel()
	for _, o := range due {
		d := map[string]any{"parameters": o.rd.params, "repeated": o.rd.pending.details()}
		if o.rd.endpoint != nil {
			d["endpoint"] = o.rd.endpoint
		}
		e, err := veritrail.NewRecord(now, "audit.query", o.rd.actor, nil, veritrail.OutcomeSuccess, d)
		if err == nil {
			e.Context = o.rd.context
			_, err = s.store.Append(ctx, o.key.org, []*veritrail.Event{e})
		}
		if err == nil {
			continue
		}
		if all {
			s.log.Error("reads could not be recorded in the audit trail", slog.Int64("org", o.key.org), slog.String("reader", o.key.reader),
				slog.Int("reads", o.rd.pending.reads), slog.Int64("first_seq", o.rd.pending.firstSeq), slog.Int64("last_seq", o.rd.pending.lastSeq), slog.Any("err", err))
			continue
		}
		s.log.Warn("coalesced reads not recorded yet; retrying", slog.Int("reads", o.rd.pending.reads), slog.Any("err", err))
		pr.mu.Lock()
		if rd := pr.readers[o.key]; rd != nil {
			rd.pending.add(o.rd.pending)
		} else {
			rd := o.rd
			rd.start = time.Time{}
			pr.readers[o.key] = &rd
		}
		pr.mu.Unlock()
	}
}

// flushPollsLoop runs flushPolls every interval until Shutdown, and once
// more, for all readers, then.
func (s *Server) flushPollsLoop() {
	defer close(s.pollsDone)
	if s.polls == nil {
		<-s.stop
		return
	}
	tick := time.NewTicker(s.polls.interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			s.flushPolls(false)
		case <-s.stop:
			s.flushPolls(true)
			return
		}
	}
}
