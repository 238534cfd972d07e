package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/veritrail/veritrail/demo"
	"github.com/veritrail/veritrail/postgres/pgtest"
	"github.com/veritrail/veritrail/seal"
	"github.com/veritrail/veritrail/tlog"
	_ "modernc.org/sqlite"
)

// run runs the binary and returns its output and exit code.
func runBin(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatal(err)
		}
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// enableAI turns AI interaction logs on (off by default) so demo events of
// every category are kept.
func enableAI(t *testing.T, s *server, tok string) {
	t.Helper()
	code, b := s.do("GET", "/api/v1/settings", tok, "")
	var st map[string]any
	if code != 200 || json.Unmarshal(b, &st) != nil {
		t.Fatalf("settings: %d %s", code, b)
	}
	st["ai_interaction_logs_enabled"] = true
	body, _ := json.Marshal(st)
	if code, b := s.do("PUT", "/api/v1/settings", tok, string(body)); code != 200 {
		t.Fatalf("put settings: %d %s", code, b)
	}
}

// postDemo sends n demo events, all of them recorded.
func postDemo(t *testing.T, s *server, tok string, n int) {
	t.Helper()
	enableAI(t, s, tok)
	// Seed-shaped events happening now, after the switch was turned on.
	var body bytes.Buffer
	rnd := rand.New(rand.NewPCG(7, 7))
	now := time.Now().UTC()
	for i := 0; i < n; i++ {
		body.Write(demo.Event(nil, rnd, fmt.Sprintf("demo-%06d", i), now.Add(time.Duration(i)*time.Millisecond)))
		body.WriteByte('\n')
	}
	if code, b := s.do("POST", "/api/v1/events", tok, body.String()); code != 200 {
		t.Fatalf("load: %d %s", code, b)
	}
}

// signedLog starts a server, loads events, and stops it (which signs the
// final checkpoint). It returns the data directory and the verifier key.
// The log holds n+3 events: the bootstrap's two records (the organization
// and its owner token), the settings change that turned AI logs on, then
// the n events.
func signedLog(t *testing.T, n int) (string, string) {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	const tok = "vt_integrity-test-token-0123456789"
	// No scheduled retention: its record would be one more event.
	srv := startServer(t, data, []string{"VERITRAIL_BOOTSTRAP_TOKEN=" + tok, "VERITRAIL_LOG_ORIGIN=test.example/log", "VERITRAIL_RETENTION_INTERVAL=0"})
	postDemo(t, srv, tok, n)
	srv.stop()
	key, _ := cli(t, "key", "--data", data)
	return data, strings.TrimSpace(key)
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	os.MkdirAll(dst, 0o700)
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600)
	}
	return dst
}

// tamper opens a copy of the store as an insider with file access would:
// straight into SQLite, with the append-only triggers dropped first.
func tamper(t *testing.T, dir string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "veritrail.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'trigger'`)
	if err != nil {
		t.Fatal(err)
	}
	var triggers []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		triggers = append(triggers, n)
	}
	rows.Close()
	for _, tr := range triggers {
		if _, err := db.Exec(`DROP TRIGGER ` + tr); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
}

// rid is the events/contents key of seq in organization 1.
func rid(seq int) int64 { return 1<<40 | int64(seq) }

