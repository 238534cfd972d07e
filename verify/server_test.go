package verify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
	"github.com/veritrail/veritrail/verify"
)

// fakeLogServer serves a log through the API paths ServerSource reads: a
// server that misbehaves in ways a real one does not (a history without
// its latest checkpoint).
// history is the checkpoint list it serves; latest is the latest checkpoint.
func fakeLogServer(t *testing.T, envs [][]byte, latest []byte, history map[int64][]byte) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/me", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"organization":{"name":"acme"},"scopes":["auditlogs:read"]}`)
	})
	mux.HandleFunc("GET /api/v1/log/checkpoint", func(w http.ResponseWriter, r *http.Request) { w.Write(latest) })
	mux.HandleFunc("GET /api/v1/log/checkpoints", func(w http.ResponseWriter, r *http.Request) {
		type item struct {
			Size       int64  `json:"size"`
			Checkpoint string `json:"checkpoint"`
		}
		from, _ := strconv.ParseInt(r.URL.Query().Get("from_size"), 10, 64)
		out := []item{}
		for size := int64(0); size <= int64(len(envs)); size++ {
			if n, ok := history[size]; ok && size >= from {
				out = append(out, item{size, string(n)})
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"data": out})
	})
	mux.HandleFunc("GET /api/v1/log/removals", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"data":[]}`) })
	mux.HandleFunc("GET /api/v1/events", func(w http.ResponseWriter, r *http.Request) {
		from, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
		end := min(from+3, len(envs)) // small pages
		var data []json.RawMessage
		for _, e := range envs[from:end] {
			data = append(data, e)
		}
		json.NewEncoder(w).Encode(map[string]any{"data": data, "next_cursor": strconv.Itoa(end)})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestServerChecksLatest: the events a ServerSource check reads up to the
// latest checkpoint must match that checkpoint's root even when the
// server's checkpoint history leaves it out.
func TestServerChecksLatest(t *testing.T) {
	key, err := tlog.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	const origin = "test.example/acme"
	vkey, _ := key.VerifierKey(origin)
	const n = 10
	var envs [][]byte
	b := tlog.NewBuilder()
	history := map[int64][]byte{}
	for i := range n {
		e := &veritrail.Event{ID: fmt.Sprintf("ev-%d", i), Seq: int64(i), Time: time.Unix(1700000000+int64(i), 0).UTC(),
			ReceivedAt: time.Unix(1700000100, 0).UTC(), Type: "auth.login", Actor: veritrail.Actor{Type: "user", ID: "u1"}}
		env := veritrail.AppendEnvelope(nil, e)
		leaf := veritrail.LeafHash(env)
		b.Append(leaf[:])
		envs = append(envs, env)
		if i+1 == 4 {
			history[4], _ = key.SignCheckpoint(origin, 4, b.Root())
		}
	}
	latest, err := key.SignCheckpoint(origin, n, b.Root())
	if err != nil {
		t.Fatal(err)
	}
	check := func(envs [][]byte, history map[int64][]byte) *verify.Report {
		srv := fakeLogServer(t, envs, latest, history)
		rep := &verify.Report{}
		src, err := verify.NewServerSource(context.Background(), srv.URL, "tok")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verify.Check(context.Background(), src, verify.Options{Keys: []string{vkey}}, rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := check(envs, history); !rep.OK() {
		t.Fatalf("an untouched log: %v", rep.Failures)
	}
	full := map[int64][]byte{4: history[4], n: latest}
	if rep := check(envs, full); !rep.OK() {
		t.Fatalf("an untouched log with the latest in its history: %v", rep.Failures)
	}
	// An event after the last checkpoint of the history is changed.
	forged := append([][]byte(nil), envs...)
	forged[7] = []byte(strings.Replace(string(envs[7]), `"id":"u1"`, `"id":"u2"`, 1))
	for name, h := range map[string]map[int64][]byte{"history without the latest": history, "full history": full} {
		rep := check(forged, h)
		if rep.OK() || rep.Failures[0].Kind != verify.KindRoot {
			t.Errorf("%s: a changed event after the history's last checkpoint: %v", name, rep.Failures)
		}
	}
}
