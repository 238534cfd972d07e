package checkpoint

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// witnesses hands new checkpoints to witnesses with the C2SP tlog-witness
// add-checkpoint request: "old <size>", the consistency proof from that
// size, a blank line, and the signed checkpoint. A witness that is behind
// answers 409 with the size it knows, and the request is retried from
// there. Only the newest checkpoint of each log is kept pending, so an
// unreachable witness costs one request per round, not a backlog.
//
// Each organization's witnesses are the operator's (Config.Witnesses:
// handed every checkpoint, answers not kept) and those of its witness
// policy (settings witnessing: their cosignatures are verified with their
// keys and kept, and make checkpoints of record). The latest checkpoint is
// offered again every Config.WitnessRefresh, so that cosignatures stay
// fresh while a log is idle: a monitor reads their timestamps to tell a
// live log from a frozen view.
//
// A witness that refuses a checkpoint for a reason only a fork or a
// rollback explains (it cosigned a larger tree, or the consistency proof
// from the tree it cosigned fails) raises an alarm: an
// integrity.witness_refused event in the organization's log, once per
// spell of refusals, and the refusals metric on every one.
type witnesses struct {
	c    *Checkpointer
	urls []string

	mu      sync.Mutex
	pending map[wkey]*delivery
	known   map[wkey]int64 // the size each witness acknowledged last
	logged  map[wkey]logState
	refused map[wkey]bool // in a spell of refusals (alarm raised)
	offered map[int64]time.Time
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
	// key verifies the witness's cosignatures (a policy witness); nil:
	// the answer is not kept.
	key note.Verifier
	// again sends the checkpoint even to a witness that has its size, for
	// a fresh cosignature.
	again bool
}

type logState struct {
	ok bool
	at time.Time
}

// errRefused marks an answer that only a fork or a rollback explains.
var errRefused = errors.New("refused")

