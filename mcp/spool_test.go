package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	vhttp "github.com/veritrail/veritrail/http"
	"github.com/veritrail/veritrail/sqlite"
)

// veritrailServer is a real Veritrail API on SQLite behind a switch that
// makes it unreachable (connections dropped) while down.
type veritrailServer struct {
	url   string
	token string // ingest
	owner string
	down  atomic.Bool
	hits  atomic.Int64
	t     *testing.T
}

func newVeritrail(t *testing.T) *veritrailServer {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	api := vhttp.New(vhttp.Config{Store: store})
	v := &veritrailServer{t: t}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.hits.Add(1)
		if v.down.Load() && r.Method == http.MethodPost {
			// Unreachable: the connection drops without an answer.
			if hj, ok := w.(http.Hijacker); ok {
				c, _, _ := hj.Hijack()
				c.Close()
				return
			}
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		api.Shutdown(ctx)
		store.Close()
	})
	org, err := store.CreateOrg(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	tok := func(role string) string {
		secret := veritrail.NewTokenSecret()
		lookup, hash := veritrail.HashToken(secret)
		if err := store.CreateToken(ctx, &veritrail.Token{ID: veritrail.NewTokenID(), OrgID: org.ID, Role: role, Lookup: lookup, Hash: hash}); err != nil {
			t.Fatal(err)
		}
		return secret
	}
	v.url, v.token, v.owner = srv.URL, tok(veritrail.RoleIngest), tok(veritrail.RoleOwner)
	return v
}

// ids lists the ids of the stored agent.* events, oldest first.
func (v *veritrailServer) ids() []string {
	v.t.Helper()
	req, _ := http.NewRequest("GET", v.url+"/api/v1/events?type=agent.*&order=asc&limit=1000", nil)
	req.Header.Set("Authorization", "Bearer "+v.owner)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&page)
	var out []string
	for _, d := range page.Data {
		out = append(out, d.ID)
	}
	return out
}

func testEvent(i int) *veritrail.Event {
	return &veritrail.Event{ID: fmt.Sprintf("call-%03d", i), Time: time.Now().UTC(), Type: "agent.tool_call",
		Actor: veritrail.Actor{Type: "user", ID: "u1"}, Tool: "echo", Content: []byte(fmt.Sprintf(`{"n":%d}`, i))}
}

func openSpool(t *testing.T, dir string, v *veritrailServer, mutate ...func(*SpoolConfig)) (*Spool, func()) {
	t.Helper()
	cfg := SpoolConfig{Dir: dir, Server: v.url, Token: v.token, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, SegmentBytes: 300}
	for _, m := range mutate {
		m(&cfg)
	}
	s, err := OpenSpool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	return s, func() { cancel(); <-done; s.Close() }
}

