package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/canonjson"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/mail"
	"github.com/veritrail/veritrail/notify"
	"github.com/veritrail/veritrail/postgres"
	"github.com/veritrail/veritrail/postgres/pgtest"
	"github.com/veritrail/veritrail/seal"
	"github.com/veritrail/veritrail/sqlite"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// Every test of the engine runs on both stores: the embedded SQLite and
// PostgreSQL (skipped loudly, failing under CI=true, without it).

type opener func(t *testing.T) veritrail.Store

func stores(t *testing.T, fn func(t *testing.T, open opener)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, func(t *testing.T) veritrail.Store {
			s, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
	t.Run("postgres", func(t *testing.T) {
		if testing.Short() {
			t.Skip("-short: SQLite only")
		}
		url := pgtest.New(t)
		fn(t, func(t *testing.T) veritrail.Store {
			s, err := postgres.Open(context.Background(), url, postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is an organization with an engine and a dispatcher on one
// store, driven by hand (Sync, Tick) on a clock the test sets.
type harness struct {
	t     *testing.T
	s     veritrail.Store
	key   *seal.Key
	clock *clock
	org   *veritrail.Org
	e     *Engine
	d     *notify.Dispatcher
	mail  *mail.Config
	n     int
}

// quiet drops the engine's logs (tests assert on what it does).
var quiet = slog.New(slog.DiscardHandler)

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// newHarness makes organization org on s.
func newHarness(t *testing.T, s veritrail.Store, org string, m *mail.Config) *harness {
	t.Helper()
	key, err := seal.New(make([]byte, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, s: s, key: key, clock: &clock{t: t0}, mail: m}
	if h.org, err = s.CreateOrg(context.Background(), org); err != nil {
		t.Fatal(err)
	}
	h.restart()
	return h
}

// restart replaces the engine and dispatcher with new ones, as a new
// process would start: nothing kept in memory.
func (h *harness) restart() {
	h.t.Helper()
	var err error
	h.d, err = notify.New(notify.Options{Store: h.s, Key: h.key, Mail: h.mail, Outbound: netguard.Guard{AllowLoopback: true},
		PublicURL: "https://audit.acme.example", Now: h.clock.Now, MinBackoff: time.Second, MaxBackoff: time.Minute, Logger: quiet})
	if err != nil {
		h.t.Fatal(err)
	}
	h.e, err = New(Options{Store: h.s, Key: h.key, Notifier: h.d, Now: h.clock.Now, SnapshotInterval: time.Hour, Logger: quiet})
	if err != nil {
		h.t.Fatal(err)
	}
}

// rule stores a rule written by the built-in author (who may read
// content) and returns it.
func (h *harness) rule(spec string) *veritrail.Rule {
	h.t.Helper()
	return h.ruleBy(authorBuiltin, true, spec)
}

func (h *harness) ruleBy(author string, content bool, spec string) *veritrail.Rule {
	h.t.Helper()
	ctx := context.Background()
	r, _, err := h.e.Build(ctx, h.org.ID, author, content, []byte(spec), nil)
	if err != nil {
		h.t.Fatalf("rule %s: %v", spec, err)
	}
	if err := h.s.CreateRule(ctx, r); err != nil {
		h.t.Fatal(err)
	}
	return r
}

// ev is an event of type typ by actor at t0+at.
func (h *harness) ev(typ, actor string, at time.Duration, edit ...func(*veritrail.Event)) *veritrail.Event {
	h.n++
	e := &veritrail.Event{ID: fmt.Sprintf("e%03d", h.n), Type: typ, Actor: veritrail.Actor{Type: "user", ID: actor},
		Time: t0.Add(at), Outcome: veritrail.OutcomeSuccess}
	for _, f := range edit {
		f(e)
	}
	return e
}

func failed(e *veritrail.Event) { e.Outcome = veritrail.OutcomeFailure }

func agent(id, connector string) func(*veritrail.Event) {
	return func(e *veritrail.Event) { e.AgentID, e.Connector = id, connector }
}

func target(id string) func(*veritrail.Event) {
	return func(e *veritrail.Event) { e.Target = &veritrail.Target{Type: "board", ID: id} }
}

func content(v any) func(*veritrail.Event) {
	return func(e *veritrail.Event) {
		b, _ := json.Marshal(v)
		if c, err := canonjson.Append(nil, b); err == nil {
			e.Content = c
		}
	}
}

// append commits events to the organization's log.
func (h *harness) append(evs ...*veritrail.Event) {
	h.t.Helper()
	if _, err := h.s.Append(context.Background(), h.org.ID, evs); err != nil {
		h.t.Fatal(err)
	}
}

// sync evaluates what was appended.
func (h *harness) sync() {
	h.t.Helper()
	if err := h.e.Sync(context.Background(), h.org.ID); err != nil {
		h.t.Fatalf("Sync: %v", err)
	}
}

// tick sends the deliveries due.
func (h *harness) tick() int {
	h.t.Helper()
	total := 0
	for {
		n, err := h.d.Tick(context.Background(), 50)
		if err != nil {
			h.t.Fatal(err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

func (h *harness) alerts() []*veritrail.Alert {
	h.t.Helper()
	as, err := h.s.ListAlerts(context.Background(), h.org.ID, veritrail.AlertFilter{Limit: 1000})
	if err != nil {
		h.t.Fatal(err)
	}
	return as
}

// records returns the alert.* events of the log, oldest first.
func (h *harness) records() []*veritrail.Event {
	h.t.Helper()
	ctx := context.Background()
	if err := h.e.flushRecords(ctx); err != nil {
		h.t.Fatal(err)
	}
	kr, _ := veritrail.ParseFilterValue(veritrail.FieldType, "alert.*")
	q := &veritrail.Query{Order: veritrail.OrderSeq, Limit: veritrail.MaxLimit, WithContent: true,
		Filters: []veritrail.Filter{{Field: veritrail.FieldType, Ranges: []veritrail.KeyRange{kr}}}}
	page, err := h.s.Query(ctx, h.org.ID, q)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*veritrail.Event
	for _, se := range page.Events {
		ev, err := veritrail.ParseEnvelope(se.Envelope)
		if err != nil {
			h.t.Fatal(err)
		}
		ev.Content = se.Content
		out = append(out, ev)
	}
	return out
}

func (h *harness) change(id, state string, p *AlertPatch) *veritrail.Alert {
	h.t.Helper()
	if p == nil {
		p = &AlertPatch{}
	}
	p.State = state
	a, _, err := h.e.ChangeAlert(context.Background(), h.org.ID, veritrail.Actor{Type: veritrail.ActorAPIKey, ID: "tok_oncall", Name: "on-call"}, id, p)
	if err != nil {
		h.t.Fatalf("change %s to %s: %v", id, state, err)
	}
	return a
}

func benchKey(b *testing.B) *seal.Key {
	k, err := seal.New(make([]byte, seal.KeySize))
	if err != nil {
		b.Fatal(err)
	}
	return k
}
