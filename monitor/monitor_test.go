package monitor

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veritrail/veritrail/tlog"
)

// logServer serves a log's checkpoint and hash tiles in the tlog-tiles
// layout from a tlog.Head, the way Veritrail lays them out; down makes it
// answer 503.
type logServer struct {
	mu     sync.Mutex
	key    *tlog.Key
	origin string
	head   *tlog.Head
	tiles  map[tlog.TileID][]byte
	note   []byte
	down   bool
}

func newLogServer(t *testing.T) *logServer {
	key, err := tlog.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return &logServer{key: key, origin: "monitor.test/acme", head: tlog.NewHead(), tiles: map[tlog.TileID][]byte{}}
}

func (l *logServer) grow(t *testing.T, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := 0; i < n; i++ {
		h := sha256.Sum256([]byte(fmt.Sprintf("entry %d", l.head.Size())))
		l.head.Append(h[:])
	}
	for _, tile := range l.head.TakeDirty() {
		l.tiles[tile.ID] = append([]byte(nil), tile.Hashes...)
	}
	note, err := l.key.SignCheckpoint(l.origin, l.head.Size(), l.head.Root())
	if err != nil {
		t.Fatal(err)
	}
	l.note = note
}

func (l *logServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if r.URL.Path == "/checkpoint" {
		w.Write(l.note)
		return
	}
	level, index, width, err := tlog.ParseTilePath(strings.TrimPrefix(r.URL.Path, "/tile/"))
	hashes, ok := l.tiles[tlog.TileID{Level: uint8(level), Index: index}]
	if err != nil || !ok || len(hashes) < width*tlog.HashSize {
		http.NotFound(w, r)
		return
	}
	w.Write(hashes[:width*tlog.HashSize])
}

// TestStallAndState: without a witness policy, a log that cannot be read
// for longer than allowed is a stall, alerted once, then a recovery; the
// kept checkpoint survives a restart of the monitor, which then sees a
// rolled-back view.
func TestStallAndState(t *testing.T) {
	ls := newLogServer(t)
	ls.grow(t, 300)
	srv := httptest.NewServer(ls)
	defer srv.Close()
	vkey, _ := ls.key.VerifierKey(ls.origin)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	state := t.TempDir()
	cfg := Config{Logs: []Log{{URL: srv.URL, Key: vkey}}, State: state, StallAfter: time.Hour, Now: clock, Client: srv.Client()}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kinds := func(as []*Alert) string {
		var k []string
		for _, a := range as {
			k = append(k, a.Kind)
		}
		return strings.Join(k, ",")
	}
	if a := m.Round(ctx); len(a) != 0 {
		t.Fatalf("first round: %s", kinds(a))
	}
	first := ls.note
	ls.grow(t, 200)
	if a := m.Round(ctx); len(a) != 0 {
		t.Fatalf("grown: %s", kinds(a))
	}
	ls.mu.Lock()
	ls.down = true
	ls.mu.Unlock()
	now = now.Add(30 * time.Minute)
	if a := m.Round(ctx); len(a) != 0 {
		t.Fatalf("down for 30 minutes: %s", kinds(a))
	}
	now = now.Add(31 * time.Minute)
	if a := m.Round(ctx); kinds(a) != AlertStall {
		t.Fatalf("down for an hour: %q, want a stall", kinds(a))
	}
	now = now.Add(time.Minute)
	if a := m.Round(ctx); len(a) != 0 {
		t.Fatalf("still down: %s (alerted again)", kinds(a))
	}
	ls.mu.Lock()
	ls.down = false
	ls.mu.Unlock()
	if a := m.Round(ctx); kinds(a) != AlertRecovered {
		t.Fatalf("back: %q, want a recovery", kinds(a))
	}

	// A restarted monitor keeps comparing with what it kept.
	m2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ls.mu.Lock()
	ls.note = first
	ls.mu.Unlock()
	if a := m2.Round(ctx); kinds(a) != AlertRollback {
		t.Fatalf("rolled back after a restart: %q", kinds(a))
	}
}
