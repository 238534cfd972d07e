package storetest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// allEvents reads every event of org in seq order.
func allEvents(t *testing.T, s veritrail.Store, org int64, content bool) []veritrail.StoredEvent {
	t.Helper()
	q := &veritrail.Query{Order: veritrail.OrderSeq, Limit: veritrail.MaxLimit, WithContent: content}
	var out []veritrail.StoredEvent
	for {
		p, err := s.Query(context.Background(), org, q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Events...)
		if len(p.Events) == 0 {
			return out
		}
		q.After = p.Next
	}
}

// testLog checks the Merkle log a store keeps against a tree built here
// from the envelopes it returns: the head, tiles good for inclusion and
// consistency proofs at and across tile boundaries, checkpoints, witness
// records and set-once settings.
func testLog(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	a, b := newOrg(t, s, "log-a"), newOrg(t, s, "log-b")
	if size, root, err := s.LogHead(ctx, a.ID); err != nil || size != 0 || !bytes.Equal(root, tlog.EmptyRoot()) {
		t.Fatalf("empty head: %d %x %v", size, root, err)
	}
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var roots = map[int64][]byte{}
	n := 0
	for _, batch := range []int{1, 2, 253, 1, 256, 300, 1} {
		evs := make([]*veritrail.Event, batch)
		for i := range evs {
			evs[i] = event(fmt.Sprintf("l%04d", n), "auth.login", base.Add(time.Duration(n)*time.Second))
			n++
		}
		mustAppend(t, s, a.ID, evs...)
		size, root, err := s.LogHead(ctx, a.ID)
		if err != nil || size != int64(n) {
			t.Fatalf("head after %d events: size %d, %v", n, size, err)
		}
		roots[size] = root
	}
	mustAppend(t, s, b.ID, event("other", "auth.login", base))

	stored := allEvents(t, s, a.ID, false)
	if len(stored) != n {
		t.Fatalf("%d events read back, %d appended", len(stored), n)
	}
	builder := tlog.NewBuilder()
	leaves := make([][]byte, n)
	for i, ev := range stored {
		if ev.Seq != int64(i) {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
		h := veritrail.LeafHash(ev.Envelope)
		leaves[i] = h[:]
		builder.Append(h[:])
		if r, ok := roots[int64(i+1)]; ok && !bytes.Equal(r, builder.Root()) {
			t.Errorf("the stored root at size %d is not the root of the envelopes", i+1)
		}
	}
	read := func(ctx context.Context, id tlog.TileID) ([]byte, error) {
		return s.ReadTile(ctx, a.ID, id.Level, id.Index)
	}
	root := builder.Root()
	for _, i := range []int{0, 1, 255, 256, 257, 511, 512, n - 2, n - 1} {
		p, err := tlog.InclusionProof(ctx, read, uint64(i), uint64(n))
		if err != nil {
			t.Fatalf("inclusion proof of %d: %v", i, err)
		}
		if err := tlog.VerifyInclusion(uint64(i), uint64(n), leaves[i], p, root); err != nil {
			t.Errorf("inclusion of %d in %d: %v", i, n, err)
		}
	}
	for size, r := range roots {
		p, err := tlog.ConsistencyProof(ctx, read, uint64(size), uint64(n))
		if err != nil {
			t.Fatalf("consistency %d→%d: %v", size, n, err)
		}
		if err := tlog.VerifyConsistency(uint64(size), uint64(n), p, r, root); err != nil {
			t.Errorf("consistency %d→%d: %v", size, n, err)
		}
	}
	if _, err := s.ReadTile(ctx, b.ID, 0, 1); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("a tile org b does not have: %v", err)
	}

	// Checkpoints only go forward.
	if _, err := s.LatestCheckpoint(ctx, a.ID); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("latest checkpoint of a new log: %v", err)
	}
	cp := func(size int64, root []byte) *veritrail.Checkpoint {
		return &veritrail.Checkpoint{Size: size, Root: root, Note: []byte(fmt.Sprintf("note %d\n", size)), SignedAt: base}
	}
	for _, c := range []*veritrail.Checkpoint{cp(3, roots[3]), cp(3, roots[3]), cp(n0(roots, 513), roots[n0(roots, 513)])} {
		if err := s.AddCheckpoint(ctx, a.ID, c); err != nil {
			t.Fatalf("add checkpoint %d: %v", c.Size, err)
		}
	}
	for name, c := range map[string]*veritrail.Checkpoint{"smaller": cp(3, roots[3]), "other root": cp(n0(roots, 513), roots[3])} {
		if err := s.AddCheckpoint(ctx, a.ID, c); veritrail.ErrorCode(err) != veritrail.EConflict {
			t.Errorf("%s checkpoint: %v", name, err)
		}
	}
	latest, err := s.LatestCheckpoint(ctx, a.ID)
	if err != nil || latest.Size != n0(roots, 513) || !strings.HasPrefix(string(latest.Note), "note") {
		t.Errorf("latest: %+v %v", latest, err)
	}
	if cps, _ := s.Checkpoints(ctx, a.ID, 4, 10); len(cps) != 1 {
		t.Errorf("checkpoints from size 4: %d", len(cps))
	}
	if _, err := s.LatestCheckpoint(ctx, b.ID); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("org b sees a checkpoint: %v", err)
	}

	// Witness attempts, newest first, per organization.
	s.RecordWitness(ctx, a.ID, 3, "https://w1.example", false, "down")
	s.RecordWitness(ctx, a.ID, 3, "https://w2.example", true, "")
	if ws, _ := s.WitnessLog(ctx, a.ID, 10); len(ws) != 2 || ws[0].URL != "https://w2.example" || !ws[0].OK || ws[1].Detail != "down" {
		t.Errorf("witness log: %+v", ws)
	}
	if ws, _ := s.WitnessLog(ctx, b.ID, 10); len(ws) != 0 {
		t.Errorf("org b's witness log: %+v", ws)
	}

	// Installation settings are set once.
	if v, err := s.Setting(ctx, "origin_prefix", "first.example"); err != nil || v != "first.example" {
		t.Fatalf("setting: %q %v", v, err)
	}
	if v, _ := s.Setting(ctx, "origin_prefix", "second.example"); v != "first.example" {
		t.Errorf("a set-once setting changed to %q", v)
	}
	if _, err := s.Setting(ctx, "never_set", ""); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("unset setting: %v", err)
	}
}

