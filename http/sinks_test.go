package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	vhttp "github.com/veritrail/veritrail/http"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/metrics"
	"github.com/veritrail/veritrail/seal"
	"github.com/veritrail/veritrail/sink"
	"github.com/veritrail/veritrail/sink/all"
	"github.com/veritrail/veritrail/sink/webhook"
	"github.com/veritrail/veritrail/sqlite"
)

// newSinkEnv is newEnv with the forwarding engine running.
func newSinkEnv(t *testing.T) *env { t.Helper(); return newSinkEnvFeed(t, nil) }

// newSinkEnvFeed is newSinkEnv with feed, if not nil, handed every commit.
func newSinkEnvFeed(t *testing.T, feed *sink.Feed) *env {
	t.Helper()
	ctx := context.Background()
	m := metrics.New()
	store, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := seal.New([]byte(strings.Repeat("k", seal.KeySize)))
	if feed != nil {
		t.Cleanup(store.Commits().Subscribe(feed.Add))
	}
	eng, err := sink.New(sink.Options{Outbound: netguard.Guard{AllowLoopback: true}, Store: store, Key: key, Types: all.Types(), Observer: m, Feed: feed,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PollInterval: 5 * time.Millisecond,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Receivers run on loopback, as an operator's would with
	// VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true.
	api := vhttp.New(vhttp.Config{Store: store, Metrics: m, Sinks: eng, Outbound: netguard.Guard{AllowLoopback: true}})
	srv := httptest.NewServer(api)
	ectx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); eng.Run(ectx) }()
	t.Cleanup(func() {
		stop()
		<-done
		srv.Close()
		api.Shutdown(context.Background())
		store.Close()
	})
	e := &env{t: t, store: store, srv: srv, api: api}
	if e.org, err = store.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	enableAI(t, store, e.org.ID)
	e.owner = e.token(e.org, veritrail.RoleOwner, nil, nil)
	return e
}

// hookReceiver verifies each body's HMAC and keeps the events' ids and
// seqs.
type hookReceiver struct {
	secret string
	mu     sync.Mutex
	seqs   []int64
	types  []string
	bodies []string
	bad    int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if !webhook.Verify([]byte(h.secret), b, r.Header.Get("X-Veritrail-Signature")) {
		h.mu.Lock()
		h.bad++
		h.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var body struct {
		Events []struct {
			Seq  int64  `json:"seq"`
			Type string `json:"type"`
		} `json:"events"`
	}
	json.Unmarshal(b, &body)
	h.mu.Lock()
	for _, ev := range body.Events {
		h.seqs = append(h.seqs, ev.Seq)
		h.types = append(h.types, ev.Type)
	}
	h.bodies = append(h.bodies, string(b))
	h.mu.Unlock()
}

func (h *hookReceiver) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seqs)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const hookSecret = "whsec-DO-NOT-SHOW-4242"

