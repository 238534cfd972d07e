package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// pageAll follows cursors to the end and checks that no event repeats.
func pageAll(t *testing.T, s veritrail.Store, org int64, q *veritrail.Query) []string {
	t.Helper()
	var ids []string
	seen := map[string]bool{}
	qq := *q
	qq.After = nil
	for range 100000 {
		page, err := s.Query(context.Background(), org, &qq)
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		for _, ev := range page.Events {
			e, err := veritrail.ParseEnvelope(ev.Envelope)
			if err != nil {
				t.Fatal(err)
			}
			if seen[e.ID] {
				t.Fatalf("event %s returned twice", e.ID)
			}
			seen[e.ID] = true
			ids = append(ids, e.ID)
		}
		if page.Next == nil || (qq.Order == veritrail.OrderSeq && len(page.Events) == 0) {
			return ids
		}
		if page.Next.Fingerprint != qq.Fingerprint() {
			t.Fatalf("cursor fingerprint mismatch")
		}
		// Round-trip the cursor through its wire form, as clients do.
		c, err := veritrail.DecodeCursor(page.Next.Encode(), &qq)
		if err != nil {
			t.Fatalf("decode own cursor: %v", err)
		}
		qq.After = c
	}
	t.Fatal("paging did not end")
	return nil
}

// oracle returns the ids of evs matching q, in q's order.
func oracle(evs []*veritrail.Event, q *veritrail.Query) []string {
	var m []*veritrail.Event
	for _, e := range evs {
		if q.Match(e) {
			m = append(m, e)
		}
	}
	slices.SortFunc(m, func(a, b *veritrail.Event) int {
		switch q.Order {
		case veritrail.OrderSeq:
			return int(a.Seq - b.Seq)
		case veritrail.OrderAsc:
			if c := a.Time.Compare(b.Time); c != 0 {
				return c
			}
			return int(a.Seq - b.Seq)
		}
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return int(b.Seq - a.Seq)
	})
	ids := make([]string, len(m))
	for i, e := range m {
		ids[i] = e.ID
	}
	return ids
}

var (
	poolTypes    = []string{"auth.login", "auth.logout", "auth.login_failed", "agent.tool_call", "agent.action", "ai.interaction", "board.board_opened", "team.member_invited", "authentication.sign_in_failed", "user.password_reset"}
	poolActors   = []string{"u1", "u2", "u3", "u4", "u5", "u6", "svc-ci"}
	poolTasks    = []string{"", "t1", "t2", "t3", "t4"}
	poolAgents   = []string{"", "agt-a", "agt-b"}
	poolSessions = []string{"", "s1", "s2", "s3"}
	poolConns    = []string{"", "github", "slack", "salesforce"}
	poolTools    = []string{"", "create_issue", "post_message", "export_contacts"}
	poolIPs      = []string{"", "10.0.0.1", "10.0.0.2", "10.1.2.3", "192.0.2.10", "2001:db8::1"}
	poolTargets  = []string{"", "board-1", "board-2", "repo-1"}
	poolTeams    = []string{"", "team-a", "team-b"}
	poolStatus   = []int64{0, 200, 201, 401, 403, 500, -32601}
	poolRequests = []string{"", "", "req-1", "req-2", "req/α"}
	poolAgents2  = []string{"", "curl/8.5.0", "curl/7.1", "Mozilla/5.0 (X11)", "python-requests/2.31"}
)