func waitIDs(t *testing.T, v *veritrailServer, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; {
		ids := v.ids()
		if len(ids) >= n {
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records arrived", len(ids), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSpoolOutage: records written while the server is unreachable are on
// disk, survive the gateway's restart, and all arrive once, in order.
func TestSpoolOutage(t *testing.T) {
	v := newVeritrail(t)
	dir := t.TempDir()
	s, stop := openSpool(t, dir, v)
	ctx := context.Background()
	for i := range 3 {
		if err := s.Append(ctx, testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitIDs(t, v, 3)

	v.down.Store(true)
	for i := 3; i < 10; i++ {
		if err := s.Append(ctx, testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	for v.hits.Load() < 6 { // it keeps trying
		time.Sleep(10 * time.Millisecond)
	}
	stop() // the gateway stops with records unsent
	if n := len(v.ids()); n != 3 {
		t.Fatalf("%d records while down", n)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	if len(segs) == 0 {
		t.Fatal("nothing kept on disk")
	}

	// A new gateway on the same spool adopts them; the server comes back.
	s2, stop2 := openSpool(t, dir, v)
	defer stop2()
	v.down.Store(false)
	if err := s2.Append(ctx, testEvent(10)); err != nil {
		t.Fatal(err)
	}
	ids := waitIDs(t, v, 11)
	for i, id := range ids {
		if id != fmt.Sprintf("call-%03d", i) {
			t.Fatalf("order or duplicates: %v", ids)
		}
	}
	if err := s2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if len(v.ids()) != 11 {
		t.Fatal("records stored twice")
	}
}

// TestSpoolRejects: a record the server refuses goes to rejected.ndjson
// and the others of its batch are delivered.
func TestSpoolRejects(t *testing.T) {
	v := newVeritrail(t)
	dir := t.TempDir()
	s, stop := openSpool(t, dir, v, func(c *SpoolConfig) { c.SegmentBytes = 1 << 20 })
	defer stop()
	bad := testEvent(1)
	bad.Time = time.Now().Add(72 * time.Hour) // refused: too far in the future
	v.down.Store(true)                        // so that the three go in one batch
	ctx := context.Background()
	if err := s.Append(ctx, testEvent(0), bad, testEvent(2)); err != nil {
		t.Fatal(err)
	}
	v.down.Store(false)
	ids := waitIDs(t, v, 2)
	if strings.Join(ids, ",") != "call-000,call-002" {
		t.Fatalf("stored %v", ids)
	}
	b, err := os.ReadFile(filepath.Join(dir, "rejected.ndjson"))
	if err != nil || !strings.Contains(string(b), `"id":"call-001"`) || !strings.Contains(string(b), "future") {
		t.Fatalf("rejected.ndjson: %s %v", b, err)
	}
	if _, rejected, _ := s.Stats(); rejected != 1 {
		t.Fatalf("rejected %d", rejected)
	}
}

// TestSpoolFull: past MaxBytes, Append fails (the gateway's fail mode
// decides) and keeps the record in memory until there is room.
func TestSpoolFull(t *testing.T) {
	v := newVeritrail(t)
	v.down.Store(true)
	s, stop := openSpool(t, t.TempDir(), v, func(c *SpoolConfig) { c.MaxBytes = 400 })
	defer stop()
	ctx := context.Background()
	var full error
	n := 0
	for ; n < 10 && full == nil; n++ {
		full = s.Append(ctx, testEvent(n))
	}
	if !errors.Is(full, ErrSpoolFull) {
		t.Fatalf("no ErrSpoolFull: %v", full)
	}
	v.down.Store(false)
	// Everything, the record held in memory included, arrives.
	ids := waitIDs(t, v, n)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, dropped := s.Stats(); dropped != 0 || len(ids) != n || ids[n-1] != fmt.Sprintf("call-%03d", n-1) {
		t.Fatalf("ids %v (%d appended), dropped %d", ids, n, dropped)
	}
}

// TestSpoolAdoptOnce: the segments of a stopped gateway are adopted once,
// however often the sweep runs while the server is down, and by one
// gateway only.
func TestSpoolAdoptOnce(t *testing.T) {
	v := newVeritrail(t)
	v.down.Store(true)
	dir := t.TempDir()
	var lines []byte
	for i := range 3 {
		b, err := veritrail.MarshalInput(testEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		lines = append(append(lines, b...), '\n')
	}
	if err := os.WriteFile(filepath.Join(dir, "1-1.00000001.ndjson"), lines, 0o600); err != nil {
		t.Fatal(err)
	}
	s, stop := openSpool(t, dir, v)
	defer stop()
	other, stopOther := openSpool(t, dir, v)
	defer stopOther()
	want := int64(len(lines))
	if got := s.Unsent() + other.Unsent(); got != want {
		t.Fatalf("unsent %d after opening, want %d", got, want)
	}
	for range 3 { // the 30 s sweeps
		s.adopt()
		other.adopt()
	}
	if got := s.Unsent() + other.Unsent(); got != want {
		t.Fatalf("unsent %d after sweeps, want %d: adopted again", got, want)
	}
	v.down.Store(false)
	waitIDs(t, v, 3)
	for _, sp := range []*Spool{s, other} {
		if err := sp.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