func TestSinkLifecycle(t *testing.T) {
	e := newSinkEnv(t)
	hook := &hookReceiver{secret: hookSecret}
	peer := httptest.NewServer(hook)
	defer peer.Close()

	r := e.do("POST", "/api/v1/sinks", e.owner, strings.NewReader(fmt.Sprintf(
		`{"name":"siem","type":"webhook","url":%q,"secret":%q,"content":true,"batch":{"max_events":50,"max_wait":"20ms"}}`, peer.URL, hookSecret)))
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var v struct {
		ID         string  `json:"id"`
		Name       string  `json:"name"`
		Type       string  `json:"type"`
		Format     string  `json:"format"`
		Content    bool    `json:"content"`
		SecretSet  bool    `json:"secret_set"`
		State      string  `json:"state"`
		Delivered  *int64  `json:"last_delivered_seq"`
		LagEvents  int64   `json:"lag_events"`
		LagSeconds float64 `json:"lag_seconds"`
		Filters    struct {
			Types []string `json:"types"`
		} `json:"filters"`
	}
	json.Unmarshal(r.body, &v)
	if v.ID == "" || v.Name != "siem" || v.Type != "webhook" || v.Format != "native" || !v.Content || !v.SecretSet || v.State != "active" {
		t.Fatalf("created: %s", r.body)
	}

	// Events flow to the peer, signed; the cursor and lag show it.
	for i := range 5 {
		if r := e.post(fmt.Sprintf(`[{"type":"agent.tool_call","actor":{"type":"agent","id":"a%d"},"content":{"n":%d}},{"type":"auth.login","actor":{"type":"user","id":"u"}}]`, i, i)); r.status != 200 {
			t.Fatalf("ingest: %d %s", r.status, r.body)
		}
	}
	head := func() int64 { h, _, _ := e.store.LogHead(context.Background(), e.org.ID); return h }
	waitUntil(t, "delivery", func() bool {
		k, _ := e.store.SinkByID(context.Background(), e.org.ID, v.ID)
		return k.Delivered == head()-1
	})
	if hook.bad != 0 {
		t.Fatalf("%d bodies failed the HMAC check", hook.bad)
	}
	hook.mu.Lock()
	for i, s := range hook.seqs {
		if s != int64(i) {
			t.Fatalf("received seq %d at position %d: %v", s, i, hook.seqs)
		}
	}
	hook.mu.Unlock()
	r = e.do("GET", "/api/v1/sinks/"+v.ID, e.owner, nil)
	json.Unmarshal(r.body, &v)
	if r.status != 200 || v.Delivered == nil || *v.Delivered < 10 {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	// Prometheus shows the lag and the deliveries.
	waitUntil(t, "lag metrics at 0", func() bool {
		m := e.do("GET", "/metrics", "", nil)
		return strings.Contains(string(m.body), `veritrail_sink_lag_events{org="acme",sink="`+v.ID+`"} 0`) &&
			strings.Contains(string(m.body), `veritrail_sink_delivered_events_total{org="acme",sink="`+v.ID+`"}`)
	})

	// Change it: only auth events from now on, metadata only.
	r = e.do("PATCH", "/api/v1/sinks/"+v.ID, e.owner, strings.NewReader(`{"filters":{"types":["auth.*"]},"content":false}`))
	if r.status != 200 {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	json.Unmarshal(r.body, &v)
	if v.Content || len(v.Filters.Types) != 1 || !v.SecretSet {
		t.Fatalf("patched: %s", r.body)
	}
	n := hook.count()
	e.post(`[{"type":"agent.tool_call","actor":{"type":"agent","id":"x"}},{"type":"auth.logout","actor":{"type":"user","id":"u"}}]`)
	waitUntil(t, "filtered delivery", func() bool {
		k, _ := e.store.SinkByID(context.Background(), e.org.ID, v.ID)
		return k.Delivered == head()-1
	})
	hook.mu.Lock()
	for _, typ := range hook.types[n:] {
		if !strings.HasPrefix(typ, "auth.") {
			t.Fatalf("a %s event passed the auth.* filter", typ)
		}
	}
	for _, b := range hook.bodies[len(hook.bodies)-1:] {
		if strings.Contains(b, `"content":`) {
			t.Fatalf("metadata-only sink received content: %s", b)
		}
	}
	hook.mu.Unlock()

	// Pause and resume by an administrator.
	r = e.do("PATCH", "/api/v1/sinks/"+v.ID, e.owner, strings.NewReader(`{"paused":true}`))
	json.Unmarshal(r.body, &v)
	if r.status != 200 || v.State != "paused" {
		t.Fatalf("pause: %d %s", r.status, r.body)
	}
	r = e.do("PATCH", "/api/v1/sinks/"+v.ID, e.owner, strings.NewReader(`{"paused":false}`))
	json.Unmarshal(r.body, &v)
	if r.status != 200 || v.State != "active" {
		t.Fatalf("resume: %d %s", r.status, r.body)
	}

	list := e.do("GET", "/api/v1/sinks", e.owner, nil)
	if list.status != 200 || !strings.Contains(string(list.body), v.ID) {
		t.Fatalf("list: %d %s", list.status, list.body)
	}
	if r := e.do("DELETE", "/api/v1/sinks/"+v.ID, e.owner, nil); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/api/v1/sinks/"+v.ID, e.owner, nil); r.status != 404 {
		t.Fatalf("get deleted: %d", r.status)
	}

	// Every change is in the audit trail, without the secret.
	page, _ := e.store.Query(context.Background(), e.org.ID, &veritrail.Query{Order: veritrail.OrderSeq, Limit: 1000, WithContent: true,
		Filters: []veritrail.Filter{{Field: veritrail.FieldType, Ranges: []veritrail.KeyRange{{Lo: "audit.sink_", Hi: "audit.sink`"}}}}})
	var types []string
	for _, ev := range page.Events {
		p, _ := veritrail.ParseEnvelope(ev.Envelope)
		types = append(types, p.Type)
		if strings.Contains(string(ev.Envelope)+string(ev.Content), hookSecret) {
			t.Fatalf("the audit record shows the secret: %s %s", ev.Envelope, ev.Content)
		}
		if !strings.Contains(string(ev.Envelope), v.ID) {
			t.Fatalf("the audit record does not name the sink: %s", ev.Envelope)
		}
	}
	want := "audit.sink_created audit.sink_updated audit.sink_updated audit.sink_updated audit.sink_deleted"
	if strings.Join(types, " ") != want {
		t.Fatalf("audit records %v, want %s", types, want)
	}
	for _, r := range []response{list, r} {
		if strings.Contains(string(r.body), hookSecret) {
			t.Fatal("an answer shows the secret")
		}
	}
}

func TestSinkValidation(t *testing.T) {
	e := newSinkEnv(t)
	for _, c := range []struct {
		body, field string
		status      int
	}{
		{`{"url":"https://x.example"}`, "type", 400},
		{`{"type":"ftp"}`, "type", 400},
		{`{"type":"webhook","secret":"s"}`, "url", 400},
		{`{"type":"webhook","url":"ftp://x.example","secret":"s"}`, "url", 400},
		{`{"type":"webhook","url":"https://user:pw@x.example","secret":"s"}`, "url", 400},
		{`{"type":"webhook","url":"https://x.example"}`, "secret", 400},
		{`{"type":"webhook","url":"https://x.example","secret":"s","secret_file":"/nonexistent"}`, "secret", 400},
		{`{"type":"webhook","url":"https://x.example","secret_file":"/nonexistent/key"}`, "secret_file", 400},
		{`{"type":"webhook","url":"https://x.example","secret":"s","format":"cef"}`, "format", 400},
		{`{"type":"webhook","url":"https://x.example","secret":"s","format":"xml"}`, "format", 400},
		{`{"type":"webhook","url":"https://x.example","secret":"s","topic":"t"}`, "topic", 400},
		{`{"type":"webhook","url":"https://x.example","secret":"s","colour":"red"}`, "colour", 400},
		{`{"type":"webhook","url":"https://x.example","secret":"s","batch":{"max_events":100000}}`, "batch.max_events", 400},
		{`{"type":"webhook","url":"https://x.example","secret":"s","batch":{"max_wait":"soon"}}`, "batch.max_wait", 400},
		{`{"type":"webhook","url":"https://x.example","secret":"s","batch":{"max_events":"ten"}}`, "batch.max_events", 400},
		{`{"type":"webhook","url":"https://x.example","secret":"s","filters":{"types":["Not A Type"]}}`, "filters.types[0]", 400},
		{`{"type":"webhook","url":"https://x.example","secret":"s","start":"yesterday"}`, "start", 400},
		{`{"type":"webhook","url":"https://x.example","secret":"s","name":"has space"}`, "name", 400},
		{`{"type":"splunk_hec","url":"https://splunk.example:8088"}`, "secret", 400},
		{`{"type":"datadog","secret":"k","site":"not a site"}`, "site", 400},
		{`{"type":"datadog","secret":"k","tags":["a,b"]}`, "tags[0]", 400},
		{`{"type":"datadog","secret":"k","batch":{"max_events":5000}}`, "batch.max_events", 400},
		{`{"type":"syslog","address":"nohost"}`, "address", 400},
		{`{"type":"syslog","address":"siem.example:6514","protocol":"udp"}`, "protocol", 400},
		{`{"type":"syslog","address":"siem.example:6514","framing":"crlf"}`, "framing", 400},
		{`{"type":"syslog","address":"siem.example:6514","facility":30}`, "facility", 400},
		{`{"type":"syslog","address":"siem.example:6514","format":"cef","content":true}`, "content", 400},
		{`{"type":"syslog","address":"siem.example:6514","secret":"s"}`, "secret", 400},
		{`{"type":"kafka","topic":"t"}`, "brokers", 400},
		{`{"type":"kafka","brokers":["k:9092"],"topic":"bad topic"}`, "topic", 400},
		{`{"type":"kafka","brokers":["k:9092"],"topic":"t","sasl":"plain"}`, "username", 400},
		{`{"type":"kafka","brokers":["k:9092"],"topic":"t","sasl":"plain","username":"u"}`, "secret", 400},
		{`[1,2]`, "", 400},
		{`{"type":`, "", 400},
	} {
		r := e.do("POST", "/api/v1/sinks", e.owner, strings.NewReader(c.body))
		var body struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
				Field   string `json:"field"`
			} `json:"error"`
		}
		json.Unmarshal(r.body, &body)
		if r.status != c.status || (c.field != "" && !strings.Contains(body.Error.Message, "field "+c.field+":")) {
			t.Errorf("%s: %d %s, want %d naming field %s", c.body, r.status, r.body, c.status, c.field)
		}
	}
	if l, _ := e.store.ListSinks(context.Background(), e.org.ID); len(l) != 0 {
		t.Fatalf("refused requests stored %d sinks", len(l))
	}
	// A valid one of each type.
	for _, body := range []string{
		`{"type":"webhook","url":"https://x.example/hook","secret":"s"}`,
		`{"type":"splunk_hec","url":"https://splunk.example:8088","secret":"t","index":"sec","format":"ocsf"}`,
		`{"type":"datadog","site":"datadoghq.eu","secret":"k","tags":["env:prod"]}`,
		`{"type":"syslog","address":"siem.example:6514","protocol":"tls","format":"cef"}`,
		`{"type":"kafka","brokers":["k1:9092","k2:9092"],"topic":"veritrail.events","format":"ocsf"}`,
	} {
		if r := e.do("POST", "/api/v1/sinks", e.owner, strings.NewReader(body)); r.status != 201 {
			t.Errorf("%s: %d %s", body, r.status, r.body)
		}
	}
	// Names are unique in an organization.
	if r := e.do("POST", "/api/v1/sinks", e.owner, strings.NewReader(`{"type":"webhook","url":"https://y.example","secret":"s"}`)); r.status != 409 {
		t.Fatalf("duplicate name: %d %s", r.status, r.body)
	}
	// The type does not change; start only at creation.
	l, _ := e.store.ListSinks(context.Background(), e.org.ID)
	for body, field := range map[string]string{`{"type":"kafka"}`: "type", `{"start":"now"}`: "start", `{"url":"nope"}`: "url", `{"name":"splunk_hec"}`: ""} {
		r := e.do("PATCH", "/api/v1/sinks/"+l[0].ID, e.owner, strings.NewReader(body))
		if r.status/100 != 4 || !strings.Contains(string(r.body), field) {
			t.Errorf("patch %s: %d %s", body, r.status, r.body)
		}
	}
}