// genEvents makes n varied events with times spread over 10 days, some out
// of order and some sharing a timestamp (to exercise ties).
func genEvents(rnd *rand.Rand, n int, prefix string) []*veritrail.Event {
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	evs := make([]*veritrail.Event, n)
	pick := func(p []string) string { return p[rnd.IntN(len(p))] }
	for i := range evs {
		at := base.Add(time.Duration(i) * 10 * time.Second)
		switch rnd.IntN(10) {
		case 0:
			at = base.Add(time.Duration(rnd.IntN(10*24)) * time.Hour) // out of order
		case 1:
			at = base.Add(time.Duration(i/7) * 70 * time.Second) // ties
		}
		actor := pick(poolActors)
		e := &veritrail.Event{
			ID: fmt.Sprintf("%s%05d", prefix, i), Time: at, Type: pick(poolTypes),
			Actor:  veritrail.Actor{Type: "user", ID: actor, Email: actor + "@Example.com"},
			TaskID: pick(poolTasks), AgentID: pick(poolAgents), SessionID: pick(poolSessions),
			Connector: pick(poolConns), Tool: pick(poolTools),
		}
		if strings.HasPrefix(actor, "svc") {
			e.Actor.Type = "service"
		}
		if c := (veritrail.Context{IP: pick(poolIPs), TeamID: pick(poolTeams), RequestID: pick(poolRequests), UserAgent: pick(poolAgents2)}); c != (veritrail.Context{}) {
			e.Context = &c
		}
		if tg := pick(poolTargets); tg != "" {
			e.Target = &veritrail.Target{Type: "board", ID: tg}
		}
		switch rnd.IntN(3) {
		case 0:
			e.Outcome = "success"
		case 1:
			e.Outcome = "failure"
		}
		if st := poolStatus[rnd.IntN(len(poolStatus))]; st != 0 {
			e.Status = &st
		}
		if rnd.IntN(4) == 0 {
			e.Decision = &veritrail.Decision{Action: []string{"allowed", "blocked", "redacted"}[rnd.IntN(3)], Policy: "p"}
		}
		evs[i] = e
	}
	return evs
}

// appendInVariedBatches appends evs in batches of varying size, some
// concurrently, so stores see small and large group commits.
func appendInVariedBatches(t *testing.T, s veritrail.Store, org int64, evs []*veritrail.Event, rnd *rand.Rand) {
	t.Helper()
	sizes := []int{1, 3, 17, 64, 250, 1000}
	for i := 0; i < len(evs); {
		n := min(sizes[rnd.IntN(len(sizes))], len(evs)-i)
		mustAppend(t, s, org, evs[i:i+n]...)
		i += n
	}
}

// scale shrinks test sizes under the race detector, which slows the
// pure-Go SQLite down some 40 times.
func scale(n int) int {
	if raceEnabled {
		return n / 3
	}
	return n
}

func rng(name string) *rand.Rand {
	var seed uint64
	for _, c := range name {
		seed = seed*31 + uint64(c)
	}
	return rand.New(rand.NewPCG(seed, 42))
}

