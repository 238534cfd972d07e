package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// testTeams checks TeamStore: lists are oldest first and leave deleted
// teams out, a team is deleted once, and no method reaches another
// organization's teams.
func testTeams(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	a, b := newOrg(t, s, "acme"), newOrg(t, s, "globex")
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	mk := func(org int64, id, name string, at time.Time) {
		t.Helper()
		if err := s.CreateTeam(ctx, &veritrail.Team{ID: id, OrgID: org, Name: name, CreatedAt: at}); err != nil {
			t.Fatalf("CreateTeam %s: %v", id, err)
		}
	}
	// Creation time, creation order and ids sort three ways: lists go by
	// creation time (Data, Platform, Security).
	mk(a.ID, "team_c", "Platform", t0)
	mk(a.ID, "team_a", "Security", t0.Add(time.Second))
	mk(a.ID, "team_b", "Data", t0.Add(-time.Hour))
	mk(b.ID, "team_d", "Platform", t0)
	if err := s.CreateTeam(ctx, &veritrail.Team{ID: "team_c", OrgID: a.ID, Name: "Other", CreatedAt: t0}); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Errorf("second team with a taken id: %v, want conflict", err)
	}
	if err := s.CreateTeam(ctx, &veritrail.Team{ID: "team_nowhere", OrgID: a.ID + b.ID + 1000, Name: "X", CreatedAt: t0}); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("team of a missing organization: %v, want not_found", err)
	}

	listed := func(org int64) []*veritrail.Team {
		t.Helper()
		ts, err := s.ListTeams(ctx, org)
		if err != nil {
			t.Fatalf("ListTeams: %v", err)
		}
		return ts
	}
	ts := listed(a.ID)
	if ids := teamIDs(ts); ids != "team_b,team_c,team_a" {
		t.Fatalf("ListTeams(acme) = %s, want team_b,team_c,team_a (oldest first)", ids)
	}
	if got := ts[1]; got.OrgID != a.ID || got.Name != "Platform" || !got.CreatedAt.Equal(t0) {
		t.Errorf("team read back: %+v", got)
	}
	if ids := teamIDs(listed(b.ID)); ids != "team_d" {
		t.Errorf("ListTeams(globex) = %s, want team_d", ids)
	}

	at := t0.Add(time.Hour)
	if err := s.DeleteTeam(ctx, b.ID, "team_c", at); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("delete another organization's team: %v, want not_found", err)
	}
	if err := s.DeleteTeam(ctx, a.ID, "team_missing", at); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("delete a missing team: %v, want not_found", err)
	}
	if ids := teamIDs(listed(a.ID)); ids != "team_b,team_c,team_a" {
		t.Fatalf("after refused deletions ListTeams(acme) = %s", ids)
	}
	if err := s.DeleteTeam(ctx, a.ID, "team_c", at); err != nil {
		t.Fatal(err)
	}
	if ids := teamIDs(listed(a.ID)); ids != "team_b,team_a" {
		t.Errorf("after deleting team_c ListTeams(acme) = %s", ids)
	}
	if err := s.DeleteTeam(ctx, a.ID, "team_c", at); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("delete a deleted team: %v, want not_found", err)
	}
	if ids := teamIDs(listed(b.ID)); ids != "team_d" {
		t.Errorf("deleting acme's team changed globex's: %s", ids)
	}
}

func teamIDs(ts []*veritrail.Team) string {
	ids := make([]string, len(ts))
	for i, x := range ts {
		ids[i] = x.ID
	}
	return strings.Join(ids, ",")
}