func TestSinkAccess(t *testing.T) {
	e := newSinkEnv(t)
	body := `{"type":"webhook","url":"https://x.example/hook","secret":"s"}`
	for _, role := range []string{veritrail.RoleSecurity, veritrail.RoleAuditor, veritrail.RoleIngest} {
		tok := e.token(e.org, role, nil, nil)
		for _, m := range []string{"POST", "GET"} {
			if r := e.do(m, "/api/v1/sinks", tok, strings.NewReader(body)); r.status != 403 {
				t.Errorf("%s %s /api/v1/sinks: %d", role, m, r.status)
			}
		}
	}
	if r := e.do("GET", "/api/v1/sinks", "", nil); r.status != 401 {
		t.Errorf("no token: %d", r.status)
	}
	// An admin manages sinks but may not read content, so may not
	// forward it either.
	admin := e.token(e.org, veritrail.RoleAdmin, nil, nil)
	if r := e.do("POST", "/api/v1/sinks", admin, strings.NewReader(`{"type":"webhook","url":"https://x.example","secret":"s","content":true}`)); r.status != 403 {
		t.Fatalf("admin forwarding content: %d %s", r.status, r.body)
	}
	r := e.do("POST", "/api/v1/sinks", admin, strings.NewReader(body))
	if r.status != 201 {
		t.Fatalf("admin: %d %s", r.status, r.body)
	}
	var v struct{ ID string }
	json.Unmarshal(r.body, &v)
	if r := e.do("PATCH", "/api/v1/sinks/"+v.ID, admin, strings.NewReader(`{"content":true}`)); r.status != 403 {
		t.Fatalf("admin turning content on: %d %s", r.status, r.body)
	}
	// Another organization sees nothing of it.
	globex, _ := e.store.CreateOrg(context.Background(), "globex")
	other := e.token(globex, veritrail.RoleOwner, nil, nil)
	for _, m := range []string{"GET", "PATCH", "DELETE"} {
		if r := e.do(m, "/api/v1/sinks/"+v.ID, other, strings.NewReader(`{"name":"mine"}`)); r.status != 404 {
			t.Errorf("globex %s: %d %s", m, r.status, r.body)
		}
	}
	if r := e.do("GET", "/api/v1/sinks", other, nil); r.status != 200 || strings.Contains(string(r.body), v.ID) {
		t.Fatalf("globex list: %s", r.body)
	}
	if r := e.do("PUT", "/api/v1/sinks/"+v.ID, e.owner, nil); r.status != 405 {
		t.Fatalf("PUT: %d", r.status)
	}
}

