package storetest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// testRetention checks expiry by category tier, erasure by actor, the
// removal records, and that the tree never changes.
func testRetention(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	org, other := newOrg(t, s, "ret-a"), newOrg(t, s, "ret-b")
	now := time.Now().UTC()
	// The store takes cutoffs, not settings (settings.go tests those).
	st := veritrail.DefaultSettings()
	st.Retention = []veritrail.RetentionRule{{Category: "*", ContentDays: 90, MetadataDays: 730}, {Category: "ai", ContentDays: 30, MetadataDays: 365}}
	mk := func(id, typ, actor string, age time.Duration) *veritrail.Event {
		e := event(id, typ, now.Add(-age))
		e.Actor.ID = actor
		e.Content = []byte(`{"note":"word` + strings.ReplaceAll(id, "-", "") + `"}`)
		return e
	}
	day := 24 * time.Hour
	evs := []*veritrail.Event{
		mk("ai-old", "ai.prompt", "u1", 400*day),     // envelope goes (ai: 365 days)
		mk("ai-mid", "ai.prompt", "u1", 100*day),     // content goes (ai: 30 days)
		mk("ai-new", "ai.prompt", "u2", 1*day),       // kept
		mk("auth-old", "auth.login", "u2", 400*day),  // content goes (*: 90 days)
		mk("auth-new", "auth.login", "u3", 10*day),   // kept
		mk("auth-keep", "auth.login", "u3", 100*day), // content goes
	}
	mustAppend(t, s, org.ID, evs...)
	mustAppend(t, s, other.ID, mk("x-old", "ai.prompt", "u1", 400*day))
	if fs, ok := s.(FullTextSyncer); ok {
		if err := fs.SyncFullText(ctx); err != nil {
			t.Fatal(err)
		}
	}
	search := func(word string) int {
		p, err := s.Query(ctx, org.ID, &veritrail.Query{Text: word, TextInContent: true, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return len(p.Events)
	}
	// The words removal must take out of the full-text index are in it
	// first, so that their absence later means something.
	for _, w := range []string{"wordaiold", "wordaimid", "wordainew", "wordauthnew"} {
		if n := search(w); n != 1 {
			t.Fatalf("full text before expiry: %q matches %d events, want 1", w, n)
		}
	}
	size0, root0, _ := s.LogHead(ctx, org.ID)

	res, err := s.Expire(ctx, org.ID, st.Cutoffs(now), "rec-1")
	if err != nil {
		t.Fatal(err)
	}
	if res.Envelopes != 1 || res.Contents != 3 {
		t.Fatalf("expire removed %d envelopes and %d contents, want 1 and 3", res.Envelopes, res.Contents)
	}
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
	for id, want := range map[string][2]bool{
		"ai-old": {false, false}, "ai-mid": {true, false}, "ai-new": {true, true},
		"auth-old": {true, false}, "auth-new": {true, true}, "auth-keep": {true, false},
	} {
		if e, c := state(id); e != want[0] || c != want[1] {
			t.Errorf("%s after expiry: envelope %v content %v, want %v", id, e, c, want)
		}
	}
	if size, root, _ := s.LogHead(ctx, org.ID); size != size0 || !bytes.Equal(root, root0) {
		t.Error("retention changed the log's head")
	}
	if ev, err := s.EventByID(ctx, other.ID, "x-old", true); err != nil || ev.Content == nil {
		t.Errorf("retention of one organization touched another: %v", err)
	}
	// Removed words are not found any more; kept ones are.
	if search("wordaimid") != 0 || search("wordaiold") != 0 || search("wordainew") != 1 {
		t.Errorf("full text after expiry: mid %d old %d new %d", search("wordaimid"), search("wordaiold"), search("wordainew"))
	}
	if n := len(allEvents(t, s, org.ID, true)); n != 5 {
		t.Errorf("%d events listed after expiry, want 5", n)
	}

	// Erasure of one person's content keeps their envelopes.
	er, err := s.EraseContent(ctx, org.ID, veritrail.Filter{Field: veritrail.FieldActorID, Ranges: []veritrail.KeyRange{veritrail.Exact("u3")}}, nil, "rec-2")
	if err != nil || er.Contents != 1 || er.Envelopes != 0 {
		t.Fatalf("erasure: %+v %v", er, err)
	}
	if e, c := state("auth-new"); !e || c {
		t.Errorf("auth-new after erasure: envelope %v content %v", e, c)
	}
	if e, c := state("ai-new"); !e || !c {
		t.Errorf("another person's content went: %v %v", e, c)
	}
	if search("wordauthnew") != 0 {
		t.Error("erased content still matches")
	}

	// Every removal is recorded, by kind, reason and record.
	rms, err := s.Removals(ctx, org.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]string{}
	for _, r := range rms {
		for seq := r.From; seq <= r.To; seq++ {
			covered[fmt.Sprintf("%d/%s", seq, r.What)] = r.Reason + "/" + r.Record
		}
	}
	seqOf := map[string]int64{}
	for i, e := range evs {
		seqOf[e.ID] = int64(i)
	}
	for key, want := range map[string]string{
		fmt.Sprintf("%d/envelope", seqOf["ai-old"]):   "retention/rec-1",
		fmt.Sprintf("%d/content", seqOf["ai-mid"]):    "retention/rec-1",
		fmt.Sprintf("%d/content", seqOf["auth-old"]):  "retention/rec-1",
		fmt.Sprintf("%d/content", seqOf["auth-keep"]): "retention/rec-1",
		fmt.Sprintf("%d/content", seqOf["auth-new"]):  "erasure/rec-2",
	} {
		if covered[key] != want {
			t.Errorf("removal %s recorded as %q, want %q", key, covered[key], want)
		}
	}
	if len(covered) != 5 {
		t.Errorf("%d removals recorded, want 5: %v", len(covered), covered)
	}
	if rms, _ := s.Removals(ctx, other.ID, 0, 100); len(rms) != 0 {
		t.Errorf("org b has removals: %+v", rms)
	}
	// An expired id can be used again (it is gone with its envelope); a
	// kept one is still a duplicate.
	if r := mustAppend(t, s, org.ID, mk("ai-new", "ai.prompt", "u2", 1*day)); !r[0].Duplicate {
		t.Errorf("a kept event submitted again: %+v", r[0])
	}
}
