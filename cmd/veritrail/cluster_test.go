package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veritrail/veritrail/postgres/pgtest"
	"github.com/veritrail/veritrail/seal"
)

// postBatch sends n events with ids prefix-0..n-1 to a node and reports
// whether the node acknowledged them.
func postBatch(url, tok, prefix string, n int) bool {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"id":"%s-%d","type":"auth.login","actor":{"type":"user","id":"u%d"},"outcome":"success","content":{"n":%d}}`+"\n", prefix, i, i%7, i)
	}
	req, _ := http.NewRequest("POST", url+"/api/v1/events", strings.NewReader(b.String()))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// seqIDs reads every event of the organization through a node, in seq order.
func seqIDs(t *testing.T, s *server, tok string) (seqs []int64, ids []string) {
	t.Helper()
	path := "/api/v1/events?order=seq&limit=1000"
	for {
		code, body := s.do("GET", path, tok, "")
		if code != 200 {
			t.Fatalf("poll: %d %s", code, body)
		}
		var page struct {
			Data []struct {
				ID  string `json:"id"`
				Seq int64  `json:"seq"`
			} `json:"data"`
			Next    string `json:"next_cursor"`
			HasMore bool   `json:"has_more"`
		}
		json.Unmarshal(body, &page)
		for _, d := range page.Data {
			seqs, ids = append(seqs, d.Seq), append(ids, d.ID)
		}
		if !page.HasMore {
			return seqs, ids
		}
		path = "/api/v1/events?order=seq&limit=1000&cursor=" + page.Next
	}
}

// TestTwoNodesOnePostgres runs two Veritrail processes on one PostgreSQL
// database: both take writes at once, one is killed mid-load, and the log
// stays gap-free, holds every acknowledged event, verifies through either
// node, and has one identity (key, origin) whichever node signs.
func TestTwoNodesOnePostgres(t *testing.T) {
	db := pgtest.New(t)
	dir := t.TempDir()
	mk := filepath.Join(dir, "master-key")
	os.WriteFile(mk, []byte(seal.Generate()+"\n"), 0o600)
	const tok = "vt_cluster-test-token-0123456789abcd"
	env := []string{"VERITRAIL_DB=" + db, "VERITRAIL_MASTER_KEY_FILE=" + mk, "VERITRAIL_BOOTSTRAP_TOKEN=" + tok,
		"VERITRAIL_LOG_ORIGIN=cluster.example", "VERITRAIL_RATE_LIMIT=0"}
	a := startServer(t, filepath.Join(dir, "a"), env)
	addrB := freeAddr(t)
	b := startServer(t, filepath.Join(dir, "b"), env, "--addr", addrB)

	// Writers on both nodes; node b is killed while they run.
	var acked sync.Map // batch prefix -> size
	var batches atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := a.url
			if w%2 == 1 {
				node = b.url
			}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				prefix := fmt.Sprintf("w%d-b%d", w, i)
				n := 1 + (i*37+w)%200
				if postBatch(node, tok, prefix, n) {
					acked.Store(prefix, n)
					batches.Add(1)
				} else if node == b.url {
					node = a.url // b is gone: carry on through a
				}
			}
		}()
	}
	waitFor := func(n int64) {
		deadline := time.Now().Add(2 * time.Minute)
		for batches.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d batches acknowledged", batches.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(60)
	b.cmd.Process.Kill() // mid-load, mid-commit perhaps
	<-b.exited
	mark := batches.Load()
	waitFor(mark + 60)
	close(stop)
	wg.Wait()

	seqs, ids := seqIDs(t, a, tok)
	for i, s := range seqs {
		if s != int64(i) {
			t.Fatalf("seq %d at position %d: the log has a gap or a repeat", s, i)
		}
	}
	have := map[string]int{}
	for _, id := range ids {
		have[id]++
	}
	missing, total := 0, 0
	acked.Range(func(k, v any) bool {
		for i := range v.(int) {
			total++
			if have[fmt.Sprintf("%s-%d", k, i)] != 1 {
				missing++
			}
		}
		return true
	})
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events are missing or repeated", missing, total)
	}
	t.Logf("%d acknowledged events, log of %d, node b killed after %d batches", total, len(seqs), mark)

	// Node b comes back; both nodes serve the same log, verified through
	// either with the one key.
	b = startServer(t, filepath.Join(dir, "b"), env, "--addr", addrB)
	t.Setenv("VERITRAIL_MASTER_KEY_FILE", mk)
	key, _ := cli(t, "key", "--db", db, "--data", filepath.Join(dir, "a"))
	vkey := strings.TrimSpace(key)
	if keyB, _ := cli(t, "key", "--db", db, "--data", filepath.Join(dir, "b")); strings.TrimSpace(keyB) != vkey {
		t.Fatalf("the nodes have different log keys: %s / %s", vkey, keyB)
	}
	if !strings.HasPrefix(vkey, "cluster.example/default+") {
		t.Errorf("verifier key %q does not name the shared origin", vkey)
	}
	for _, n := range []*server{a, b} {
		out, errOut, code := runBin(t, "verify", "--server", n.url, "--token", tok, "--key", vkey, "--quiet")
		if code != 0 {
			t.Fatalf("verify through %s: %s%s", n.url, out, errOut)
		}
		t.Logf("verify through %s: %s", n.url, strings.TrimSpace(out))
	}
	// Writes through the restarted node continue the same log.
	if !postBatch(b.url, tok, "after", 10) {
		t.Fatal("node b refused writes after restart")
	}
	seqs, _ = seqIDs(t, b, tok)
	for i, s := range seqs {
		if s != int64(i) {
			t.Fatalf("after restart: seq %d at position %d", s, i)
		}
	}
	// An export job asked of one node: whichever node runs it, the file
	// is kept by the database, so the link works through the other node
	// (nodes keep no state of their own).
	code, body := a.do("POST", "/api/v1/exports", tok, `{"format":"csv"}`)
	if code != 202 {
		t.Fatalf("export job: %d %s", code, body)
	}
	var job struct {
		ID          string `json:"id"`
		State       string `json:"state"`
		DownloadURL string `json:"download_url"`
	}
	json.Unmarshal(body, &job)
	for deadline := time.Now().Add(60 * time.Second); job.State != "ready"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) || job.State == "failed" {
			t.Fatalf("export job: %s", body)
		}
		_, body = b.do("GET", "/api/v1/exports/"+job.ID, tok, "")
		json.Unmarshal(body, &job)
	}
	for _, n := range []*server{a, b} {
		u, _ := url.Parse(job.DownloadURL)
		resp, err := http.Get(n.url + u.RequestURI())
		if err != nil {
			t.Fatal(err)
		}
		csv, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || bytes.Count(csv, []byte("\n")) < len(seqs) {
			t.Fatalf("download through %s: %s, %d lines for a log of %d", n.url, resp.Status, bytes.Count(csv, []byte("\n")), len(seqs))
		}
	}
	for _, d := range []string{"a", "b"} {
		if files, _ := filepath.Glob(filepath.Join(dir, d, "exports", "*")); len(files) > 0 {
			t.Fatalf("node %s keeps export files of its own: %v", d, files)
		}
	}
	a.stop()
	b.stop()
}