// TestSinkDestinationsGuarded: without VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS
// a sink may not point at loopback, link-local or cloud metadata
// addresses (the server would be a way in to what only it can reach); the
// refusal names the field. Private networks stay allowed: SIEMs live there.
func TestSinkDestinationsGuarded(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := seal.New([]byte(strings.Repeat("k", seal.KeySize)))
	eng, err := sink.New(sink.Options{Store: store, Key: key, Types: all.Types(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	api := vhttp.New(vhttp.Config{Store: store, Sinks: eng})
	srv := httptest.NewServer(api)
	t.Cleanup(func() { srv.Close(); api.Shutdown(ctx); store.Close() })
	e := &env{t: t, store: store, srv: srv, api: api}
	e.org, _ = store.CreateOrg(ctx, "acme")
	e.owner = e.token(e.org, veritrail.RoleOwner, nil, nil)
	for _, tc := range []struct {
		body, field string
		status      int
	}{
		{`{"name":"a","type":"webhook","url":"http://127.0.0.1:9/h","secret":"s"}`, "url", 400},
		{`{"name":"b","type":"webhook","url":"http://localhost/h","secret":"s"}`, "url", 400},
		{`{"name":"c","type":"webhook","url":"http://169.254.169.254/latest/meta-data","secret":"s"}`, "url", 400},
		{`{"name":"d","type":"webhook","url":"http://[::1]:8080/h","secret":"s"}`, "url", 400},
		{`{"name":"e","type":"syslog","address":"127.0.0.1:514","protocol":"tcp"}`, "address", 400},
		{`{"name":"f","type":"kafka","brokers":["10.0.0.5:9092","127.0.0.1:9092"],"topic":"t"}`, "brokers[1]", 400},
		{`{"name":"g","type":"webhook","url":"http://10.1.2.3/h","secret":"s"}`, "", 201},
		{`{"name":"h","type":"syslog","address":"192.168.1.10:514","protocol":"tcp"}`, "", 201},
	} {
		r := e.do("POST", "/api/v1/sinks", e.owner, strings.NewReader(tc.body))
		if r.status != tc.status || (tc.field != "" && !strings.Contains(string(r.body), tc.field+": ")) {
			t.Errorf("%s: %d %s, want %d naming %q", tc.body, r.status, r.body, tc.status, tc.field)
		}
	}
	r := e.do("POST", "/api/v1/sinks", e.owner, strings.NewReader(`{"name":"p","type":"webhook","url":"http://10.1.2.4/h","secret":"s"}`))
	var k struct{ ID string }
	json.Unmarshal(r.body, &k)
	if r := e.do("PATCH", "/api/v1/sinks/"+k.ID, e.owner, strings.NewReader(`{"url":"http://127.0.0.1/h"}`)); r.status != 400 {
		t.Errorf("a sink moved to loopback: %d %s", r.status, r.body)
	}
}

// TestSinkGuardedAtConnect: a sink configured while loopback destinations
// were allowed, under a name that resolves to loopback ("localhost"), is
// refused when it connects once they are not: the check is made on the
// address the name resolved to, at each connection, not only on the URL
// as typed. Allowed again, the sink delivers everything it held back.
func TestSinkGuardedAtConnect(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	key, _ := seal.New([]byte(strings.Repeat("k", seal.KeySize)))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine := func(g netguard.Guard) *sink.Engine {
		eng, err := sink.New(sink.Options{Outbound: g, Store: store, Key: key, Types: all.Types(), Logger: quiet,
			PollInterval: 5 * time.Millisecond, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return eng
	}
	run := func(eng *sink.Engine) (stop func()) {
		ectx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); eng.Run(ectx) }()
		return func() { cancel(); <-done }
	}
	// The API's engine, which checks the URL as typed, allows loopback (the
	// sink is configured then); the engine that delivers does not.
	refusing := engine(netguard.Guard{})
	api := vhttp.New(vhttp.Config{Store: store, Sinks: engine(netguard.Guard{AllowLoopback: true}), Outbound: netguard.Guard{AllowLoopback: true}})
	srv := httptest.NewServer(api)
	t.Cleanup(func() { srv.Close(); api.Shutdown(ctx) })
	e := &env{t: t, store: store, srv: srv, api: api}
	e.org, _ = store.CreateOrg(ctx, "acme")
	enableAI(t, store, e.org.ID)
	e.owner = e.token(e.org, veritrail.RoleOwner, nil, nil)

	hook := &hookReceiver{secret: hookSecret}
	peer := httptest.NewServer(hook)
	defer peer.Close()
	port := peer.Listener.Addr().(*net.TCPAddr).Port
	r := e.do("POST", "/api/v1/sinks", e.owner, strings.NewReader(fmt.Sprintf(
		`{"name":"siem","type":"webhook","url":"http://localhost:%d/hook","secret":%q,"batch":{"max_events":50,"max_wait":"0s"}}`, port, hookSecret)))
	if r.status != 201 {
		t.Fatalf("create while allowed: %d %s", r.status, r.body)
	}
	var created struct{ ID string }
	json.Unmarshal(r.body, &created)
	e.postMany(20)

	view := func() sink.View {
		var v sink.View
		r := e.do("GET", "/api/v1/sinks/"+created.ID, e.owner, nil)
		json.Unmarshal(r.body, &v)
		return v
	}
	stop := run(refusing)
	waitUntil(t, "the connection to be refused", func() bool {
		v := view()
		return v.State == "retrying" && v.Failures >= 2 && strings.Contains(v.LastError, "loopback")
	})
	stop()
	if n := hook.count(); n != 0 {
		t.Fatalf("%d events reached a loopback destination that was not allowed", n)
	}
	if v := view(); v.LagEvents < 20 || v.Delivered != nil {
		t.Fatalf("after the refusals: lag %d, delivered %v", v.LagEvents, v.Delivered)
	}

	stop = run(engine(netguard.Guard{AllowLoopback: true}))
	defer stop()
	waitUntil(t, "delivery once allowed", func() bool { v := view(); return v.LagEvents == 0 && v.State == "active" })
	if n := hook.count(); n < 20 {
		t.Fatalf("%d events delivered, want all 20 and the sink's creation record", n)
	}
}

// downSwitch answers 503 while down, and passes requests to next
// otherwise, keeping the largest batch it let through.
type downSwitch struct {
	next     *hookReceiver
	mu       sync.Mutex
	down     bool
	refused  int
	maxBatch int
}

func (d *downSwitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	down := d.down
	if down {
		d.refused++
	}
	d.mu.Unlock()
	if down {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	before := d.next.count()
	d.next.ServeHTTP(w, r)
	d.mu.Lock()
	d.maxBatch = max(d.maxBatch, d.next.count()-before)
	d.mu.Unlock()
}

func (d *downSwitch) set(down bool) {
	d.mu.Lock()
	d.down = down
	d.mu.Unlock()
}

// TestSinkLongOutage: a destination down while thousands of events pile
// up. What the server holds for the sink stays within explicit limits
// (the hand-off feed keeps at most its limit of events; a delivery holds
// one batch of at most max_events; nothing is written per event besides
// the log itself), the outage is visible (state retrying, lag in events
// and seconds, the last error, the metric), and once the destination is
// back every event arrives, in order, at least once. Counts and states
// only: the outage's length is whatever the machine takes to ingest.
func TestSinkLongOutage(t *testing.T) {
	const keep, total, perRequest, maxEvents = 500, 6000, 200, 100
	feed := sink.NewFeed(keep)
	e := newSinkEnvFeed(t, feed)
	hook := &hookReceiver{secret: hookSecret}
	sw := &downSwitch{next: hook}
	peer := httptest.NewServer(sw)
	defer peer.Close()
	r := e.do("POST", "/api/v1/sinks", e.owner, strings.NewReader(fmt.Sprintf(
		`{"name":"siem","type":"webhook","url":%q,"secret":%q,"batch":{"max_events":%d,"max_wait":"0s"}}`, peer.URL+"/hook", hookSecret, maxEvents)))
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var created struct{ ID string }
	json.Unmarshal(r.body, &created)
	view := func() sink.View {
		var v sink.View
		r := e.do("GET", "/api/v1/sinks/"+created.ID, e.owner, nil)
		if err := json.Unmarshal(r.body, &v); err != nil {
			t.Fatalf("sink view: %d %s", r.status, r.body)
		}
		return v
	}
	waitUntil(t, "the creation record delivered", func() bool { return view().LagEvents == 0 })

	sw.set(true)
	heldMax := 0
	for i := 0; i < total/perRequest; i++ {
		var b strings.Builder
		for j := range perRequest {
			fmt.Fprintf(&b, `{"id":"out-%d-%d","type":"auth.login","actor":{"type":"user","id":"u%d"},"outcome":"success"}`+"\n", i, j, j%7)
		}
		if r := e.post(b.String(), "Content-Type", "application/x-ndjson"); r.status != 200 {
			t.Fatalf("post: %d %s", r.status, r.body)
		}
		n, _ := feed.Held(e.org.ID)
		heldMax = max(heldMax, n)
	}
	v := view()
	waitUntil(t, "the outage to show", func() bool {
		v = view()
		return v.State == "retrying" && v.Failures >= 3 && v.LastError != "" && v.LagEvents >= total && v.LagSeconds > 0
	})
	if heldMax > keep {
		t.Fatalf("the feed held %d events, more than its limit of %d", heldMax, keep)
	}
	if n, bytes := feed.Held(e.org.ID); n > keep || bytes > sink.DefaultFeedBytes {
		t.Fatalf("the feed holds %d events, %d bytes", n, bytes)
	}
	if m := e.do("GET", "/metrics", "", nil); !strings.Contains(string(m.body), `veritrail_sink_lag_events{org="acme",sink="`+created.ID+`"}`) {
		t.Fatalf("no lag metric for the sink:\n%s", m.body)
	}
	before := hook.count()
	sw.set(false)
	waitUntil(t, "catching up", func() bool { v = view(); return v.LagEvents == 0 && v.State == "active" })
	if got := hook.count() - before; got < total {
		t.Fatalf("%d events arrived after the outage, want all %d", got, total)
	}
	// At least once, in order: every seq up to the cursor arrived, and
	// each batch was at most max_events.
	hook.mu.Lock()
	seen := map[int64]bool{}
	last := int64(-1)
	for _, s := range hook.seqs {
		if s < last && !seen[s] {
			t.Fatalf("seq %d arrived after %d", s, last)
		}
		seen[s], last = true, max(last, s)
	}
	hook.mu.Unlock()
	for s := int64(0); s <= *v.Delivered; s++ {
		if !seen[s] {
			t.Fatalf("seq %d never arrived", s)
		}
	}
	if sw.maxBatch > maxEvents {
		t.Fatalf("a batch of %d events, over max_events %d", sw.maxBatch, maxEvents)
	}
	t.Logf("%d deliveries refused during the outage; the feed held at most %d events", sw.refused, heldMax)
}
