package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// testHolds checks the hold records (placed, listed newest first, released
// once, confined to their organization) and that retention and erasure
// leave what an active hold covers, and take it once released; the
// previews count what the runs then remove.
func testHolds(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	org, other := newOrg(t, s, "hold-a"), newOrg(t, s, "hold-b")
	now := time.Now().UTC()
	day := 24 * time.Hour
	placer := veritrail.Actor{Type: veritrail.ActorAPIKey, ID: "tok_1", Name: "legal"}

	// Records.
	h1 := &veritrail.Hold{ID: "hold_1", OrgID: org.ID, Name: "case 1", Reason: "investigation of u1",
		ActorIDs: []string{"u1"}, PlacedBy: placer, PlacedAt: now.Add(-time.Minute)}
	h2 := &veritrail.Hold{ID: "hold_2", OrgID: org.ID, Name: "case 2", Reason: "january incident",
		Filter: "type=auth.*", PlacedBy: placer, PlacedAt: now}
	for _, h := range []*veritrail.Hold{h1, h2} {
		if err := h.Validate(); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateHold(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateHold(ctx, h1); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Errorf("same hold id twice: %v, want conflict", err)
	}
	hs, err := s.ListHolds(ctx, org.ID)
	if err != nil || len(hs) != 2 || hs[0].ID != "hold_2" || hs[1].Reason != "investigation of u1" || hs[1].PlacedBy != placer {
		t.Fatalf("list holds: %+v %v", hs, err)
	}
	if hs, _ := s.ListHolds(ctx, other.ID); len(hs) != 0 {
		t.Errorf("another organization lists %d holds", len(hs))
	}
	if _, err := s.HoldByID(ctx, other.ID, "hold_1"); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("hold of another organization: %v, want not found", err)
	}
	if _, err := s.ReleaseHold(ctx, other.ID, "hold_2", now, placer, "x"); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("release from another organization: %v, want not found", err)
	}
	rel, err := s.ReleaseHold(ctx, org.ID, "hold_2", now, placer, "closed")
	if err != nil || rel.Active() || rel.ReleaseReason != "closed" {
		t.Fatalf("release: %+v %v", rel, err)
	}
	if _, err := s.ReleaseHold(ctx, org.ID, "hold_2", now, placer, "again"); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Errorf("release twice: %v, want conflict", err)
	}
	if h, err := s.HoldByID(ctx, org.ID, "hold_2"); err != nil || h.Active() || h.ReleasedBy == nil || *h.ReleasedBy != placer {
		t.Errorf("released hold read back: %+v %v", h, err)
	}

	// Enforcement: hold_1 (active) covers u1's events.
	mk := func(id, typ, actor string, age time.Duration) *veritrail.Event {
		e := event(id, typ, now.Add(-age))
		e.Actor.ID = actor
		e.Content = []byte(`{"note":"` + strings.ReplaceAll(id, "-", "") + `"}`)
		return e
	}
	mustAppend(t, s, org.ID,
		mk("u1-old", "auth.login", "u1", 400*day), // held: retention would take its envelope
		mk("u1-mid", "auth.login", "u1", 100*day), // held: retention would take its content
		mk("u2-old", "auth.login", "u2", 400*day), // not held: envelope goes
		mk("u2-mid", "auth.login", "u2", 100*day), // not held: content goes
		mk("u1-new", "auth.login", "u1", day),     // held: erasure would take its content
	)
	mustAppend(t, s, other.ID, mk("x-old", "auth.login", "u1", 400*day))
	st := veritrail.DefaultSettings()
	st.Retention = []veritrail.RetentionRule{{Category: "*", ContentDays: 90, MetadataDays: 365}}
	state := func(id string) (envelope, content bool) {
		ev, err := s.EventByID(ctx, org.ID, id, true)
		if veritrail.ErrorCode(err) == veritrail.ENotFound {
			return false, false
		}
		if err != nil {
			t.Fatal(err)
		}
		return true, ev.Content != nil
	}
	want := func(when string, states map[string][2]bool) {
		t.Helper()
		for id, w := range states {
			if e, c := state(id); e != w[0] || c != w[1] {
				t.Errorf("%s: %s has envelope %v content %v, want %v", when, id, e, c, w)
			}
		}
	}
	if err := s.PutOrgSettings(ctx, org.ID, st); err != nil {
		t.Fatal(err)
	}
	pv, err := veritrail.PreviewRetention(ctx, s, org.ID, st, now)
	if err != nil {
		t.Fatal(err)
	}
	if pv.Total.Envelopes != 1 || pv.Total.Contents != 1 || pv.Categories["auth"] == nil || len(pv.Held) != 1 || pv.Held[0].Hold != "hold_1" || pv.Held[0].Events != 2 {
		t.Errorf("retention preview under a hold: %+v (auth %+v)", pv, pv.Categories["auth"])
	}
	_, res, err := veritrail.RunRetention(ctx, s, org.ID, now, placer)
	if err != nil {
		t.Fatal(err)
	}
	if res.Envelopes != 1 || res.Contents != 1 || len(res.Held) != 1 || res.Held[0].Events != 2 {
		t.Errorf("retention under a hold removed %d envelopes, %d contents, kept %+v; want 1, 1, 2 events of hold_1", res.Envelopes, res.Contents, res.Held)
	}
	want("retention under a hold", map[string][2]bool{
		"u1-old": {true, true}, "u1-mid": {true, true}, "u2-old": {false, false}, "u2-mid": {true, false}, "u1-new": {true, true},
	})
	u1 := veritrail.Filter{Field: veritrail.FieldActorID, Ranges: []veritrail.KeyRange{veritrail.Exact("u1")}}
	ep, err := veritrail.PreviewErasure(ctx, s, org.ID, u1)
	if err != nil || ep.Total != 0 || len(ep.Held) != 1 || ep.Held[0].Events != 3 {
		t.Errorf("erasure preview under a hold: %+v %v", ep, err)
	}
	_, er, err := veritrail.Erase(ctx, s, org.ID, u1, now, placer)
	if err != nil || er.Contents != 0 || len(er.Held) != 1 || er.Held[0].Events != 3 {
		t.Errorf("erasure under a hold: %+v %v", er, err)
	}
	want("erasure under a hold", map[string][2]bool{"u1-old": {true, true}, "u1-mid": {true, true}, "u1-new": {true, true}})

	// Released: the next runs take what the hold kept.
	if _, err := s.ReleaseHold(ctx, org.ID, "hold_1", now, placer, "case closed"); err != nil {
		t.Fatal(err)
	}
	ep, err = veritrail.PreviewErasure(ctx, s, org.ID, u1)
	if err != nil || ep.Total != 3 || ep.Categories["auth"] != 3 || len(ep.Held) != 0 {
		t.Errorf("erasure preview after release: %+v %v", ep, err)
	}
	if _, res, err = veritrail.RunRetention(ctx, s, org.ID, now, placer); err != nil || res.Envelopes != 1 || res.Contents != 1 || len(res.Held) != 0 {
		t.Errorf("retention after release: %+v %v", res, err)
	}
	if _, er, err = veritrail.Erase(ctx, s, org.ID, u1, now, placer); err != nil || er.Contents != 1 {
		t.Errorf("erasure after release: %+v %v", er, err)
	}
	want("after release", map[string][2]bool{"u1-old": {false, false}, "u1-mid": {true, false}, "u1-new": {true, false}})
	if ev, err := s.EventByID(ctx, other.ID, "x-old", true); err != nil || ev.Content == nil {
		t.Errorf("another organization's event was touched: %v", err)
	}
}