// n0 returns the largest recorded size not above max.
func n0(roots map[int64][]byte, max int64) int64 {
	best := int64(0)
	for size := range roots {
		if size <= max && size > best {
			best = size
		}
	}
	return best
}

// testRetention checks expiry by category tier, erasure by actor, the
// removal records, and that the tree never changes.
func testRetention(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	org, other := newOrg(t, s, "ret-a"), newOrg(t, s, "ret-b")
	now := time.Now().UTC()
	st, err := s.OrgSettings(ctx, org.ID)
	if err != nil || st.AIInteractionLogsEnabled {
		t.Fatalf("default settings: %+v %v", st, err)
	}
	st = veritrail.DefaultSettings()
	st.Retention = []veritrail.RetentionRule{{Category: "*", ContentDays: 90, MetadataDays: 730}, {Category: "ai", ContentDays: 30, MetadataDays: 365}}
	if err := s.PutOrgSettings(ctx, org.ID, st); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.OrgSettings(ctx, org.ID); len(got.Retention) != 2 || got.Retention[1].MetadataDays != 365 {
		t.Fatalf("settings read back: %+v", got)
	}
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
	er, err := s.EraseContent(ctx, org.ID, veritrail.Filter{Field: veritrail.FieldActorID, Ranges: []veritrail.KeyRange{veritrail.Exact("u3")}}, "rec-2")
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

// testEnqueue: an enqueued event is appended (at once, or by the process
// that appends, soon).
func testEnqueue(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	org := newOrg(t, s, "enq")
	e := event("enq-1", "audit.token_created", time.Now())
	if err := s.Enqueue(ctx, org.ID, e); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := s.EventByID(ctx, org.ID, "enq-1", false); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the enqueued event was not appended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