func newWitnesses(c *Checkpointer, urls []string) *witnesses {
	var clean []string
	for _, u := range urls {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
			clean = append(clean, u)
		}
	}
	return &witnesses{c: c, urls: clean, pending: map[wkey]*delivery{}, known: map[wkey]int64{},
		logged: map[wkey]logState{}, refused: map[wkey]bool{}, offered: map[int64]time.Time{},
		wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// WitnessVerifiers returns the verifiers of a policy's witnesses, in its
// order; an error names the witness whose key is not a cosignature key.
func WitnessVerifiers(p *veritrail.WitnessPolicy) ([]note.Verifier, error) {
	out := make([]note.Verifier, len(p.Witnesses))
	for i, w := range p.Witnesses {
		v, err := tlog.WitnessVerifier(w.Key)
		if err != nil {
			return nil, veritrail.Errorf(veritrail.EInvalid, "witnessing.witnesses[%d].key: %v", i, err)
		}
		out[i] = v
	}
	return out, nil
}

// offer makes cp the checkpoint pending for org's witnesses.
func (w *witnesses) offer(ctx context.Context, org *veritrail.Org, cp *veritrail.Checkpoint, again bool) {
	type target struct {
		url string
		key note.Verifier
	}
	var targets []target
	for _, u := range w.urls {
		targets = append(targets, target{url: u})
	}
	st, err := w.c.store.OrgSettings(ctx, org.ID)
	if err != nil {
		if ctx.Err() == nil {
			w.c.log.Error("witnessing: reading the organization's settings", slog.String("org", org.Name), slog.Any("err", err))
		}
	} else if len(st.Witnessing.Witnesses) > 0 {
		vs, err := WitnessVerifiers(&st.Witnessing)
		if err != nil {
			w.c.log.Error("witnessing: the witness policy holds a bad key", slog.String("org", org.Name), slog.Any("err", err))
		} else {
			for i, wt := range st.Witnessing.Witnesses {
				targets = append(targets, target{url: strings.TrimRight(wt.URL, "/"), key: vs[i]})
			}
		}
	}
	w.mu.Lock()
	w.offered[org.ID] = w.c.cfg.Now()
	if len(targets) == 0 {
		w.mu.Unlock()
		return
	}
	for _, t := range targets {
		k := wkey{org.ID, t.url}
		if p := w.pending[k]; p == nil || p.cp.Size < cp.Size || again {
			w.pending[k] = &delivery{org: org, cp: cp, key: t.key, again: again}
		}
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// stale reports whether org's checkpoints were last offered longer ago
// than the refresh interval.
func (w *witnesses) stale(org int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := w.offered[org]
	return !ok || w.c.cfg.Now().Sub(at) >= w.c.cfg.WitnessRefresh
}

func (w *witnesses) start(ctx context.Context) {
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
		if ctx.Err() != nil {
			return
		}
		w.c.obs.Witnessed(k.url, err == nil)
		w.record(ctx, k, d, err)
		w.alarm(ctx, k, d, err)
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
// failure, and while nothing changes at most one row a minute, or an hour
// while the witness keeps failing: an outage of days adds a few dozen
// rows, not one per attempt (the metric counts every attempt).
func (w *witnesses) record(ctx context.Context, k wkey, d *delivery, err error) {
	now := time.Now()
	w.mu.Lock()
	last, seen := w.logged[k]
	ok := err == nil
	every := time.Minute
	if !ok {
		every = time.Hour
	}
	if seen && last.ok == ok && now.Sub(last.at) < every {
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

// alarm counts a refusal and, at the start of a spell of refusals,
// records it in the organization's log. The record grows the log, and the
// witness will likely refuse the next checkpoint too: one record per
// spell keeps that from feeding itself.
func (w *witnesses) alarm(ctx context.Context, k wkey, d *delivery, err error) {
	refused := errors.Is(err, errRefused)
	w.mu.Lock()
	already := w.refused[k]
	if refused {
		w.refused[k] = true
	} else if err == nil {
		delete(w.refused, k)
	}
	w.mu.Unlock()
	if !refused {
		return
	}
	w.c.obs.WitnessRefused(k.url)
	w.c.log.Error("a witness refused the log's checkpoint: the log may have been forked or rolled back",
		slog.String("witness", k.url), slog.String("org", d.org.Name), slog.Int64("size", d.cp.Size), slog.Any("err", err))
	if already {
		return
	}
	e, rerr := veritrail.NewRecord(w.c.cfg.Now(), "integrity.witness_refused", veritrail.SystemActor("witnessing"),
		&veritrail.Target{Type: "witness", ID: k.url}, veritrail.OutcomeFailure,
		map[string]any{"witness": k.url, "checkpoint_size": d.cp.Size, "reason": err.Error()})
	if rerr == nil {
		_, rerr = w.c.store.Append(ctx, k.org, []*veritrail.Event{e})
	}
	if rerr != nil && ctx.Err() == nil {
		w.c.log.Error("recording a witness's refusal in the log", slog.Any("err", rerr))
	}
}

func (w *witnesses) deliver(ctx context.Context, k wkey, d *delivery) error {
	w.mu.Lock()
	old := w.known[k]
	w.mu.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		if old > d.cp.Size {
			return fmt.Errorf("%w: the witness cosigned a tree of size %d, larger than this checkpoint's %d", errRefused, old, d.cp.Size)
		}
		if old == d.cp.Size && !d.again && d.key == nil {
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
			if d.key == nil {
				return nil
			}
			return w.keep(ctx, k, d, msg)
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
		case http.StatusUnprocessableEntity:
			// The proof from the size the witness cosigned does not lead
			// to this checkpoint: the witness holds another tree.
			w.mu.Lock()
			delete(w.known, k) // ask again from what it says next time
			w.mu.Unlock()
			return fmt.Errorf("%w: the witness found this checkpoint inconsistent with the tree of size %d it cosigned (%s)", errRefused, old, strings.TrimSpace(string(msg)))
		default:
			return fmt.Errorf("witness answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
		}
	}
	return fmt.Errorf("witness kept answering 409")
}

// keep verifies a witness's answer (cosignature lines) against the
// checkpoint and stores the line its key made.
func (w *witnesses) keep(ctx context.Context, k wkey, d *delivery, answer []byte) error {
	for _, line := range strings.SplitAfter(string(answer), "\n") {
		if !strings.HasPrefix(line, "— ") || !strings.HasSuffix(line, "\n") {
			continue
		}
		at, ok := tlog.VerifyCosignature(d.cp.Note, []byte(line), d.key)
		if !ok {
			continue
		}
		return w.c.store.AddCosignature(ctx, k.org, &veritrail.Cosignature{Size: d.cp.Size, KeyName: d.key.Name(), Line: []byte(line), At: at})
	}
	return fmt.Errorf("the witness answered without a cosignature by its key %s", d.key.Name())
}