func TestTamperDetected(t *testing.T) {
	data, vkey := signedLog(t, 600)
	if out, errOut, code := runBin(t, "verify", "--data", data, "--key", vkey); code != 0 {
		t.Fatalf("the untouched store does not verify: %s%s", out, errOut)
	}
	for _, tc := range []struct {
		name  string
		stmts []string
		seq   string // the seq the first failure must name
		kind  string
	}{
		{"one byte of an envelope", []string{fmt.Sprintf(
			`UPDATE events SET envelope = CAST(replace(CAST(envelope AS TEXT), '"outcome":"success"', '"outcome":"failure"') AS BLOB) WHERE rid = %d`, rid(117))},
			"seq 117", "leaf_mismatch"},
		{"a content", []string{fmt.Sprintf(
			`UPDATE contents SET body = CAST(substr(CAST(body AS TEXT), 1, length(body) - 1) || ',"x":1}' AS BLOB) WHERE rid = %d`, rid(223))},
			"seq 223", "content_digest_mismatch"},
		{"an event's rows deleted", []string{
			fmt.Sprintf(`DELETE FROM events WHERE rid = %d`, rid(311)),
			fmt.Sprintf(`DELETE FROM contents WHERE rid = %d`, rid(311)),
			`DELETE FROM event_ids WHERE org_id = 1 AND seq = 311`},
			"seq 311", "missing_event"},
		{"a forged event inserted in the middle", []string{
			// Shift every event from 400 on by one, then put a forged one at 400.
			`CREATE TABLE shifted AS SELECT rid, envelope FROM events WHERE rid >= ` + fmt.Sprint(rid(400)),
			`DELETE FROM events WHERE rid >= ` + fmt.Sprint(rid(400)),
			`INSERT INTO events (rid, envelope) SELECT rid + 1, envelope FROM shifted`,
			fmt.Sprintf(`INSERT INTO events (rid, envelope) VALUES (%d, CAST('{"id":"forged","seq":400,"time":"2026-01-01T00:00:00Z","received_at":"2026-01-01T00:00:00Z","type":"auth.login","actor":{"type":"user","id":"mallory"}}' AS BLOB))`, rid(400))},
			"seq 400", "leaf_mismatch"},
		{"a forged event appended", []string{fmt.Sprintf(
			`INSERT INTO events (rid, envelope) VALUES (%d, CAST('{"id":"forged","seq":603,"time":"2026-01-01T00:00:00Z","received_at":"2026-01-01T00:00:00Z","type":"auth.login","actor":{"type":"user","id":"mallory"}}' AS BLOB))`, rid(603))},
			"seq 603", "extra_event"},
		{"two events swapped", []string{
			fmt.Sprintf(`UPDATE events SET rid = -1 WHERE rid = %d`, rid(500)),
			fmt.Sprintf(`UPDATE events SET rid = %d WHERE rid = %d`, rid(500), rid(501)),
			fmt.Sprintf(`UPDATE events SET rid = %d WHERE rid = -1`, rid(501))},
			"seq 500", "leaf_mismatch"},
		{"an index column edited", []string{
			`DELETE FROM postings WHERE org_id = 1 AND field = 2 AND key = (SELECT key FROM postings WHERE org_id = 1 AND field = 2 ORDER BY key LIMIT 1)`},
			"seq ", "index_mismatch"},
		{"an id index entry redirected", []string{
			`UPDATE event_ids SET seq = 5 WHERE org_id = 1 AND seq = 77`},
			"seq 77", "id_index_mismatch"},
		{"a checkpoint replaced", []string{
			`UPDATE checkpoints SET note = CAST(replace(CAST(note AS TEXT), char(10) || '603' || char(10), char(10) || '602' || char(10)) AS BLOB) WHERE org_id = 1 AND size = 603`},
			"the log as a whole", "bad_signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, data)
			tamper(t, dir, tc.stmts...)
			wantFirstFailure(t, tc.seq, tc.kind, "--data", dir, "--key", vkey)
		})
	}
	// A checkpoint the auditor kept must still be extended by the log.
	t.Run("trusted checkpoint", func(t *testing.T) {
		dir := copyDir(t, data)
		kept := filepath.Join(t.TempDir(), "kept.txt")
		note := readCheckpoint(t, dir, 603)
		os.WriteFile(kept, note, 0o600)
		if out, errOut, code := runBin(t, "verify", "--data", dir, "--key", vkey, "--trusted", kept, "--quiet"); code != 0 {
			t.Fatalf("kept checkpoint: %s%s", out, errOut)
		}
		// Rewrite history consistently (tiles, head, checkpoints re-signed
		// with the stolen key are beyond this test): dropping the last
		// event's row alone must contradict the kept checkpoint.
		tamper(t, dir, fmt.Sprintf(`DELETE FROM events WHERE rid = %d`, rid(602)))
		if _, _, code := runBin(t, "verify", "--data", dir, "--key", vkey, "--trusted", kept, "--quiet"); code == 0 {
			t.Fatal("a truncated log verified against a kept checkpoint")
		}
	})
	// What only the kept checkpoint can tell: the untouched store does not
	// extend a checkpoint of another history, or one beyond its end (as a
	// log rewritten or cut and re-signed with the stolen key would not).
	t.Run("trusted checkpoint of another history", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(data, "signing-key"))
		if err != nil {
			t.Fatal(err)
		}
		key, err := tlog.ParseKey(string(b))
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []uint64{300, 700} {
			note, err := key.SignCheckpoint("test.example/log/default", size, bytes.Repeat([]byte{7}, 32))
			if err != nil {
				t.Fatal(err)
			}
			kept := filepath.Join(t.TempDir(), "kept.txt")
			os.WriteFile(kept, note, 0o600)
			out, errOut, code := runBin(t, "verify", "--data", data, "--key", vkey, "--trusted", kept, "--quiet")
			if code == 0 || !strings.Contains(errOut, "inconsistent_with_trusted") {
				t.Fatalf("kept checkpoint at size %d of another history: %s%s", size, out, errOut)
			}
		}
	})
	// Another key is another log.
	t.Run("wrong key", func(t *testing.T) {
		other, _ := signedLog(t, 5)
		otherKey, _ := cli(t, "key", "--data", other)
		if _, errOut, code := runBin(t, "verify", "--data", data, "--key", strings.TrimSpace(otherKey), "--quiet"); code == 0 || !strings.Contains(errOut, "bad_signature") {
			t.Fatalf("verified with another log's key: %s", errOut)
		}
	})
}

