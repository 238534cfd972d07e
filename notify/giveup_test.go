package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/notify"
)

// TestGiveUpAfter: a webhook answering 503 is retried while its delivery
// is younger than GiveUpAfter, however many attempts it took; one that
// fails at or past that age is given up (failed, with its last error),
// and is not sent again.
func TestGiveUpAfter(t *testing.T) {
	ctx := context.Background()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		hits.Add(1)
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	store, org, key := openStore(t)
	route, _ := json.Marshal(notify.Queued{Route: notify.Route{Type: notify.Webhook, URL: srv.URL, Secret: "s3cret"},
		Rule: notify.RuleInfo{ID: "rule_1", Name: "burst", Kind: "threshold"}})

	const giveUpAfter = time.Hour
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	ages := map[string]time.Duration{ // delivery → its age at start
		"dlv_young":    time.Minute,
		"dlv_almost":   giveUpAfter - time.Second,
		"dlv_exact":    giveUpAfter,
		"dlv_past_age": 3 * giveUpAfter,
	}
	c := &veritrail.RuleCommit{From: -1, To: 0}
	for id, age := range ages {
		alert := "alt_" + id[4:]
		c.NewAlerts = append(c.NewAlerts, &veritrail.Alert{ID: alert, OrgID: org.ID, RuleID: "rule_1", Rule: "burst", Severity: "high",
			DedupKey: id, State: veritrail.AlertOpen, Count: 1, EventIDs: []string{"e1"}, FirstSeen: start, LastSeen: start,
			OpenedAt: start, UpdatedAt: start, StateAt: start, StateBy: "veritrail", RecordedAt: start})
		c.Deliveries = append(c.Deliveries, &veritrail.Delivery{ID: id, OrgID: org.ID, AlertID: alert, RuleID: "rule_1",
			Destination: notify.Webhook, Route: route, Event: "opened", State: veritrail.DeliveryPending,
			DueAt: start.Add(-age), CreatedAt: start.Add(-age)})
	}
	if err := store.CommitRules(ctx, org.ID, c); err != nil {
		t.Fatal(err)
	}
	d, err := notify.New(notify.Options{Store: store, Key: key, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Outbound: netguard.Guard{AllowLoopback: true}, Now: now, GiveUpAfter: giveUpAfter,
		MinBackoff: time.Second, MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	state := func(id string) *veritrail.Delivery {
		t.Helper()
		ds, err := store.ListDeliveries(ctx, org.ID, "alt_"+id[4:])
		if err != nil || len(ds) != 1 {
			t.Fatalf("deliveries of %s: %d, %v", id, len(ds), err)
		}
		return ds[0]
	}

	// The first round: every delivery is tried once; those of
	// GiveUpAfter or more give up at once.
	if n, err := d.Tick(ctx, 10); err != nil || n != 4 {
		t.Fatalf("first round: %d deliveries, %v", n, err)
	}
	for id, want := range map[string]string{"dlv_young": veritrail.DeliveryPending, "dlv_almost": veritrail.DeliveryPending,
		"dlv_exact": veritrail.DeliveryFailed, "dlv_past_age": veritrail.DeliveryFailed} {
		dl := state(id)
		if dl.State != want || dl.Attempts != 1 || dl.LastError == "" {
			t.Errorf("%s after one attempt: %s, %d attempts, last error %q; want %s", id, dl.State, dl.Attempts, dl.LastError, want)
		}
		if want == veritrail.DeliveryFailed && dl.FinishedAt == nil {
			t.Errorf("%s failed without a finishing time", id)
		}
	}
	// Many more attempts, the clock moving a second each: the one a
	// second short of the age gives up on the next, the young one keeps
	// being retried (attempts do not count).
	for i := range 30 {
		clock.Add(int64(time.Second))
		if _, err := d.Tick(ctx, 10); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if dl := state("dlv_almost"); dl.State != veritrail.DeliveryFailed || dl.Attempts != 2 {
				t.Fatalf("dlv_almost once it is GiveUpAfter old: %s after %d attempts", dl.State, dl.Attempts)
			}
		}
	}
	if dl := state("dlv_young"); dl.State != veritrail.DeliveryPending || dl.Attempts != 31 {
		t.Fatalf("dlv_young: %s after %d attempts, want pending after 31", dl.State, dl.Attempts)
	}
	if got := hits.Load(); got != 4+1+30 {
		t.Fatalf("the webhook was called %d times, want %d: a delivery given up was sent again", got, 4+1+30)
	}
}
