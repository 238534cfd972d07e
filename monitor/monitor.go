// Package monitor follows Veritrail logs from outside, as an auditor runs
// it (`veritrail monitor`): for each log it reads the checkpoint of record
// through the C2SP tlog-tiles layout (/tlog/{org}/checkpoint), checks the
// log's signature and the cosignatures its witness policy requires, and
// that the new tree extends the last one it kept (a consistency proof read
// from the tiles and checked with golang.org/x/mod/sumdb/tlog, which also
// checks every tile against the tree). It keeps the newest good
// checkpoint in a local state directory, so a restart resumes the
// comparison, and raises an alert on a fork (another tree under the same
// key), a rollback (a smaller tree than one it saw), a checkpoint that
// does not verify or is not witnessed as required, and a stall (no fresh
// witnessed checkpoint, or no answer, for longer than allowed).
//
// It trusts nothing the operator serves beyond what the keys verify: the
// log's key and the witnesses' keys come from its own configuration.
package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/veritrail/veritrail/client"
)

// Log is one log to follow.
type Log struct {
	// URL is the log's tlog-tiles base: https://host/tlog/{org}.
	URL string `json:"url"`
	// Key is the log's verifier key (signed-note), obtained from the
	// operator once and kept.
	Key string `json:"key"`
	// Token reads the log when its checkpoint and tiles are not public
	// (a token with auditlogs:read).
	Token string `json:"token,omitempty"`
	// Witnesses are the verifier keys of the witnesses whose cosignatures
	// count (Ed25519 cosignature/v1); Quorum of them must cosign.
	Witnesses []string `json:"witnesses,omitempty"`
	Quorum    int      `json:"quorum,omitempty"`
}

// Alert kinds.
const (
	AlertFork        = "fork"        // another tree under the log's key
	AlertRollback    = "rollback"    // a smaller tree than one already seen
	AlertBad         = "bad"         // a checkpoint or tiles that do not verify
	AlertUnwitnessed = "unwitnessed" // fewer cosignatures than the quorum
	AlertStall       = "stall"       // nothing fresh for longer than allowed
	AlertRecovered   = "recovered"   // a stall ended
)

// Alert is what the monitor reports.
type Alert struct {
	Kind   string    `json:"kind"`
	Log    string    `json:"log"`    // the log's origin
	URL    string    `json:"url"`    // where it was read
	Detail string    `json:"detail"` // what was found, in words
	At     time.Time `json:"at"`
	// Kept is the checkpoint the monitor held; Seen the one that raised
	// the alert (both signed notes, possibly empty).
	Kept string `json:"kept,omitempty"`
	Seen string `json:"seen,omitempty"`
}

// Config configures a Monitor.
type Config struct {
	Logs []Log
	// State is the directory where the last good checkpoint of each log
	// is kept (created 0700).
	State string
	// Interval between rounds; default one minute.
	Interval time.Duration
	// StallAfter: with a witness policy, the newest cosignature must be
	// younger than this; without, the log must answer with a good
	// checkpoint at least this often. Default one hour.
	StallAfter time.Duration
	// Alert delivers an alert (webhook, e-mail); it must not block long.
	Alert  func(ctx context.Context, a *Alert) error
	Client *http.Client
	Logger *slog.Logger
	Now    func() time.Time
}

// Monitor follows logs.
type Monitor struct {
	cfg  Config
	logs []*follower
}

type follower struct {
	Log
	log    *client.Log
	origin string

	mu      sync.Mutex
	raised  map[string]string // kind → what was alerted (not repeated)
	good    time.Time         // last good checkpoint read
	stalled bool
}

// kept is a log's state file.
type kept struct {
	Checkpoint string    `json:"checkpoint"`
	Size       uint64    `json:"size"`
	Root       []byte    `json:"root"`
	KeptAt     time.Time `json:"kept_at"`
}

