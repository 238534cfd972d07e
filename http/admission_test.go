package http_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	vhttp "github.com/veritrail/veritrail/http"
	"github.com/veritrail/veritrail/internal/admission"
)

// ingestLoad posts events from a few clients until stop is called, which
// returns how many requests failed.
func (e *env) ingestLoad(clients int) (stop func() int) {
	var failed atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				var b strings.Builder
				for k := range 50 {
					fmt.Fprintf(&b, `{"id":"load-%d-%d-%d","type":"auth.login","time":"2026-02-01T10:00:00Z","actor":{"type":"user","id":"u1"},"outcome":"success"}`+"\n", c, i, k)
				}
				req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/events", strings.NewReader(b.String()))
				req.Header.Set("Authorization", "Bearer "+e.owner)
				req.Header.Set("Content-Type", "application/x-ndjson")
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		}()
	}
	return func() int {
		close(done)
		wg.Wait()
		return int(failed.Load())
	}
}

// Lists, stats and a streaming export answer while ingest keeps the commit
// queue busy: they wait for their turns (reads are scheduled behind
// ingest), they are not refused, and ingest goes on beside them.
func TestReadsAnswerUnderIngestPressure(t *testing.T) {
	// Any commit counts as busy, so the readers are paced all along.
	turns := admission.New(admission.Config{ReadShare: 0.1, BusyThreshold: 0.001, MaxWait: 5 * time.Minute})
	e := newEnvConfig(t, vhttp.Config{Turns: turns})
	e.postMany(1500)
	stop := e.ingestLoad(3)
	for turns.Busy() < 0.001 {
		time.Sleep(time.Millisecond) // until the first commits of the load are reported
	}
	for _, path := range []string{
		"/api/v1/events?limit=50",
		"/api/v1/events?limit=50&type=auth.*&q=secret",
		"/api/v1/events/stats?since=2026-02-01T00:00:00Z&until=2026-03-01T00:00:00Z&interval=24h&top=type",
	} {
		if r := e.do("GET", path, e.owner, nil); r.status != 200 {
			t.Errorf("GET %s under ingest: %d %s", path, r.status, r.body)
		}
	}
	r := e.do("GET", "/api/v1/events/export?format=ndjson&type=ai.*,admin.*", e.owner, nil)
	if r.status != 200 {
		t.Fatalf("export under ingest: %d %s", r.status, r.body)
	}
	if n := bytes.Count(r.body, []byte("\n")); n != 1000 {
		t.Errorf("the export under ingest holds %d events, want the 1000 ai.* and admin.* ones", n)
	}
	if busy := turns.Busy(); busy < 0.001 {
		t.Errorf("ingest was not busy during the reads (busy %.4f): the test measured nothing", busy)
	}
	if failed := stop(); failed > 0 {
		t.Errorf("%d ingest requests failed beside the reads", failed)
	}
}

// A list that cannot get its turn within the bound is answered 503 with
// Retry-After and says why; ingest is not held by readers' turns.
func TestReadRefusedPastMaxWait(t *testing.T) {
	turns := admission.New(admission.Config{ReadShare: 0.1, MaxWait: 50 * time.Millisecond, Window: time.Hour})
	e := newEnvConfig(t, vhttp.Config{Turns: turns})
	e.postMany(10)
	turns.CommitDone(time.Hour) // ingest busy for as long as the test runs
	held, err := turns.Acquire(context.Background(), admission.Bulk)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	r := e.do("GET", "/api/v1/events?limit=5", e.owner, nil)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("list while another reader holds the only turn: %d (Retry-After %q) %s, want 503 with Retry-After",
			r.status, r.header.Get("Retry-After"), r.body)
	}
	if m := r.json(t); errorCode(m) != veritrail.EUnavailable || !strings.Contains(fmt.Sprint(m), "busy storing events") {
		t.Errorf("answer %s: want code unavailable saying the server is busy storing events", r.body)
	}
	if r := e.post(`{"id":"while-held","type":"auth.login","time":"2026-02-01T10:00:00Z","actor":{"type":"user","id":"u1"},"outcome":"success"}`); r.status != 200 {
		t.Errorf("ingest while a reader holds its turn: %d %s", r.status, r.body)
	}
}

func errorCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}
