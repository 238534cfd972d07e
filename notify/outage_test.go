package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/smtptest"
	"github.com/veritrail/veritrail/internal/testenv"
	"github.com/veritrail/veritrail/mail"
	"github.com/veritrail/veritrail/notify"
	"github.com/veritrail/veritrail/seal"
	"github.com/veritrail/veritrail/sqlite"
)

// openStore opens a SQLite store with one organization, and a master key.
func openStore(t *testing.T) (*sqlite.Store, *veritrail.Org, *seal.Key) {
	store, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	org, err := store.CreateOrg(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := seal.New(make([]byte, seal.KeySize))
	return store, org, key
}

// TestSMTPLongOutage: the SMTP server (aiosmtpd) is unreachable while
// alerts with e-mail routes pile up. Each delivery stays pending in the
// store's bounded queue, its attempts and last error visible, retried
// well past the point where the dispatcher once gave up (15 attempts);
// the dispatcher holds only what it claimed. When the server is back,
// every alert is mailed: nothing is lost. Counts and states only.
func TestSMTPLongOutage(t *testing.T) {
	ctx := context.Background()
	srv := smtptest.Start(t)
	sw := testenv.StartTCPSwitch(t, srv.Addr)
	sw.SetDown(true)
	store, org, key := openStore(t)

	const alerts = 20
	route, _ := json.Marshal(notify.Queued{Route: notify.Route{Type: notify.Email, To: []string{"soc@acme.example"}},
		Rule: notify.RuleInfo{ID: "rule_1", Name: "burst", Kind: "threshold"}})
	now := time.Now().UTC()
	c := &veritrail.RuleCommit{From: -1, To: 0}
	for i := range alerts {
		id := fmt.Sprintf("alt_%03d", i)
		c.NewAlerts = append(c.NewAlerts, &veritrail.Alert{ID: id, OrgID: org.ID, RuleID: "rule_1", Rule: "burst", Severity: "high",
			DedupKey: id, State: veritrail.AlertOpen, Count: 1, EventIDs: []string{"e" + id}, FirstSeen: now, LastSeen: now,
			OpenedAt: now, UpdatedAt: now, StateAt: now, StateBy: "veritrail", RecordedAt: now})
		c.Deliveries = append(c.Deliveries, &veritrail.Delivery{ID: "dlv_" + id, OrgID: org.ID, AlertID: id, RuleID: "rule_1",
			Destination: notify.Email, Route: route, Event: "opened", State: veritrail.DeliveryPending, DueAt: now, CreatedAt: now})
	}
	if err := store.CommitRules(ctx, org.ID, c); err != nil {
		t.Fatal(err)
	}
	d, err := notify.New(notify.Options{Store: store, Key: key, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Mail:         &mail.Config{URL: fmt.Sprintf("smtp://%s:%s@%s", srv.User, srv.Password, sw.Addr()), From: "veritrail@acme.example", CAFile: srv.CAFile},
		PollInterval: 5 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	dctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); d.Run(dctx) }()
	t.Cleanup(func() { stop(); <-done })

	deliveries := func() []*veritrail.Delivery {
		var all []*veritrail.Delivery
		for i := range alerts {
			ds, err := store.ListDeliveries(ctx, org.ID, fmt.Sprintf("alt_%03d", i))
			if err != nil || len(ds) != 1 {
				t.Fatalf("deliveries of alert %d: %d, %v", i, len(ds), err)
			}
			all = append(all, ds[0])
		}
		return all
	}
	waitFor := func(what string, cond func([]*veritrail.Delivery) bool) {
		t.Helper()
		var ds []*veritrail.Delivery
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
			if ds = deliveries(); cond(ds) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s; first delivery: %+v", what, ds[0])
			}
		}
	}
	// Down: retried, pending, each with its attempts and the last error.
	waitFor("many attempts while the server is down", func(ds []*veritrail.Delivery) bool {
		for _, dl := range ds {
			if dl.State != veritrail.DeliveryPending || dl.Attempts <= 15 || dl.LastError == "" {
				return false
			}
		}
		return true
	})
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages while the server was down", n)
	}
	sw.SetDown(false)
	waitFor("every delivery once the server is back", func(ds []*veritrail.Delivery) bool {
		for _, dl := range ds {
			if dl.State != veritrail.DeliveryDelivered {
				return false
			}
		}
		return true
	})
	msgs := srv.Messages()
	for i := range alerts {
		if !strings.Contains(strings.Join(msgs, "\n"), fmt.Sprintf("alt_%03d", i)) {
			t.Fatalf("no message about alert %d among %d", i, len(msgs))
		}
	}
	t.Logf("%d connections refused during the outage; %d messages after it", sw.Refused(), len(msgs))
}