// New checks the configuration and returns a monitor.
func New(cfg Config) (*Monitor, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.StallAfter <= 0 {
		cfg.StallAfter = time.Hour
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Alert == nil {
		cfg.Alert = func(context.Context, *Alert) error { return nil }
	}
	if len(cfg.Logs) == 0 {
		return nil, fmt.Errorf("no log to follow")
	}
	if err := os.MkdirAll(cfg.State, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	m := &Monitor{cfg: cfg}
	origins := map[string]bool{}
	for i, l := range cfg.Logs {
		v, err := note.NewVerifier(strings.TrimSpace(l.Key))
		if err != nil {
			return nil, fmt.Errorf("logs[%d].key: not a signed-note verifier key: %w", i, err)
		}
		if origins[v.Name()] {
			return nil, fmt.Errorf("logs[%d]: the log %s is listed twice", i, v.Name())
		}
		origins[v.Name()] = true
		f := &follower{Log: l, origin: v.Name(), raised: map[string]string{}, good: cfg.Now(),
			log: &client.Log{URL: l.URL, Key: l.Key, Token: l.Token, Witnesses: l.Witnesses, Quorum: l.Quorum, HTTP: cfg.Client}}
		for j, w := range l.Witnesses {
			if _, err := fnote.NewVerifierForCosignatureV1(strings.TrimSpace(w)); err != nil {
				return nil, fmt.Errorf("logs[%d].witnesses[%d]: not a cosignature verifier key: %w", i, j, err)
			}
		}
		if l.Quorum < 0 || l.Quorum > len(l.Witnesses) {
			return nil, fmt.Errorf("logs[%d].quorum: must be 0 to %d", i, len(l.Witnesses))
		}
		m.logs = append(m.logs, f)
	}
	return m, nil
}

// Run checks every log every Interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	tick := time.NewTicker(m.cfg.Interval)
	defer tick.Stop()
	for {
		m.Round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Round checks every log once and returns the alerts raised.
func (m *Monitor) Round(ctx context.Context) []*Alert {
	var out []*Alert
	for _, f := range m.logs {
		for _, a := range m.check(ctx, f) {
			a.Log, a.URL, a.At = f.origin, f.URL, m.cfg.Now().UTC()
			m.cfg.Logger.Error("log monitor alert", slog.String("kind", a.Kind), slog.String("log", a.Log), slog.String("detail", a.Detail))
			if err := m.cfg.Alert(ctx, a); err != nil {
				m.cfg.Logger.Error("delivering an alert", slog.String("log", a.Log), slog.Any("err", err))
			}
			out = append(out, a)
		}
	}
	return out
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (m *Monitor) statePath(f *follower) string {
	return filepath.Join(m.cfg.State, unsafeName.ReplaceAllString(f.origin, "_")+".json")
}

func (m *Monitor) load(f *follower) (*kept, error) {
	b, err := os.ReadFile(m.statePath(f))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var k kept
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("state file %s: %w", m.statePath(f), err)
	}
	return &k, nil
}

// save writes the state file atomically (rename).
func (m *Monitor) save(f *follower, k *kept) error {
	b, _ := json.MarshalIndent(k, "", "  ")
	tmp := m.statePath(f) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, m.statePath(f))
}

// raise returns an alert unless the same one (kind and key) was raised
// last; clear forgets a kind once things are right again.
func (f *follower) raise(kind, key, detail string, kept, seen []byte) []*Alert {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.raised[kind] == key {
		return nil
	}
	f.raised[kind] = key
	return []*Alert{{Kind: kind, Detail: detail, Kept: string(kept), Seen: string(seen)}}
}

func (f *follower) clear(kinds ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range kinds {
		delete(f.raised, k)
	}
}

func (m *Monitor) check(ctx context.Context, f *follower) []*Alert {
	now := m.cfg.Now()
	old, err := m.load(f)
	if err != nil {
		return f.raise(AlertBad, err.Error(), err.Error(), nil, nil)
	}
	var keptNote []byte
	if old != nil {
		keptNote = []byte(old.Checkpoint)
	}
	alerts := m.stall(f, old, now)
	signed, err := client.Get(ctx, m.cfg.Client, strings.TrimRight(f.URL, "/")+"/checkpoint", f.Token)
	if err != nil {
		m.cfg.Logger.Warn("reading a checkpoint", slog.String("log", f.origin), slog.Any("err", err))
		return alerts
	}
	cp, err := f.log.Open(signed)
	if err != nil {
		return append(alerts, f.raise(AlertBad, string(signed), err.Error(), keptNote, signed)...)
	}
	if err := f.log.Witnessed(cp); err != nil {
		return append(alerts, f.raise(AlertUnwitnessed, string(signed), err.Error()+": it is not adopted", keptNote, signed)...)
	}
	f.clear(AlertUnwitnessed, AlertBad)
	if old != nil {
		tiles := f.log.Tiles(ctx)
		switch {
		case cp.Size < old.Size:
			kind := AlertRollback
			detail := fmt.Sprintf("the log shows a tree of size %d, smaller than the size %d it showed before", cp.Size, old.Size)
			if err := client.ProveConsistency(tiles, cp.Size, cp.Root, old.Size, old.Root); err != nil {
				kind = AlertFork
				detail += ", and the two trees are not consistent"
			}
			return append(alerts, f.raise(kind, string(signed), detail, keptNote, signed)...)
		case cp.Size == old.Size && !bytes.Equal(cp.Root, old.Root):
			return append(alerts, f.raise(AlertFork, string(signed),
				fmt.Sprintf("two checkpoints of size %d with different roots, both signed by the log's key", cp.Size), keptNote, signed)...)
		case cp.Size > old.Size:
			if err := client.ProveConsistency(tiles, old.Size, old.Root, cp.Size, cp.Root); err != nil {
				return append(alerts, f.raise(AlertFork, string(signed),
					fmt.Sprintf("the tree of size %d does not extend the tree of size %d kept earlier: %v", cp.Size, old.Size, err), keptNote, signed)...)
			}
		}
	}
	f.clear(AlertFork, AlertRollback)
	f.mu.Lock()
	f.good = now
	if f.Quorum > 0 {
		f.good = cp.Freshest
	}
	f.mu.Unlock()
	if old == nil || cp.Size != old.Size || !bytes.Equal(signed, keptNote) {
		if err := m.save(f, &kept{Checkpoint: string(signed), Size: cp.Size, Root: cp.Root, KeptAt: now.UTC()}); err != nil {
			m.cfg.Logger.Error("keeping a checkpoint", slog.String("log", f.origin), slog.Any("err", err))
		}
	}
	return append(alerts, m.stall(f, old, now)...)
}

// stall raises a stall alert when the last good (witnessed) checkpoint is
// older than allowed, and a recovery when it ends.
func (m *Monitor) stall(f *follower, old *kept, now time.Time) []*Alert {
	f.mu.Lock()
	since := f.good
	was := f.stalled
	f.stalled = now.Sub(since) > m.cfg.StallAfter
	is := f.stalled
	f.mu.Unlock()
	switch {
	case is && !was:
		what := "no checkpoint could be read and verified"
		if f.Quorum > 0 {
			what = "no witness has cosigned a checkpoint"
		}
		var k []byte
		if old != nil {
			k = []byte(old.Checkpoint)
		}
		return []*Alert{{Kind: AlertStall, Detail: fmt.Sprintf("%s since %s (more than %s)", what, since.UTC().Format(time.RFC3339), m.cfg.StallAfter), Kept: string(k)}}
	case was && !is:
		return []*Alert{{Kind: AlertRecovered, Detail: "the log answers with fresh checkpoints again"}}
	}
	return nil
}
