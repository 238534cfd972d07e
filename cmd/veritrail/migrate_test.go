package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/veritrail/veritrail/postgres/pgtest"
)

// TestServeOnPreviousSchema starts this version on a database that the
// version before the schema was made distributable created and filled
// (postgres/testdata/README.md): the migration runs at start, the tokens
// made before still work, new tokens name their organization, and every
// log verifies through the API, its history of checkpoints from before
// and after the migration included, before and after a retention run
// removes content.
func TestServeOnPreviousSchema(t *testing.T) {
	db := pgtest.New(t)
	pgtest.Load(t, db, filepath.Join("..", "..", "postgres", "testdata", "main-0004.sql.gz"))
	dir := t.TempDir()
	key, err := os.ReadFile(filepath.Join("..", "..", "postgres", "testdata", "main-0004.master-key"))
	if err != nil {
		t.Fatal(err)
	}
	mk := filepath.Join(dir, "master-key")
	os.WriteFile(mk, key, 0o600)
	env := []string{"VERITRAIL_DB=" + db, "VERITRAIL_MASTER_KEY_FILE=" + mk, "VERITRAIL_RATE_LIMIT=0"}
	s := startServer(t, filepath.Join(dir, "node"), env)

	tokens := map[string]string{
		"default": "vt_legacy-bootstrap-token-0123456789abcdef",
		"globex":  "vt_gJ7cUBCu1HJUZQ8wQCwk4E5SFmUxzf9whOLYWX_o9l8",
	}
	// A token made now names its organization.
	code, body := s.do("POST", "/api/v1/tokens", tokens["globex"], `{"name":"after","role":"auditor"}`)
	var created struct {
		Token string `json:"token"`
	}
	json.Unmarshal(body, &created)
	if code != 201 || len(created.Token) != len("vt_")+54 {
		t.Fatalf("new token: %d %s", code, body)
	}
	if code, body := s.do("GET", "/api/v1/events?limit=1", created.Token, ""); code != 200 {
		t.Fatalf("new token refused: %d %s", code, body)
	}

	t.Setenv("VERITRAIL_MASTER_KEY_FILE", mk)
	verify := func(org, when string) {
		t.Helper()
		k, _ := cli(t, "key", "--db", db, "--data", filepath.Join(dir, "node"), "--org", org)
		out, errOut, code := runBin(t, "verify", "--server", s.url, "--token", tokens[org], "--key", strings.TrimSpace(k), "--quiet")
		if code != 0 {
			t.Fatalf("verify %s %s: %s%s", org, when, out, errOut)
		}
	}
	for org, tok := range tokens {
		if !postBatch(s.url, tok, "after", 50) {
			t.Fatalf("%s: ingest with a token made before the migration refused", org)
		}
		// A checkpoint of the grown log, after the ones from before.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			_, body := s.do("GET", "/api/v1/log/checkpoint", tok, "") // a signed note: origin, size, root
			if lines := strings.Split(string(body), "\n"); len(lines) > 1 {
				if size, _ := strconv.Atoi(lines[1]); size >= 85 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no checkpoint of the grown log: %s", org, body)
			}
		}
		verify(org, "after the migration")
	}
	// globex's old content expires (default's did before the migration).
	code, body = s.do("POST", "/api/v1/retention/run", tokens["globex"], "")
	var run struct {
		Removed int `json:"content_removed"`
	}
	json.Unmarshal(body, &run)
	if code != 200 || run.Removed < 5 {
		t.Fatalf("retention: %d %s, want the 5 old contents removed", code, body)
	}
	verify("globex", "after retention")
	s.stop()
}