func testFiltersAgainstOracle(t *testing.T, open Opener) {
	s := openStore(t, open)
	org := newOrg(t, s, "acme")
	noise := newOrg(t, s, "noise")
	rnd := rng(t.Name())
	evs := genEvents(rnd, scale(6000), "e")
	appendInVariedBatches(t, s, org.ID, evs, rnd)
	appendInVariedBatches(t, s, noise.ID, genEvents(rnd, 500, "e"), rnd)

	single := []struct {
		field veritrail.Field
		vals  []string
	}{
		{veritrail.FieldType, []string{"auth.login", "agent.tool_call", "auth.*", "nope.none"}},
		{veritrail.FieldActorID, []string{"u1", "svc-ci"}},
		{veritrail.FieldActorEmail, []string{"u2@example.com", "U3@EXAMPLE.COM"}},
		{veritrail.FieldActorType, []string{"service"}},
		{veritrail.FieldTaskID, []string{"t1", "t4"}},
		{veritrail.FieldAgentID, []string{"agt-b"}},
		{veritrail.FieldSessionID, []string{"s2"}},
		{veritrail.FieldOutcome, []string{"success", "failure"}},
		{veritrail.FieldConnector, []string{"github", "salesforce"}},
		{veritrail.FieldTool, []string{"export_contacts"}},
		{veritrail.FieldStatus, []string{"403", "-32601", "2xx", "5xx"}},
		{veritrail.FieldDecision, []string{"blocked", "redacted"}},
		{veritrail.FieldIP, []string{"10.0.0.1", "10.0.0.0/8", "10.0.0.0/24", "2001:db8::/32", "192.0.2.10"}},
		{veritrail.FieldTargetID, []string{"board-2"}},
		{veritrail.FieldTargetType, []string{"board"}},
		{veritrail.FieldTeamID, []string{"team-a"}},
		{veritrail.FieldRequestID, []string{"req-1", "req/α"}},
		{veritrail.FieldUserAgent, []string{"curl/*", "Mozilla/5.0 (X11)"}},
		{veritrail.FieldClass, []string{"authentication", "api_activity", "group_management", "3001"}},
	}
	var queries []*veritrail.Query
	for _, f := range single {
		for i, v := range f.vals {
			kr, err := veritrail.ParseFilterValue(f.field, v)
			if err != nil {
				t.Fatalf("%s=%s: %v", f.field, v, err)
			}
			queries = append(queries,
				&veritrail.Query{Filters: []veritrail.Filter{{Field: f.field, Ranges: []veritrail.KeyRange{kr}}}},
				&veritrail.Query{Filters: []veritrail.Filter{{Field: f.field, Exclude: []veritrail.KeyRange{kr}}}})
			if i > 0 {
				// A value but not another: auth.* but not auth.login.
				first, _ := veritrail.ParseFilterValue(f.field, f.vals[0])
				queries = append(queries, &veritrail.Query{Filters: []veritrail.Filter{{Field: f.field, Ranges: []veritrail.KeyRange{first}, Exclude: []veritrail.KeyRange{kr}}}})
			}
		}
	}
	// Random combinations, windows, OR-ed and excluded values.
	for range 60 {
		q := &veritrail.Query{}
		for _, k := range rnd.Perm(len(single))[:1+rnd.IntN(3)] {
			f := single[k]
			filter := veritrail.Filter{Field: f.field}
			for _, v := range f.vals[:1+rnd.IntN(len(f.vals))] {
				kr, _ := veritrail.ParseFilterValue(f.field, v)
				if rnd.IntN(3) == 0 {
					filter.Exclude = append(filter.Exclude, kr)
				} else {
					filter.Ranges = append(filter.Ranges, kr)
				}
			}
			q.Filters = append(q.Filters, filter)
		}
		if rnd.IntN(2) == 0 {
			q.Since = evs[0].Time.Add(time.Duration(rnd.IntN(5*24)) * time.Hour)
			q.Until = q.Since.Add(time.Duration(1+rnd.IntN(4*24)) * time.Hour)
		}
		queries = append(queries, q)
	}
	queries = append(queries, &veritrail.Query{}, &veritrail.Query{Since: evs[100].Time}, &veritrail.Query{Until: evs[100].Time})
	for i, q := range queries {
		for _, order := range []veritrail.Order{veritrail.OrderDesc, veritrail.OrderAsc, veritrail.OrderSeq} {
			qq := *q
			qq.Order = order
			want := oracle(evs, &qq)
			// Small pages: every page boundary is a chance to skip or
			// repeat. At most about 20 pages per query keeps it quick.
			qq.Limit = []int{1, 7, 100, 1000}[i%4]
			if len(want) > 20*qq.Limit {
				qq.Limit = min(len(want)/20+1, veritrail.MaxLimit)
			}
			got := pageAll(t, s, org.ID, &qq)
			if !slices.Equal(got, want) {
				t.Fatalf("query %d %s (filters %s, since %v, until %v, limit %d): got %d events, want %d\n first got  %v\n first want %v",
					i, order, describe(qq.Filters), qq.Since, qq.Until, qq.Limit, len(got), len(want), head(got), head(want))
			}
		}
	}
}

func describe(fs []veritrail.Filter) string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, fmt.Sprintf("%s×%d-%d", f.Field, len(f.Ranges), len(f.Exclude)))
	}
	return strings.Join(parts, " ")
}

func head(ids []string) []string { return ids[:min(len(ids), 8)] }