// wantFirstFailure runs verify with args and fails the test unless it
// fails, first at where ("seq N", "the log as a whole"; "seq " for any
// seq) with kind.
func wantFirstFailure(t *testing.T, where, kind string, args ...string) {
	t.Helper()
	out, errOut, code := runBin(t, append([]string{"verify", "--quiet"}, args...)...)
	if code == 0 {
		t.Fatalf("tampering went unnoticed:\n%s", out)
	}
	at := "at " + where
	if !strings.HasSuffix(where, " ") {
		at += ":" // seq 42, not seq 420
	}
	if !strings.Contains(errOut, at) || !strings.Contains(errOut, kind) {
		t.Fatalf("want the first failure at %q of kind %s, got:\n%s%s", where, kind, out, errOut)
	}
}

func readCheckpoint(t *testing.T, dir string, size int) []byte {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "veritrail.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var note []byte
	if err := db.QueryRow(`SELECT note FROM checkpoints WHERE org_id = 1 AND size = ?`, size).Scan(&note); err != nil {
		t.Fatal(err)
	}
	return note
}

// TestTriggersRefuseChanges checks the defence in depth: with the triggers
// in place, SQL cannot change or delete stored events.
func TestTriggersRefuseChanges(t *testing.T) {
	data, _ := signedLog(t, 10)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "veritrail.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		`UPDATE events SET envelope = x'00' WHERE rid = ` + fmt.Sprint(rid(1)),
		`DELETE FROM events WHERE rid = ` + fmt.Sprint(rid(1)),
		`UPDATE contents SET body = x'00'`,
		`DELETE FROM contents`,
		`DELETE FROM event_ids`,
		`UPDATE tiles SET hashes = x'00'`,
		`DELETE FROM tiles`,
		`UPDATE log_heads SET size = 1`,
		`DELETE FROM checkpoints`,
		`INSERT INTO checkpoints (org_id, size, root, note, signed_at) VALUES (1, 3, x'00', x'00', 0)`,
	} {
		if _, err := db.Exec(stmt); err == nil || !strings.Contains(err.Error(), "veritrail:") {
			t.Errorf("%s: %v, want a refusal", stmt, err)
		}
	}
}

// TestCrashRecovery kills the server with SIGKILL during sustained ingest,
// restarts it, and checks, 20 times over, that every acknowledged event is
// stored exactly once and that the store verifies.
func TestCrashRecovery(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	const tok = "vt_crash-test-token-0123456789abc"
	env := []string{"VERITRAIL_BOOTSTRAP_TOKEN=" + tok}
	acked := map[string]int64{}
	rnd := rand.New(rand.NewPCG(9, 9))
	rounds := 20
	if testing.Short() {
		rounds = 3
	}
	for round := 0; round < rounds; round++ {
		srv := startServer(t, data, env)
		// Senders post until the server dies under them.
		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{Timeout: 5 * time.Second}
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					var body bytes.Buffer
					ids := make([]string, 25)
					for i := range ids {
						ids[i] = fmt.Sprintf("r%d-w%d-%d-%d", round, w, n, i)
						fmt.Fprintf(&body, `{"id":%q,"type":"crash.test","time":"2026-11-01T00:00:00Z","actor":{"type":"service","id":"w%d"},"content":{"n":%d}}`+"\n", ids[i], w, n)
					}
					req, _ := http.NewRequest("POST", srv.url+"/api/v1/events", &body)
					req.Header.Set("Authorization", "Bearer "+tok)
					resp, err := client.Do(req)
					if err != nil {
						return // the server is gone: this request is not acknowledged
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						continue
					}
					var res struct {
						Events []struct {
							ID  string `json:"id"`
							Seq int64  `json:"seq"`
						} `json:"events"`
					}
					if json.Unmarshal(b, &res) != nil || len(res.Events) != len(ids) {
						continue // cut mid-answer: not acknowledged
					}
					mu.Lock()
					for _, e := range res.Events {
						acked[e.ID] = e.Seq
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(200+rnd.IntN(600)) * time.Millisecond)
		srv.cmd.Process.Signal(syscall.SIGKILL)
		<-srv.exited
		close(stop)
		wg.Wait()
	}
	// Restart, and check every acknowledged event once, at its seq.
	srv := startServer(t, data, env)
	seen := map[string]int64{}
	cursor := ""
	for {
		// Only the test's events: every poll also records an audit event.
		path := "/api/v1/events?order=seq&limit=1000&type=crash.test"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		code, b := srv.do("GET", path, tok, "")
		if code != 200 {
			t.Fatalf("%d %s", code, b)
		}
		var page struct {
			Data []struct {
				ID  string `json:"id"`
				Seq int64  `json:"seq"`
			} `json:"data"`
			Next string `json:"next_cursor"`
		}
		json.Unmarshal(b, &page)
		if len(page.Data) == 0 {
			break
		}
		for _, e := range page.Data {
			if _, dup := seen[e.ID]; dup {
				t.Fatalf("event %s stored twice", e.ID)
			}
			seen[e.ID] = e.Seq
		}
		cursor = page.Next
	}
	for id, seq := range acked {
		got, ok := seen[id]
		if !ok {
			t.Fatalf("acknowledged event %s was lost", id)
		}
		if got != seq {
			t.Fatalf("acknowledged event %s moved from seq %d to %d", id, seq, got)
		}
	}
	if len(acked) == 0 {
		t.Fatal("no event was acknowledged")
	}
	t.Logf("%d rounds, %d events acknowledged, %d stored", rounds, len(acked), len(seen))
	srv.stop()
	if out, errOut, code := runBin(t, "verify", "--data", data, "--quiet"); code != 0 {
		t.Fatalf("the store does not verify after crashes: %s%s", out, errOut)
	}
	_ = context.Background
}

