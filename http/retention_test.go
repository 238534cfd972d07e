package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/checkpoint"
	vhttp "github.com/veritrail/veritrail/http"
	"github.com/veritrail/veritrail/mcp"
	"github.com/veritrail/veritrail/metrics"
	"github.com/veritrail/veritrail/tlog"
	"github.com/veritrail/veritrail/verify"
)

// clock is a controllable clock shared by the server and the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

type retEnv struct {
	*env
	clock *clock
	cpr   *checkpoint.Checkpointer
	vkey  string
	dir   string
}

func newRetEnv(t *testing.T) *retEnv {
	t.Helper()
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	m := metrics.New()
	store := openStore(t, dir, storeOptions{Observer: m, Now: c.now, BucketShift: 5})
	key, _ := tlog.GenerateKey()
	cpr, err := checkpoint.New(ctx, checkpoint.Config{Store: store, Key: key, OriginPrefix: "test.example", Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	api := vhttp.New(vhttp.Config{Store: store, Metrics: m, Checkpointer: cpr, Now: c.now,
		CheckMCPPolicy: func(b []byte) error { _, err := mcp.ParsePolicy(b); return err }})
	srv := httptest.NewServer(api)
	t.Cleanup(func() { srv.Close(); api.Shutdown(ctx); store.Close() })
	e := &env{t: t, store: store, srv: srv, api: api}
	e.org, _ = store.CreateOrg(ctx, "acme")
	e.owner = e.token(e.org, veritrail.RoleOwner, nil, nil)
	vkey, _ := cpr.VerifierKey(e.org)
	return &retEnv{env: e, clock: c, cpr: cpr, vkey: vkey, dir: dir}
}

func (e *retEnv) putSettings(body string) response {
	return e.do("PUT", "/api/v1/settings", e.owner, strings.NewReader(body))
}

// state returns, for an event id, whether its envelope and its content can
// still be read.
func (e *retEnv) state(id string) (envelope, content bool) {
	r := e.do("GET", "/api/v1/events/"+id, e.owner, nil)
	if r.status == 404 {
		return false, false
	}
	if r.status != 200 {
		e.t.Fatalf("get %s: %d %s", id, r.status, r.body)
	}
	return true, strings.Contains(string(r.body), `"content":`)
}

func TestSettingsAndAISwitch(t *testing.T) {
	e := newRetEnv(t)
	r := e.do("GET", "/api/v1/settings", e.owner, nil)
	var st veritrail.Settings
	json.Unmarshal(r.body, &st)
	if r.status != 200 || st.AIInteractionLogsEnabled || st.Rule("auth").ContentDays != 90 || st.Rule("ai").ContentDays != 30 {
		t.Fatalf("defaults: %d %s", r.status, r.body)
	}
	for body, msg := range map[string]string{
		`{"retention":[{"category":"*","content_days":10,"metadata_days":5}]}`:                                        "retention[0]",
		`{"retention":[{"category":"ai","content_days":1,"metadata_days":2}]}`:                                        `a rule for category`,
		`{"retention":[{"category":"*","content_days":1,"metadata_days":2},{"category":"Bad Cat","content_days":1}]}`: "retention[1].category",
		`{"retention":[{"category":"*","content_days":-1,"metadata_days":2}]}`:                                        "retention[0].content_days",
		`{"ai_interaction_logs_enabled":"yes"}`:                                                                       "request body",
	} {
		if r := e.putSettings(body); r.status != 400 || !strings.Contains(string(r.body), msg) {
			t.Errorf("%s: %d %s (want %s)", body, r.status, r.body, msg)
		}
	}
	ai := func(id string, at time.Time) string {
		return fmt.Sprintf(`{"id":%q,"time":%q,"type":"ai.interaction","actor":{"type":"user","id":"u"},"content":{"prompt":"p"}}`, id, at.Format(time.RFC3339))
	}
	now := e.clock.now()
	r = e.post(ai("ai-off", now) + "\n" + `{"id":"login-1","type":"auth.login","actor":{"type":"user","id":"u"}}`)
	if r.status != 200 || !strings.Contains(string(r.body), `{"id":"ai-off","recorded":false,"reason":"AI interaction logs are turned off`) ||
		!strings.Contains(string(r.body), `{"id":"login-1","seq":`) {
		t.Fatalf("AI event while off: %d %s", r.status, r.body)
	}
	if env, _ := e.state("ai-off"); env {
		t.Fatal("an AI event was stored while collection was off")
	}
	// On: later interactions are kept, earlier ones not.
	if r := e.putSettings(`{"ai_interaction_logs_enabled":true,"retention":[{"category":"*","content_days":90,"metadata_days":730}]}`); r.status != 200 {
		t.Fatalf("turn on: %d %s", r.status, r.body)
	}
	e.clock.set(now.Add(time.Minute))
	r = e.post(ai("ai-before", now.Add(-time.Hour)) + "\n" + ai("ai-after", now.Add(30*time.Second)))
	if !strings.Contains(string(r.body), `{"id":"ai-before","recorded":false,"reason":"the interaction happened before`) ||
		!strings.Contains(string(r.body), `{"id":"ai-after","seq":`) {
		t.Fatalf("after turning on: %s", r.body)
	}
	// The change itself is recorded, with the settings before and after.
	r = e.do("GET", "/api/v1/events?type=settings.changed", e.owner, nil)
	var page struct {
		Data []struct {
			Content struct {
				Before veritrail.Settings `json:"before"`
				After  veritrail.Settings `json:"after"`
			} `json:"content"`
		} `json:"data"`
	}
	json.Unmarshal(r.body, &page)
	if len(page.Data) != 1 || page.Data[0].Content.Before.AIInteractionLogsEnabled || !page.Data[0].Content.After.AIInteractionLogsEnabled {
		t.Fatalf("settings.changed: %s", r.body)
	}
}

// TestRetentionTiers moves a controllable clock across every tier boundary:
// content goes at content_days, the envelope at metadata_days (per
// category), the leaf never; the log verifies at every step.
func TestRetentionTiers(t *testing.T) {
	e := newRetEnv(t)
	if r := e.putSettings(`{"ai_interaction_logs_enabled":true,"retention":[
		{"category":"*","content_days":10,"metadata_days":20},
		{"category":"ai","content_days":2,"metadata_days":5}]}`); r.status != 200 {
		t.Fatal(string(r.body))
	}
	t0 := e.clock.now()
	e.clock.set(t0.Add(time.Hour))
	// Events at t0 (after collection was turned on), auth and ai, and more
	// to fill several index buckets (2^5 events each).
	var b strings.Builder
	for i := 0; i < 100; i++ {
		typ := []string{"auth.login", "ai.interaction"}[i%2]
		fmt.Fprintf(&b, `{"id":"e%03d","time":%q,"type":%q,"actor":{"type":"user","id":"u%d","email":"u%d@example.com"},"content":{"secret":"word%03d"}}`+"\n",
			i, t0.Add(time.Duration(i)*time.Second).Format(time.RFC3339), typ, i%3, i%3, i)
	}
	if r := e.post(b.String()); r.status != 200 {
		t.Fatal(string(r.body))
	}
	day := 24 * time.Hour
	checks := []struct {
		at                   time.Duration // after t0
		authEnv, authContent bool
		aiEnv, aiContent     bool
	}{
		{2*day - 2*time.Minute, true, true, true, true},   // before the ai content boundary for every event
		{2*day + 2*time.Minute, true, true, true, false},  // ai content past 2 days
		{5*day - 2*time.Minute, true, true, true, false},  // ai envelope just kept
		{5*day + 2*time.Minute, true, true, false, false}, // ai envelope past 5 days
		{10*day + 2*time.Minute, true, false, false, false},
		{20*day - 2*time.Minute, true, false, false, false},
		{20*day + 2*time.Minute, false, false, false, false},
	}
	for _, c := range checks {
		e.clock.set(t0.Add(c.at))
		r := e.do("POST", "/api/v1/retention/run", e.owner, nil)
		if r.status != 200 {
			t.Fatalf("retention at +%s: %d %s", c.at, r.status, r.body)
		}
		// The run is recorded with its counts and seq ranges.
		var run struct {
			Record         string     `json:"record"`
			ContentRemoved int64      `json:"content_removed"`
			ContentRanges  [][2]int64 `json:"content_ranges"`
		}
		json.Unmarshal(r.body, &run)
		rec := e.do("GET", "/api/v1/events/"+run.Record, e.owner, nil)
		var recEv struct {
			Type    string
			Content struct {
				ContentRemoved int64      `json:"content_removed"`
				ContentRanges  [][2]int64 `json:"content_ranges"`
			}
		}
		json.Unmarshal(rec.body, &recEv)
		if recEv.Type != "retention.run" || recEv.Content.ContentRemoved != run.ContentRemoved || len(recEv.Content.ContentRanges) != len(run.ContentRanges) {
			t.Fatalf("record of the run at +%s: %s (answer %s)", c.at, rec.body, r.body)
		}
		if c.at == 2*day+2*time.Minute && run.ContentRemoved != 50 {
			t.Fatalf("the ai content run removed %d contents, want 50", run.ContentRemoved)
		}
		for i := 0; i < 100; i += 7 {
			id := fmt.Sprintf("e%03d", i)
			env, content := e.state(id)
			wantEnv, wantContent := c.authEnv, c.authContent
			if i%2 == 1 {
				wantEnv, wantContent = c.aiEnv, c.aiContent
			}
			if env != wantEnv || content != wantContent {
				t.Fatalf("at +%s, %s: envelope %v content %v, want %v %v", c.at, id, env, content, wantEnv, wantContent)
			}
		}
		e.verifyAll(fmt.Sprintf("after retention at +%s", c.at))
	}
	// Every run is recorded (the records themselves age under "*").
	r := e.do("GET", "/api/v1/events?type=retention.run&order=asc", e.owner, nil)
	var page struct {
		Data []json.RawMessage `json:"data"`
	}
	json.Unmarshal(r.body, &page)
	if len(page.Data) != len(checks) {
		t.Fatalf("%d retention records for %d runs", len(page.Data), len(checks))
	}
	// Full-text search finds nothing that is gone.
	syncFullText(e.store)
	if r := e.do("GET", "/api/v1/events?q=word001", e.owner, nil); strings.Contains(string(r.body), `"e001"`) {
		t.Fatalf("removed content still searchable: %s", r.body)
	}
	// Polling and paging skip removed events without breaking.
	r = e.do("GET", "/api/v1/events?order=seq&limit=10&type=auth.*,ai.*", e.owner, nil)
	if r.status != 200 || strings.Contains(string(r.body), `"e0`) {
		t.Fatalf("poll after expiry: %s", r.body)
	}
}

// verifyAll checks the whole log against its checkpoints, through the
// store as verify --data does: leaves from tiles for removed envelopes,
// content absent only where removed.
func (e *retEnv) verifyAll(when string) {
	e.t.Helper()
	ctx := context.Background()
	cp, err := e.cpr.Sign(ctx, e.org)
	if err != nil {
		e.t.Fatal(err)
	}
	st := e.store
	rs, _ := st.Removals(ctx, e.org.ID, 0, 1<<20)
	rm := verify.NewRemovals(rs)
	rep := &verify.Report{}
	opened := verify.OpenCheckpoints("acme", [][]byte{cp.Note}, e.vkey, rep)
	l := verify.NewLog("acme", opened, rep)
	leaf := func(seq int64) []byte {
		h, err := tlog.LeafHash(ctx, checkpoint.TileReader(st, e.org.ID), uint64(seq))
		if err != nil {
			e.t.Fatal(err)
		}
		return h
	}
	err = scanLog(ctx, st, e.org.ID, func(seq int64, env, content, salt []byte) error {
		for l.Size() < seq {
			gone, _ := rm.At(l.Size())
			l.Absent(l.Size(), leaf(l.Size()), gone)
		}
		_, contentGone := rm.At(seq)
		l.Event(seq, append([]byte(nil), env...), append([]byte(nil), content...), append([]byte(nil), salt...), leaf(seq), contentGone)
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	for l.Size() < cp.Size {
		gone, _ := rm.At(l.Size())
		l.Absent(l.Size(), leaf(l.Size()), gone)
	}
	l.Finish(cp.Size)
	if !rep.OK() {
		e.t.Fatalf("%s: verification failed: %v", when, rep.Failures)
	}
}

func TestErasure(t *testing.T) {
	e := newRetEnv(t)
	var b strings.Builder
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&b, `{"id":"x%02d","type":"team.message","actor":{"type":"user","id":"p%d","email":"P%d@Example.com"},"content":{"text":"note %02d"}}`+"\n", i, i%4, i%4, i)
	}
	e.post(b.String())
	for _, bad := range []string{`{}`, `{"actor_id":"a","actor_email":"b@c"}`, `{"user":"x"}`} {
		if r := e.do("POST", "/api/v1/erasure", e.owner, strings.NewReader(bad)); r.status != 400 {
			t.Errorf("%s: %d", bad, r.status)
		}
	}
	r := e.do("POST", "/api/v1/erasure", e.owner, strings.NewReader(`{"actor_email":"p1@example.com"}`))
	var res struct {
		Record         string `json:"record"`
		ContentRemoved int    `json:"content_removed"`
	}
	json.Unmarshal(r.body, &res)
	if r.status != 200 || res.ContentRemoved != 10 {
		t.Fatalf("erasure: %d %s", r.status, r.body)
	}
	for i := 0; i < 40; i++ {
		env, content := e.state(fmt.Sprintf("x%02d", i))
		if !env || content == (i%4 == 1) {
			t.Fatalf("x%02d after erasing p1: envelope %v content %v", i, env, content)
		}
	}
	// The record says what kind of identifier was erased, not which.
	rec := e.do("GET", "/api/v1/events/"+res.Record, e.owner, nil)
	if !strings.Contains(string(rec.body), `"type":"privacy.erasure"`) || strings.Contains(strings.ToLower(string(rec.body)), "p1@example.com") {
		t.Fatalf("erasure record: %s", rec.body)
	}
	e.verifyAll("after erasure")
	// Erasing again removes nothing more.
	r = e.do("POST", "/api/v1/erasure", e.owner, strings.NewReader(`{"actor_id":"p1"}`))
	json.Unmarshal(r.body, &res)
	if res.ContentRemoved != 0 {
		t.Fatalf("second erasure removed %d", res.ContentRemoved)
	}
	// An auditor may not erase.
	aud := e.token(e.org, veritrail.RoleAuditor, nil, nil)
	if r := e.do("POST", "/api/v1/erasure", aud, strings.NewReader(`{"actor_id":"p2"}`)); r.status != 403 {
		t.Fatalf("auditor erasure: %d", r.status)
	}
}

// scanLog calls fn for every stored event of org in seq order, through the
// store interface (so on any store).
func scanLog(ctx context.Context, s veritrail.Store, org int64, fn func(seq int64, env, content, salt []byte) error) error {
	q := &veritrail.Query{Order: veritrail.OrderSeq, Limit: veritrail.MaxLimit, WithContent: true}
	for {
		p, err := s.Query(ctx, org, q)
		if err != nil {
			return err
		}
		if len(p.Events) == 0 {
			return nil
		}
		for _, ev := range p.Events {
			if err := fn(ev.Seq, ev.Envelope, ev.Content, ev.Salt); err != nil {
				return err
			}
		}
		q.After = p.Next
	}
}
