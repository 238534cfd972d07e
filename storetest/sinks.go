package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

func testSinks(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	a, b := newOrg(t, s, "sink-a"), newOrg(t, s, "sink-b")
	t0 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	mk := func(org int64, id, name string, at time.Time) *veritrail.Sink {
		k := &veritrail.Sink{ID: id, OrgID: org, Name: name, Type: "webhook", Config: []byte(`{"url":"https://siem.example/in"}`),
			CreatedAt: at, UpdatedAt: at, Delivered: -1}
		if err := s.CreateSink(ctx, k); err != nil {
			t.Fatalf("CreateSink %s: %v", id, err)
		}
		return k
	}
	mk(a.ID, "snk_1", "siem", t0)
	mk(a.ID, "snk_2", "lake", t0.Add(time.Second))
	mk(b.ID, "snk_3", "siem", t0) // names are unique per organization only

	dup := &veritrail.Sink{ID: "snk_4", OrgID: a.ID, Name: "siem", Type: "webhook", Config: []byte(`{}`), CreatedAt: t0, UpdatedAt: t0, Delivered: -1}
	if err := s.CreateSink(ctx, dup); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Fatalf("duplicate name: %v, want conflict", err)
	}

	// Scoped by organization, every method.
	if _, err := s.SinkByID(ctx, b.ID, "snk_1"); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("another organization's sink: %v", err)
	}
	if err := s.AdvanceSink(ctx, b.ID, "snk_1", -1, 5, t0); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("advance another organization's sink: %v", err)
	}
	if err := s.SinkFailed(ctx, b.ID, "snk_1", veritrail.SinkFailure{Failures: 1, Error: "x", At: t0}); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("fail another organization's sink: %v", err)
	}
	if err := s.DeleteSink(ctx, b.ID, "snk_1"); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("delete another organization's sink: %v", err)
	}
	other := &veritrail.Sink{ID: "snk_1", OrgID: b.ID, Name: "stolen", Config: []byte(`{}`), UpdatedAt: t0}
	if err := s.UpdateSink(ctx, other); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("update another organization's sink: %v", err)
	}
	got, err := s.SinkByID(ctx, a.ID, "snk_1")
	if err != nil || got.Name != "siem" || got.Type != "webhook" || string(got.Config) != `{"url":"https://siem.example/in"}` ||
		got.Delivered != -1 || got.DeliveredAt != nil || got.Paused || got.Failures != 0 || !got.CreatedAt.Equal(t0) {
		t.Fatalf("SinkByID: %+v %v", got, err)
	}
	if l, err := s.ListSinks(ctx, a.ID); err != nil || len(l) != 2 || l[0].ID != "snk_1" || l[1].ID != "snk_2" {
		t.Fatalf("ListSinks: %v %v", l, err)
	}

	// The cursor: compare-and-set, forward only.
	if err := s.AdvanceSink(ctx, a.ID, "snk_1", -1, 99, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.AdvanceSink(ctx, a.ID, "snk_1", -1, 120, t0); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Fatalf("advance from a stale position: %v, want conflict", err)
	}
	if err := s.AdvanceSink(ctx, a.ID, "snk_1", 99, 50, t0); err == nil {
		t.Fatal("the cursor moved backwards")
	}
	if got, _ := s.SinkByID(ctx, a.ID, "snk_1"); got.Delivered != 99 || got.DeliveredAt == nil || !got.DeliveredAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after advance: %+v", got)
	}

	// Concurrent deliverers from the same position: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.AdvanceSink(ctx, a.ID, "snk_1", 99, int64(100+i), t0) == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d concurrent advances from one position won, want 1", wins)
	}

	// Failures: counted, shown, then a pause; the cursor stays.
	before, _ := s.SinkByID(ctx, a.ID, "snk_1")
	if err := s.SinkFailed(ctx, a.ID, "snk_1", veritrail.SinkFailure{Failures: 1, Error: "HTTP 503", At: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.SinkFailed(ctx, a.ID, "snk_1", veritrail.SinkFailure{Failures: 2, Error: "HTTP 401: token refused", At: t0.Add(time.Second), Pause: true}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.SinkByID(ctx, a.ID, "snk_1")
	if !got.Paused || got.PausedReason != "HTTP 401: token refused" || got.Failures != 2 || got.LastError != "HTTP 401: token refused" ||
		got.LastErrorAt == nil || !got.LastErrorAt.Equal(t0.Add(time.Second)) || got.Delivered != before.Delivered {
		t.Fatalf("after failures: %+v", got)
	}

	// An administrator's change: config and resume; the cursor stays,
	// failures reset, the last error is kept for the record.
	got.Name, got.Config, got.Paused, got.PausedReason, got.UpdatedAt = "siem-2", []byte(`{"url":"https://siem.example/v2"}`), false, "", t0.Add(time.Hour)
	if err := s.UpdateSink(ctx, got); err != nil {
		t.Fatal(err)
	}
	got2, _ := s.SinkByID(ctx, a.ID, "snk_1")
	if got2.Name != "siem-2" || string(got2.Config) != `{"url":"https://siem.example/v2"}` || got2.Paused || got2.Failures != 0 ||
		got2.Delivered != before.Delivered || got2.LastError == "" || !got2.UpdatedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after update: %+v", got2)
	}
	got2.Name = "lake"
	if err := s.UpdateSink(ctx, got2); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Fatalf("rename onto another sink: %v, want conflict", err)
	}
	// A pause by an administrator keeps the failure count.
	s.SinkFailed(ctx, a.ID, "snk_1", veritrail.SinkFailure{Failures: 1, Error: "timeout", At: t0})
	got2.Name, got2.Paused, got2.PausedReason = "siem-2", true, "paused by an administrator"
	if err := s.UpdateSink(ctx, got2); err != nil {
		t.Fatal(err)
	}
	if got3, _ := s.SinkByID(ctx, a.ID, "snk_1"); !got3.Paused || got3.Failures != 1 || got3.PausedReason != "paused by an administrator" {
		t.Fatalf("after pause: %+v", got3)
	}
	// A success resets the count.
	cur, _ := s.SinkByID(ctx, a.ID, "snk_1")
	if err := s.AdvanceSink(ctx, a.ID, "snk_1", cur.Delivered, cur.Delivered+1, t0); err != nil {
		t.Fatal(err)
	}
	if got3, _ := s.SinkByID(ctx, a.ID, "snk_1"); got3.Failures != 0 {
		t.Fatalf("failures after a success: %d", got3.Failures)
	}

	if err := s.DeleteSink(ctx, a.ID, "snk_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SinkByID(ctx, a.ID, "snk_1"); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("deleted sink: %v", err)
	}
	if err := s.AdvanceSink(ctx, a.ID, "snk_1", 0, 1, t0); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("advance a deleted sink: %v", err)
	}
	if l, _ := s.ListSinks(ctx, b.ID); len(l) != 1 || l[0].ID != "snk_3" {
		t.Fatalf("organization b's sinks: %v", l)
	}
}