// TestVerifyServerAndBundle verifies a live log through the API, then an
// evidence bundle built from it, and a bundle with one byte changed.
func TestVerifyServerAndBundle(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	const tok = "vt_bundle-test-token-0123456789abc"
	srv := startServer(t, data, []string{"VERITRAIL_BOOTSTRAP_TOKEN=" + tok, "VERITRAIL_RETENTION_INTERVAL=0"})
	postDemo(t, srv, tok, 400)
	key, _ := cli(t, "key", "--data", data)
	vkey := strings.TrimSpace(key)
	out, errOut, code := runBin(t, "verify", "--server", srv.url, "--token", tok, "--key", vkey, "--quiet")
	if code != 0 || !strings.Contains(out, "403 events checked") {
		t.Fatalf("verify --server: %s%s", out, errOut)
	}
	// A kept checkpoint from now must still hold after more events.
	_, note := srv.do("GET", "/api/v1/log/checkpoint", tok, "")
	kept := filepath.Join(t.TempDir(), "kept.txt")
	os.WriteFile(kept, note, 0o600)
	postDemoIDs(t, srv, tok, 50, "more-")
	if out, errOut, code := runBin(t, "verify", "--server", srv.url, "--token", tok, "--key", vkey, "--trusted", kept, "--quiet"); code != 0 {
		t.Fatalf("verify --server --trusted: %s%s", out, errOut)
	}
	// An auditor (no content access) can still verify every envelope.
	aud, _ := cli(t, "token", "create", "--org", "default", "--role", "auditor", "--data", data)
	if out, errOut, code := runBin(t, "verify", "--server", srv.url, "--token", lastLine(aud), "--key", vkey, "--quiet"); code != 0 {
		t.Fatalf("verify --server as auditor: %s%s", out, errOut)
	}

	// Seqs 0 and 1 are the bootstrap's records; 2 turned AI logs on.
	bundle := buildBundle(t, srv, tok, vkey, []int{2, 3, 9, 101, 257, 258, 401})
	if out, errOut, code := runBin(t, "verify", "--bundle", bundle, "--key", vkey); code != 0 || !strings.Contains(out, "7 events (7 with content)") {
		t.Fatalf("verify --bundle: %s%s", out, errOut)
	}
	// A bundle holds no consistency proof: a kept checkpoint is refused,
	// not silently ignored.
	if _, errOut, code := runBin(t, "verify", "--bundle", bundle, "--key", vkey, "--trusted", kept); code == 0 || !strings.Contains(errOut, "--trusted") {
		t.Fatalf("verify --bundle --trusted: %s", errOut)
	}
	// Without --key it checks with the key inside, and says so.
	if _, errOut, code := runBin(t, "verify", "--bundle", bundle); code != 0 || !strings.Contains(errOut, "key inside the bundle") {
		t.Fatalf("verify --bundle without key: %s", errOut)
	}
	// Any one changed byte of an envelope, a content or a proof fails.
	events := readZipEntry(t, bundle, "events.ndjson")
	for _, edit := range []struct{ name, from, to string }{
		{"envelope", `"type":"`, `"type":"x`},
		{"content", `"content":{`, `"content":{"x":1,`},
		{"proof", `"proof":["`, `"proof":["A`},
		{"seq", `{"seq":9,`, `{"seq":10,`},
	} {
		i := strings.Index(events, edit.from)
		if i < 0 {
			t.Fatalf("%s: nothing to change", edit.name)
		}
		changed := events[:i] + edit.to + events[i+len(edit.from):]
		bad := rewriteZipEntry(t, bundle, "events.ndjson", changed)
		if out, _, code := runBin(t, "verify", "--bundle", bad, "--key", vkey); code == 0 {
			t.Errorf("a bundle with a changed %s verified: %s", edit.name, out)
		}
	}
	// A flipped byte anywhere in an envelope.
	line := strings.SplitN(events, "\n", 2)[0]
	j := strings.Index(line, `"envelope":`) + 20
	flipped := strings.Replace(events, line, line[:j]+string(line[j]^1)+line[j+1:], 1)
	if _, _, code := runBin(t, "verify", "--bundle", rewriteZipEntry(t, bundle, "events.ndjson", flipped), "--key", vkey); code == 0 {
		t.Error("a bundle with a flipped byte verified")
	}
	srv.stop()
}

