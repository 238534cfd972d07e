package checkpoint

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// witnesses hands new checkpoints to witnesses with the C2SP tlog-witness
// add-checkpoint request: "old <size>", the consistency proof from that
// size, a blank line, and the signed checkpoint. A witness that is behind
// or ahead answers 409 with the size it knows, and the request is retried
// from there. Only the newest checkpoint of each log is kept pending, so an
// unreachable witness costs one request per round, not a backlog.
type witnesses struct {
	c    *Checkpointer
	urls []string

	mu      sync.Mutex
	pending map[wkey]*delivery
	known   map[wkey]int64 // the size each witness acknowledged last
	logged  map[wkey]logState
	wake    chan struct{}
	done    chan struct{}
}

type wkey struct {
	org int64
	url string
}

type delivery struct {
	org *veritrail.Org
	cp  *veritrail.Checkpoint
}

type logState struct {
	ok bool
	at time.Time
}

func newWitnesses(c *Checkpointer, urls []string) *witnesses {
	var clean []string
	for _, u := range urls {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
			clean = append(clean, u)
		}
	}
	return &witnesses{c: c, urls: clean, pending: map[wkey]*delivery{}, known: map[wkey]int64{},
		logged: map[wkey]logState{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (w *witnesses) offer(org *veritrail.Org, cp *veritrail.Checkpoint) {
	if len(w.urls) == 0 {
		return
	}
	w.mu.Lock()
	for _, u := range w.urls {
		k := wkey{org.ID, u}
		if p := w.pending[k]; p == nil || p.cp.Size < cp.Size {
			w.pending[k] = &delivery{org: org, cp: cp}
		}
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *witnesses) start(ctx context.Context) {
	if len(w.urls) == 0 {
		close(w.done)
		return
	}
	go func() {
		defer close(w.done)
		retry := time.NewTicker(5 * time.Second)
		defer retry.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			case <-retry.C:
			}
			w.deliverAll(ctx)
		}
	}()
}

func (w *witnesses) wait() { <-w.done }

func (w *witnesses) deliverAll(ctx context.Context) {
	w.mu.Lock()
	work := make(map[wkey]*delivery, len(w.pending))
	for k, d := range w.pending {
		work[k] = d
	}
	w.mu.Unlock()
	for k, d := range work {
		err := w.deliver(ctx, k, d)
		w.c.obs.Witnessed(k.url, err == nil)
		w.record(ctx, k, d, err)
		if err == nil {
			w.mu.Lock()
			if p := w.pending[k]; p == d {
				delete(w.pending, k)
			}
			w.mu.Unlock()
		}
	}
}

// record keeps the outcome in the store: every change between success and
// failure, and at most one row a minute while nothing changes.
func (w *witnesses) record(ctx context.Context, k wkey, d *delivery, err error) {
	now := time.Now()
	w.mu.Lock()
	last, seen := w.logged[k]
	ok := err == nil
	if seen && last.ok == ok && now.Sub(last.at) < time.Minute {
		w.mu.Unlock()
		return
	}
	w.logged[k] = logState{ok: ok, at: now}
	w.mu.Unlock()
	detail := "cosigned"
	if err != nil {
		detail = err.Error()
		w.c.log.Warn("witness did not take the checkpoint", slog.String("witness", k.url),
			slog.String("org", d.org.Name), slog.Int64("size", d.cp.Size), slog.Any("err", err))
	}
	if rerr := w.c.store.RecordWitness(ctx, k.org, d.cp.Size, k.url, ok, detail); rerr != nil && ctx.Err() == nil {
		w.c.log.Error("recording a witness result", slog.Any("err", rerr))
	}
}

func (w *witnesses) deliver(ctx context.Context, k wkey, d *delivery) error {
	w.mu.Lock()
	old := w.known[k]
	w.mu.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		if old > d.cp.Size {
			return fmt.Errorf("witness knows size %d, beyond checkpoint %d", old, d.cp.Size)
		}
		if old == d.cp.Size {
			return nil
		}
		proof, err := tlog.ConsistencyProof(ctx, TileReader(w.c.store, k.org), uint64(old), uint64(d.cp.Size))
		if err != nil {
			return fmt.Errorf("consistency proof %d→%d: %w", old, d.cp.Size, err)
		}
		var body bytes.Buffer
		fmt.Fprintf(&body, "old %d\n", old)
		for _, h := range proof {
			body.WriteString(base64.StdEncoding.EncodeToString(h))
			body.WriteByte('\n')
		}
		body.WriteByte('\n')
		body.Write(d.cp.Note)
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		req, err := http.NewRequestWithContext(rctx, http.MethodPost, k.url+"/add-checkpoint", &body)
		if err != nil {
			cancel()
			return err
		}
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		resp, err := w.c.cfg.Client.Do(req)
		if err != nil {
			cancel()
			return err
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		cancel()
		switch resp.StatusCode {
		case http.StatusOK:
			w.mu.Lock()
			w.known[k] = d.cp.Size
			w.mu.Unlock()
			return nil
		case http.StatusConflict:
			n, perr := strconv.ParseInt(strings.TrimSpace(string(msg)), 10, 64)
			if perr != nil {
				return fmt.Errorf("witness answered 409 without a size: %q", msg)
			}
			old = n
			w.mu.Lock()
			w.known[k] = n
			w.mu.Unlock()
			continue
		default:
			return fmt.Errorf("witness answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
		}
	}
	return fmt.Errorf("witness kept answering 409")
}