// testPagingWhileWriting pages through a time-ordered query while writers
// add events: every event present before paging began appears exactly once.
func testPagingWhileWriting(t *testing.T, open Opener) {
	s := openStore(t, open)
	org := newOrg(t, s, "acme")
	rnd := rng(t.Name())
	before := genEvents(rnd, scale(3000), "b")
	appendInVariedBatches(t, s, org.ID, before, rnd)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rng("writer")
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// New events land everywhere in time, including the region
			// being paged through.
			evs := genEvents(r, 20, fmt.Sprintf("w%d-", i))
			if _, err := s.Append(context.Background(), org.ID, evs); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for _, order := range []veritrail.Order{veritrail.OrderDesc, veritrail.OrderAsc} {
		got := pageAll(t, s, org.ID, &veritrail.Query{Order: order, Limit: 37})
		seen := map[string]bool{}
		for _, id := range got {
			seen[id] = true
		}
		for _, e := range before {
			if !seen[e.ID] {
				t.Errorf("%s paging skipped %s", order, e.ID)
			}
		}
	}
	close(stop)
	wg.Wait()
}

// testPollingWhileWriting tails the log in seq order while writers append:
// the poller sees every event exactly once, in seq order, and always holds
// a cursor.
func testPollingWhileWriting(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	org := newOrg(t, s, "acme")
	q := &veritrail.Query{Order: veritrail.OrderSeq, Limit: 50}
	page, err := s.Query(ctx, org.ID, q)
	if err != nil {
		t.Fatal(err)
	}
	if page.Next == nil || len(page.Events) != 0 {
		t.Fatalf("empty log: polling must still return a cursor (%+v)", page)
	}
	const total = 2000
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := rng("poll-writer")
		for i := 0; i < total; i += 25 {
			evs := genEvents(r, 25, fmt.Sprintf("p%d-", i))
			if _, err := s.Append(ctx, org.ID, evs); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var seqs []int64
	cursor := page.Next
	finished := false
	for len(seqs) < total {
		qq := *q
		qq.After = cursor
		page, err := s.Query(ctx, org.ID, &qq)
		if err != nil {
			t.Fatal(err)
		}
		if page.Next == nil {
			t.Fatal("polling page without a next cursor")
		}
		for _, ev := range page.Events {
			seqs = append(seqs, ev.Seq)
		}
		cursor = page.Next
		if finished && len(page.Events) == 0 {
			break
		}
		select {
		case <-done:
			finished = true
		default:
		}
	}
	<-done
	if len(seqs) != total {
		t.Fatalf("poller saw %d events, want %d", len(seqs), total)
	}
	for i, sq := range seqs {
		if sq != int64(i) {
			t.Fatalf("poller's %dth event has seq %d: skipped or repeated", i, sq)
		}
	}
}

func testFullText(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	org := newOrg(t, s, "acme")
	other := newOrg(t, s, "globex")
	a := event("ft-1", "ai.interaction", time.Now().Add(-time.Hour))
	a.Content = []byte(`{"prompt":"Summarise the quarterly zanzibar forecast","response":"Rev up 12%"}`)
	b := event("ft-2", "agent.tool_call", time.Now().Add(-time.Minute))
	b.Actor.Name = "Priya Zanzibarova"
	b.Tool = "create_issue"
	c := event("ft-3", "auth.login", time.Now())
	c.Content = []byte(`{"note":"nothing here"}`)
	d := event("ft-4", "board.viewed", time.Now().Add(-2*time.Hour))
	d.Actor.Name = "Zoë Müller-Ångström"
	d.Content = []byte(`{"note":"Réunion au café de Søren"}`)
	mustAppend(t, s, org.ID, a, b, c, d)
	leak := event("ft-x", "ai.interaction", time.Now())
	leak.Content = []byte(`{"prompt":"zanzibar in another org"}`)
	mustAppend(t, s, other.ID, leak)
	if fs, ok := s.(FullTextSyncer); ok {
		if err := fs.SyncFullText(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		q       string
		content bool
		want    string
	}{
		{"zanzibar", true, "ft-1"},       // content word
		{"zanzibar", false, ""},          // content word, reader without content access
		{"zanzibarova", false, "ft-2"},   // envelope word
		{"zanzibar*", true, "ft-2,ft-1"}, // prefix, both
		{"zanzibar*", false, "ft-2"},     // prefix, envelope only
		{"quarterly FORECAST", true, "ft-1"},
		{"quarterly missing", true, ""},
		{"create_issue", false, "ft-2"},
		{"priya@zanzibarova", false, "ft-2"},
		// Accents are folded on both sides (SQLite's unicode61
		// remove_diacritics): é and e match each other; ø has no
		// decomposition and stays itself.
		{"zoe muller", false, "ft-4"},
		{"ZOË angstrom", false, "ft-4"},
		{"reunion cafe", true, "ft-4"},
		{"réunion", true, "ft-4"},
		{"caf*", true, "ft-4"},
		{"søren", true, "ft-4"},
	} {
		q := &veritrail.Query{Text: tc.q, TextInContent: tc.content}
		got := strings.Join(pageAll(t, s, org.ID, q), ",")
		if got != tc.want {
			t.Errorf("q=%q content=%v: got %q, want %q", tc.q, tc.content, got, tc.want)
		}
	}
	// Text combines with filters.
	kr, _ := veritrail.ParseFilterValue(veritrail.FieldType, "agent.*")
	q := &veritrail.Query{Text: "zanzibar*", TextInContent: true, Filters: []veritrail.Filter{{Field: veritrail.FieldType, Ranges: []veritrail.KeyRange{kr}}}}
	if got := strings.Join(pageAll(t, s, org.ID, q), ","); got != "ft-2" {
		t.Errorf("text and type filter: %q", got)
	}
	if _, err := s.Query(ctx, org.ID, &veritrail.Query{Text: "!!! ???"}); veritrail.ErrorCode(err) != veritrail.EInvalid {
		t.Errorf("q without words: %v, want invalid_request", err)
	}
}

func testCursors(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	org := newOrg(t, s, "acme")
	for i := range 5 {
		mustAppend(t, s, org.ID, event(fmt.Sprintf("c%d", i), "auth.login", time.Now()))
	}
	q := &veritrail.Query{Limit: 2}
	page, err := s.Query(ctx, org.ID, q)
	if err != nil || page.Next == nil || len(page.Events) != 2 {
		t.Fatalf("first page: %+v %v", page, err)
	}
	enc := page.Next.Encode()
	if strings.ContainsAny(enc, "+/=") {
		t.Fatalf("cursor %q is not URL-safe", enc)
	}
	other := &veritrail.Query{Limit: 2, Order: veritrail.OrderAsc}
	if _, err := veritrail.DecodeCursor(enc, other); veritrail.ErrorCode(err) != veritrail.EInvalidCursor {
		t.Fatalf("cursor reused with another order: %v", err)
	}
	kr, _ := veritrail.ParseFilterValue(veritrail.FieldType, "auth.login")
	filtered := &veritrail.Query{Limit: 2, Filters: []veritrail.Filter{{Field: veritrail.FieldType, Ranges: []veritrail.KeyRange{kr}}}}
	if _, err := veritrail.DecodeCursor(enc, filtered); veritrail.ErrorCode(err) != veritrail.EInvalidCursor {
		t.Fatalf("cursor reused with other filters: %v", err)
	}
	for _, bad := range []string{"x", "!!!", enc + "A", ""} {
		if _, err := veritrail.DecodeCursor(bad, q); veritrail.ErrorCode(err) != veritrail.EInvalidCursor {
			t.Fatalf("garbage cursor %q: %v", bad, err)
		}
	}
	// A bounded query's last page has no cursor.
	all := &veritrail.Query{Limit: 5}
	if page, _ := s.Query(ctx, org.ID, all); page.Next != nil {
		t.Fatalf("last page has a cursor")
	}
}