// expireAndErase stores 90 events: 30 whose content is past the default
// retention, 30 whose envelope is too, and 30 recent ones of which 10 are
// erasable@example.com's; it waits until full text holds them, then runs
// retention and erases that person's content.
func expireAndErase(t *testing.T, srv *server, tok string) {
	t.Helper()
	now := time.Now().UTC()
	var body bytes.Buffer
	line := func(id string, at time.Time, email, word string) {
		fmt.Fprintf(&body, `{"id":%q,"time":%q,"type":"board.board_opened","actor":{"type":"user","id":%q,"email":%q},"content":{"note":%q}}`+"\n",
			id, at.Format(time.RFC3339), email, email, word)
	}
	for i := 0; i < 30; i++ {
		// Past the default 90 days of content, within 2 years of metadata.
		line(fmt.Sprintf("old-%d", i), now.AddDate(0, 0, -100), fmt.Sprintf("keptperson%d@example.com", i), fmt.Sprintf("expiredcontentmarkera%d", i))
		// Past 2 years: the envelope goes too.
		line(fmt.Sprintf("ancient-%d", i), now.AddDate(0, 0, -800), fmt.Sprintf("goneperson%d@expired.example", i), fmt.Sprintf("expiredcontentmarkerb%d", i))
		// Recent, some of it from the person who asks for erasure.
		email := "someone@example.com"
		word := fmt.Sprintf("keptcontentmarker%d", i)
		if i%3 == 0 {
			email, word = "erasable@example.com", fmt.Sprintf("erasedcontentmarker%d", i)
		}
		line(fmt.Sprintf("new-%d", i), now.Add(-time.Hour), email, word)
	}
	if code, b := srv.do("POST", "/api/v1/events", tok, body.String()); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	// Wait until full text holds the words, so their removal is tested.
	for deadline := time.Now().Add(10 * time.Second); ; {
		// A prefix: the audit record of this search keeps its words.
		_, b := srv.do("GET", "/api/v1/events?q=expiredcontentmarkerb*", tok, "")
		if bytes.Contains(b, []byte(`"ancient-7"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("full text never indexed the events")
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, b := srv.do("POST", "/api/v1/retention/run", tok, "")
	if code != 200 || !bytes.Contains(b, []byte(`"content_removed":30`)) || !bytes.Contains(b, []byte(`"envelopes_removed":30`)) {
		t.Fatalf("retention: %d %s", code, b)
	}
	code, b = srv.do("POST", "/api/v1/erasure", tok, `{"actor_email":"ERASABLE@example.com"}`)
	if code != 200 || !bytes.Contains(b, []byte(`"content_removed":10`)) {
		t.Fatalf("erasure: %d %s", code, b)
	}
}

func postDemoIDs(t *testing.T, s *server, tok string, n int, prefix string) {
	var body bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&body, `{"id":"%s%d","type":"auth.login","actor":{"type":"user","id":"u"},"content":{"i":%d}}`+"\n", prefix, i, i)
	}
	if code, b := s.do("POST", "/api/v1/events", tok, body.String()); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
}

// TestRetentionGoneFromDisk expires and erases data on a real server, checks
// that the log still verifies online and offline, and that not one byte of
// what went is left anywhere in the data directory.
func TestRetentionGoneFromDisk(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	const tok = "vt_retention-test-token-0123456789ab"
	srv := startServer(t, data, []string{"VERITRAIL_BOOTSTRAP_TOKEN=" + tok})
	expireAndErase(t, srv, tok)
	key, _ := cli(t, "key", "--data", data)
	vkey := strings.TrimSpace(key)
	out, errOut, code2 := runBin(t, "verify", "--server", srv.url, "--token", tok, "--key", vkey, "--quiet")
	if code2 != 0 || !strings.Contains(out, "30 envelopes expired by policy") {
		t.Fatalf("verify --server after removal: %s%s", out, errOut)
	}
	srv.stop()
	out, errOut, code2 = runBin(t, "verify", "--data", data, "--key", vkey, "--quiet")
	if code2 != 0 || !strings.Contains(out, "30 envelopes expired by policy and 40 contents removed") {
		t.Fatalf("verify --data after removal: %s%s", out, errOut)
	}
	// A byte search of every file: nothing of what went, all of what stays.
	files := map[string][]byte{}
	filepath.Walk(data, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(p)
			files[p] = b
		}
		return nil
	})
	found := func(s string) bool {
		for name, f := range files {
			if i := bytes.Index(f, []byte(s)); i >= 0 {
				t.Logf("%q found in %s at %d: %q", s, name, i, f[max(0, i-80):min(len(f), i+40)])
				return true
			}
		}
		return false
	}
	for i := 0; i < 30; i++ {
		for _, gone := range []string{fmt.Sprintf("expiredcontentmarkera%d", i), fmt.Sprintf("expiredcontentmarkerb%d", i),
			fmt.Sprintf("goneperson%d@expired.example", i), fmt.Sprintf("goneperson%d", i)} {
			if found(gone) {
				t.Errorf("%q is still on disk", gone)
			}
		}
		if i%3 == 0 && found(fmt.Sprintf("erasedcontentmarker%d", i)) {
			t.Errorf("erased content %d is still on disk", i)
		}
		if i%3 != 0 && !found(fmt.Sprintf("keptcontentmarker%d", i)) {
			t.Errorf("kept content %d is not on disk: the search proves nothing", i)
		}
		if !found(fmt.Sprintf("keptperson%d@example.com", i)) {
			t.Errorf("the envelope of old-%d is gone: only its content should be", i)
		}
	}
}

// pgServer starts a server on a new PostgreSQL database. It returns the
// server, the database URL, and the verifier key of the default
// organization's log.
func pgServer(t *testing.T, tok string) (*server, string, string) {
	t.Helper()
	db := pgtest.New(t)
	dir := t.TempDir()
	mk := filepath.Join(dir, "master-key")
	os.WriteFile(mk, []byte(seal.Generate()+"\n"), 0o600)
	srv := startServer(t, filepath.Join(dir, "data"), []string{"VERITRAIL_DB=" + db, "VERITRAIL_MASTER_KEY_FILE=" + mk,
		"VERITRAIL_BOOTSTRAP_TOKEN=" + tok, "VERITRAIL_LOG_ORIGIN=test.example/log", "VERITRAIL_RETENTION_INTERVAL=0"})
	t.Setenv("VERITRAIL_MASTER_KEY_FILE", mk)
	key, _ := cli(t, "key", "--db", db, "--data", filepath.Join(dir, "data"))
	return srv, db, strings.TrimSpace(key)
}

// pgSignedLog is signedLog on PostgreSQL: a server on a new database
// loads events and stops (signing the final checkpoint). It returns the
// database URL and the verifier key.
func pgSignedLog(t *testing.T, n int) (string, string) {
	t.Helper()
	const tok = "vt_pg-integrity-test-token-012345678"
	srv, db, vkey := pgServer(t, tok)
	postDemo(t, srv, tok, n)
	srv.stop()
	return db, vkey
}

// pgCopy copies a database (no one may be connected to it) and returns
// the copy's URL.
func pgCopy(t *testing.T, db string) string {
	t.Helper()
	u, err := neturl.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	from := strings.TrimPrefix(u.Path, "/")
	to := fmt.Sprintf("%s_copy_%d", from, rand.Int64())
	pgExec(t, pgtest.Get(t).URL("postgres"), "CREATE DATABASE "+to+" TEMPLATE "+from)
	u.Path = "/" + to
	return u.String()
}

// pgExec runs statements on a database as its superuser, with the
// append-only triggers off (session_replication_role = replica), as an
// insider with database access would.
func pgExec(t *testing.T, db string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SET session_replication_role = replica`); err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		tag, err := conn.Exec(ctx, s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if strings.HasPrefix(s, "UPDATE") || strings.HasPrefix(s, "DELETE") || strings.HasPrefix(s, "INSERT") {
			if tag.RowsAffected() == 0 {
				t.Fatalf("%s: changed nothing", s)
			}
		}
	}
}

// TestTamperDetectedPostgres: verify --db checks a PostgreSQL store as
// --data checks SQLite, its derived columns included, and names the first
// failing seq.
func TestTamperDetectedPostgres(t *testing.T) {
	db, vkey := pgSignedLog(t, 600)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	var size int64 // 601 and the server's own records, if any
	if err := conn.QueryRow(ctx, `SELECT size FROM log_heads WHERE org_id = 1`).Scan(&size); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runBin(t, "verify", "--db", db, "--key", vkey, "--quiet")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("%d events checked", size)) || !strings.Contains(out, "search and id indexes checked") {
		t.Fatalf("the untouched store does not verify: %s%s", out, errOut)
	}
	// The guard triggers refuse changes while they are on.
	for _, stmt := range []string{`UPDATE events SET envelope = '\x00' WHERE org_id = 1 AND seq = 1`, `DELETE FROM events WHERE org_id = 1 AND seq = 1`} {
		if _, err := conn.Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "veritrail:") {
			t.Errorf("%s: %v, want a refusal", stmt, err)
		}
	}
	conn.Close(ctx)
	// One byte of an envelope: the first letter of its type, upper-cased.
	const typeByte = `position('"type":"'::bytea IN envelope) + 7`
	for _, tc := range []struct {
		name  string
		stmts []string
		seq   string // the seq the first failure must name
		kind  string
	}{
		{"one byte of an envelope", []string{
			`UPDATE events SET envelope = set_byte(envelope, ` + typeByte + `, get_byte(envelope, ` + typeByte + `) # 32) WHERE org_id = 1 AND seq = 117`},
			"seq 117", "leaf_mismatch"},
		{"an event row deleted", []string{`DELETE FROM events WHERE org_id = 1 AND seq = 311`},
			"seq 311", "missing_event"},
		{"two rows' envelopes swapped", []string{
			`UPDATE events AS e SET envelope = o.envelope FROM events AS o WHERE e.org_id = 1 AND o.org_id = 1
				AND ((e.seq = 500 AND o.seq = 501) OR (e.seq = 501 AND o.seq = 500))`},
			"seq 500", "leaf_mismatch"},
		{"an index column edited", []string{`UPDATE events SET actor_id = 'mallory'::bytea WHERE org_id = 1 AND seq = 250`},
			"seq 250", "index_mismatch"},
		{"an index column cleared", []string{`UPDATE events SET type = ''::bytea WHERE org_id = 1 AND seq = 42`},
			"seq 42", "index_mismatch"},
		{"full-text words edited", []string{`UPDATE events SET tsv_env = to_tsvector('simple', 'nothing to see') WHERE org_id = 1 AND seq = 333`},
			"seq 333", "index_mismatch"},
		{"the time column edited", []string{`UPDATE events SET time_ns = time_ns + 1 WHERE org_id = 1 AND seq = 444`},
			"seq 444", "index_mismatch"},
		{"a content's category edited", []string{`UPDATE contents SET category = 'zzz' WHERE org_id = 1 AND seq = 555`},
			"seq 555", "index_mismatch"},
		{"an id index entry redirected", []string{`UPDATE event_ids SET seq = 5 WHERE org_id = 1 AND seq = 77`},
			"seq 77", "id_index_mismatch"},
		{"a content", []string{`UPDATE contents SET body = convert_to(replace(convert_from(body, 'UTF8'), '}', ',"x":1}'), 'UTF8') WHERE org_id = 1 AND seq = 223`},
			"seq 223", "content_digest_mismatch"},
		{"a forged event appended", []string{fmt.Sprintf(`INSERT INTO events (org_id, seq, time_ns, id, category, type, envelope, tsv_env)
			SELECT org_id, %d, time_ns, 'forged', category, type, envelope, tsv_env FROM events WHERE org_id = 1 AND seq = 600`, size)},
			fmt.Sprintf("seq %d", size), "extra_event"},
		{"a checkpoint replaced", []string{fmt.Sprintf(`UPDATE checkpoints SET note = convert_to(replace(convert_from(note, 'UTF8'), E'\n%d\n', E'\n600\n'), 'UTF8') WHERE org_id = 1 AND size = %[1]d`, size)},
			"the log as a whole", "bad_signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			copied := pgCopy(t, db)
			pgExec(t, copied, tc.stmts...)
			wantFirstFailure(t, tc.seq, tc.kind, "--db", copied, "--key", vkey)
		})
	}
	// A kept checkpoint; the verifier only reads (the database refuses
	// its writes), so it runs beside a live server.
	t.Run("trusted checkpoint", func(t *testing.T) {
		kept := filepath.Join(t.TempDir(), "kept.txt")
		var note []byte
		conn, err := pgx.Connect(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		err = conn.QueryRow(ctx, `SELECT note FROM checkpoints WHERE org_id = 1 ORDER BY size DESC LIMIT 1`).Scan(&note)
		conn.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(kept, note, 0o600)
		if out, errOut, code := runBin(t, "verify", "--db", db, "--key", vkey, "--trusted", kept, "--quiet"); code != 0 || !strings.Contains(out, "compared with the checkpoint you kept") {
			t.Fatalf("kept checkpoint: %s%s", out, errOut)
		}
	})
	t.Run("no key", func(t *testing.T) {
		t.Setenv("VERITRAIL_SIGNING_KEY_FILE", "")
		if _, errOut, code := runBin(t, "verify", "--db", db, "--quiet"); code == 0 || !strings.Contains(errOut, "--db needs --key") {
			t.Fatalf("verify --db without a key: %s", errOut)
		}
	})
}

