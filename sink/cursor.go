package sink

import (
	"context"
	"log/slog"
	"sync"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// MaxUnsavedBatches bounds how many acknowledged batches a sink may send
// ahead of its saved cursor: what a crash may deliver again.
const MaxUnsavedBatches = 16

// cursorFlushWait bounds how long a stopping worker waits for its
// acknowledged cursor to be saved.
const cursorFlushWait = 5 * time.Second

// cursorWriter saves a sink's cursor off the delivery path. Saving is a
// durable write that waits for the store's writer, which ingest keeps busy
// (on SQLite one commit at a time, ~100 ms each at saturation): a worker
// that waited for it after every batch sent a batch per commit at most,
// fell behind the feed, and then read its events back from the store.
// Now the worker goes on with the next batch from its acknowledged cursor
// in memory while the latest acknowledged cursor is saved, several
// batches in one write.
//
// The cursor saved MUST be one the destination acknowledged (every event
// up to it delivered): acknowledged only hands over what Send returned
// nil for, in seq order. It only moves forward, by AdvanceSink's
// compare-and-set; a conflict (another node moved it) rereads the store
// and saves the acknowledged cursor only if it is still ahead.
type cursorWriter struct {
	w *worker

	mu      sync.Mutex
	saved   int64         // the cursor in the store, as last known
	acked   int64         // the latest acknowledged cursor (-2: none yet)
	writing bool          // a goroutine is saving
	idle    chan struct{} // closed when the goroutine stops; nil while none runs
}

func newCursorWriter(w *worker) *cursorWriter {
	return &cursorWriter{w: w, saved: -2, acked: -2}
}

// cursor returns the cursor to deliver from: stored (the sink's cursor as
// just read from the store) or the acknowledged one ahead of it.
func (c *cursorWriter) cursor(stored int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.saved = max(c.saved, stored) // it only moves forward
	return max(stored, c.acked)
}

// unsaved reports how many events are acknowledged but not saved yet.
func (c *cursorWriter) unsaved() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.acked <= c.saved {
		return 0
	}
	return c.acked - c.saved
}

// acknowledged records that every event up to `to` was delivered (from
// `from`, the cursor the batch was made after), and saves it in the
// background.
func (c *cursorWriter) acknowledged(ctx context.Context, from, to int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.saved < -1 {
		c.saved = from
	}
	c.acked = max(c.acked, to)
	if c.writing || c.acked <= c.saved {
		return
	}
	c.writing = true
	c.idle = make(chan struct{})
	go c.save(ctx)
}

// wait waits until nothing is left to save, or d passes.
func (c *cursorWriter) wait(d time.Duration) {
	c.mu.Lock()
	idle := c.idle
	c.mu.Unlock()
	if idle == nil {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	}
}

// save writes the latest acknowledged cursor until it is in the store.
// Its writes outlive live (the worker's context), so that a stopping
// worker keeps what was acknowledged; it gives up on a failed write once
// live ended: the cursor in the store is then behind, never ahead, and
// what follows it is delivered again.
func (c *cursorWriter) save(live context.Context) {
	w := c.w
	e := w.e
	ctx := context.WithoutCancel(live)
	for {
		c.mu.Lock()
		from, to := c.saved, c.acked
		if to <= from {
			c.writing = false
			close(c.idle)
			c.idle = nil
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		wctx, cancel := context.WithTimeout(ctx, e.cfg.SendTimeout)
		now := to
		err := e.store.AdvanceSink(wctx, w.org, w.id, from, to, e.now().UTC())
		if veritrail.ErrorCode(err) == veritrail.EConflict {
			// Moved under us (another node): reread, and save ours
			// only if it is still ahead.
			var k *veritrail.Sink
			if k, err = e.store.SinkByID(wctx, w.org, w.id); err == nil {
				now = k.Delivered
			}
		}
		cancel()
		switch {
		case err == nil:
			c.mu.Lock()
			c.saved = max(c.saved, now)
			c.mu.Unlock()
		case veritrail.ErrorCode(err) == veritrail.ENotFound:
			c.mu.Lock()
			c.acked = c.saved // deleted: nothing left to save
			c.mu.Unlock()
		default:
			if live.Err() != nil {
				c.mu.Lock()
				c.acked = c.saved
				c.mu.Unlock()
				continue
			}
			w.log.Error("forwarding: saving the cursor", slog.Any("err", err))
			time.Sleep(e.cfg.PollInterval)
		}
	}
}
