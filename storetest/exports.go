package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

func testExports(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	a, b := newOrg(t, s, "exp-a"), newOrg(t, s, "exp-b")
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	mk := func(org int64, id string, at time.Time) *veritrail.ExportJob {
		j := &veritrail.ExportJob{ID: id, OrgID: org, TokenID: "tok", Format: "csv", Query: "category=auth&order=asc",
			WithContent: true, Notify: "sec@acme.example", State: veritrail.ExportPending, CreatedAt: at}
		if err := s.CreateExport(ctx, j); err != nil {
			t.Fatal(err)
		}
		return j
	}
	mk(a.ID, "exp_1", t0)
	mk(b.ID, "exp_2", t0.Add(time.Second))
	mk(a.ID, "exp_3", t0.Add(2*time.Second))

	// Scoped by organization.
	if _, err := s.ExportByID(ctx, b.ID, "exp_1"); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("another organization's job: %v", err)
	}
	got, err := s.ExportByID(ctx, a.ID, "exp_1")
	if err != nil || got.Query != "category=auth&order=asc" || !got.WithContent || got.Notify != "sec@acme.example" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("ExportByID: %+v %v", got, err)
	}
	if js, _ := s.ListExports(ctx, a.ID); len(js) != 2 || js[0].ID != "exp_3" {
		t.Fatalf("ListExports: %d jobs", len(js))
	}

	// Concurrent claimers: each job is handed out once.
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				j, err := s.ClaimExport(ctx, t0.Add(time.Minute))
				if err != nil {
					continue
				}
				mu.Lock()
				claimed[j.ID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claimed) != 3 || claimed["exp_1"] != 1 || claimed["exp_2"] != 1 || claimed["exp_3"] != 1 {
		t.Fatalf("claims: %v", claimed)
	}
	if _, err := s.ClaimExport(ctx, t0); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("claim with none pending: %v", err)
	}
	// One claimer: oldest first (not by insertion, not by id).
	mk(a.ID, "exp_4", t0.Add(20*time.Second))
	mk(b.ID, "exp_5", t0.Add(10*time.Second))
	for _, want := range []string{"exp_5", "exp_4"} {
		if j, err := s.ClaimExport(ctx, t0.Add(time.Minute)); err != nil || j.ID != want {
			t.Fatalf("claim: %+v %v, want %s (the oldest pending)", j, err, want)
		}
	}

	// A restart puts running jobs back.
	done := time.Now().UTC().Truncate(time.Millisecond)
	exp := done.Add(time.Hour)
	j3, _ := s.ExportByID(ctx, a.ID, "exp_3")
	j3.State, j3.Progress, j3.SizeBytes, j3.Path, j3.FinishedAt, j3.ExpiresAt = veritrail.ExportReady, 10, 100, "/x/exp_3.csv", &done, &exp
	if err := s.UpdateExport(ctx, j3); err != nil {
		t.Fatal(err)
	}
	if err := s.RequeueRunningExports(ctx); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"exp_1": veritrail.ExportPending, "exp_3": veritrail.ExportReady} {
		j, _ := s.ExportByID(ctx, a.ID, id)
		if j.State != want {
			t.Errorf("%s after requeue: %s, want %s", id, j.State, want)
		}
	}
	j3, _ = s.ExportByID(ctx, a.ID, "exp_3")
	if j3.Path != "/x/exp_3.csv" || j3.SizeBytes != 100 || j3.ExpiresAt == nil || !j3.ExpiresAt.Equal(exp) {
		t.Errorf("updated job: %+v", j3)
	}

	// UpdateExport cannot move a job to another organization.
	j3.OrgID = b.ID
	j3.State = veritrail.ExportFailed
	s.UpdateExport(ctx, j3)
	if j, _ := s.ExportByID(ctx, a.ID, "exp_3"); j.State != veritrail.ExportReady {
		t.Errorf("an update with another organization changed the job: %s", j.State)
	}

	if js, _ := s.ExpiredExports(ctx, exp); len(js) != 0 {
		t.Errorf("expired at its expiry instant: %d", len(js))
	}
	if js, _ := s.ExpiredExports(ctx, exp.Add(time.Millisecond)); len(js) != 1 || js[0].ID != "exp_3" {
		t.Errorf("expired after: %d", len(js))
	}
}