// TestVerifySaysWhatItChecked: a verifier key names one organization's
// log; verify says which organizations it checked and which it did not,
// and why, and passes only for what it checked.
func TestVerifySaysWhatItChecked(t *testing.T) {
	data, vkey := signedLog(t, 5)
	cli(t, "org", "create", "acme", "--data", data)
	acmeKey, _ := cli(t, "key", "--data", data, "--org", "acme")
	acmeKey = strings.TrimSpace(acmeKey)

	out, errOut, code := runBin(t, "verify", "--data", data, "--key", vkey, "--quiet")
	if code != 0 || !strings.Contains(out, "org acme: NOT CHECKED: no verifier key was given for its log (test.example/log/acme)") ||
		!strings.Contains(out, "verification passed for 1 of 2 organizations checked (default); acme NOT checked") {
		t.Fatalf("one key of two logs: %s%s", out, errOut)
	}
	out, errOut, code = runBin(t, "verify", "--data", data, "--key", vkey, "--key", acmeKey, "--quiet")
	if code != 0 || strings.Contains(out, "NOT CHECKED") || !strings.Contains(out, "verification passed: every organization checked (default, acme)") {
		t.Fatalf("a key for each log: %s%s", out, errOut)
	}
	out, errOut, code = runBin(t, "verify", "--data", data, "--quiet")
	if code != 0 || !strings.Contains(errOut, "warning: checking signatures with the key found in the data directory") ||
		!strings.Contains(out, "every organization checked (default, acme)") || !strings.Contains(out, "key found beside the data") {
		t.Fatalf("no key: %s%s", out, errOut)
	}
	out, errOut, code = runBin(t, "verify", "--data", data, "--org", "acme", "--key", acmeKey, "--quiet")
	if code != 0 || !strings.Contains(out, "org default: NOT CHECKED: only organization acme was asked for") {
		t.Fatalf("--org: %s%s", out, errOut)
	}
	// A key of a log that is not checked is no pass.
	out, errOut, code = runBin(t, "verify", "--data", data, "--org", "acme", "--key", vkey, "--quiet")
	if code == 0 || !strings.Contains(errOut, "no_such_log") || !strings.Contains(errOut, "0 of 2 organizations checked") {
		t.Fatalf("--org with another log's key: %s%s", out, errOut)
	}
}

// TestRetentionVerifiedPostgres: verify --db knows what retention and
// erasure removed from a PostgreSQL store, and checks it beside a running
// server (in one snapshot, reading only).
func TestRetentionVerifiedPostgres(t *testing.T) {
	const tok = "vt_pg-retention-test-token-01234567"
	srv, db, vkey := pgServer(t, tok)
	expireAndErase(t, srv, tok)
	out, errOut, code := runBin(t, "verify", "--db", db, "--key", vkey, "--quiet")
	if code != 0 || !strings.Contains(out, "30 envelopes expired by policy and 40 contents removed") {
		t.Fatalf("verify --db after removal: %s%s", out, errOut)
	}
	srv.stop()
	// A removal no retention or erasure record justifies.
	pgExec(t, db, `INSERT INTO removals (org_id, seq_from, seq_to, what, reason, record, at)
		SELECT org_id, 5, 5, 'content', 'retention', 'evt_forged', at FROM removals LIMIT 1`)
	if _, errOut, code := runBin(t, "verify", "--db", db, "--key", vkey, "--quiet"); code == 0 || !strings.Contains(errOut, "unrecorded_removal") {
		t.Fatalf("an unrecorded removal: %s", errOut)
	}
}
