package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/hooktest"
	"github.com/veritrail/veritrail/tlog"
)

const rulesFile = `# the team's rules, kept in git
rules:
  - name: failed sign-ins
    kind: threshold
    condition: type == "auth.login" && outcome == "failure"
    group_by: [actor.id]
    threshold: 3
    window: 5m
    severity: high
    owner: secops
    routes:
      - type: webhook
        url: ${HOOK_URL}
        secret: ${HOOK_SECRET}
  - name: admin role changes
    kind: match
    condition: type == "team.member_role_changed"
    severity: medium
`

// runRulesCLI runs veritrail rules with the hook's variables set; it
// returns the output and the exit code.
func runRulesCLI(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"rules"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// TestRulesCLIAndEvidence: rules files applied with the CLI (again: no
// change; edited: updated; --prune), tested against the stored log, and
// the alert they raise delivered to a signed webhook and recorded as
// alert.* events that verify like any other: an inclusion proof against a
// signed checkpoint, and verify --data on the stopped server's files.
func TestRulesCLIAndEvidence(t *testing.T) {
	const secret = "hook-secret-0123456789"
	hook := hooktest.Start(t, secret)

	data := filepath.Join(t.TempDir(), "data")
	const tok = "vt_rules-cli-test-token-0123456789"
	srv := startServer(t, data, []string{"VERITRAIL_BOOTSTRAP_TOKEN=" + tok, "VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true"})
	env := []string{"VERITRAIL_SERVER=" + srv.url, "VERITRAIL_TOKEN=" + tok, "HOOK_URL=" + hook.URL, "HOOK_SECRET=" + secret}
	file := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(file, []byte(rulesFile), 0o600)

	out, code := runRulesCLI(t, env, "apply", file)
	if code != 0 || strings.Count(out, "created") != 2 {
		t.Fatalf("apply: %d\n%s", code, out)
	}
	out, code = runRulesCLI(t, env, "apply", file)
	if code != 0 || strings.Count(out, "unchanged") != 2 {
		t.Fatalf("apply again: %d\n%s", code, out)
	}
	// Edited, and a rule made elsewhere: --prune deletes it.
	os.WriteFile(file, []byte(strings.Replace(rulesFile, "severity: medium", "severity: high", 1)), 0o600)
	if c, b := srv.do("POST", "/api/v1/rules", tok, `{"name":"made by hand","kind":"match","condition":"false","severity":"low"}`); c != 201 {
		t.Fatalf("a rule by hand: %d %s", c, b)
	}
	out, code = runRulesCLI(t, env, "apply", "--prune", file)
	if code != 0 || !strings.Contains(out, "updated") || !strings.Contains(out, "unchanged") || !strings.Contains(out, "made by hand") ||
		!strings.Contains(out, "deleted") {
		t.Fatalf("apply --prune: %d\n%s", code, out)
	}
	// A mistake is placed in its file.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(rulesFile, "window: 5m", "window: 5 minutes", 1)), 0o600)
	if out, code := runRulesCLI(t, env, "apply", bad); code == 0 || !strings.Contains(out, bad+":8: ") || !strings.Contains(out, `"window"`) {
		t.Fatalf("a bad file: %d\n%s", code, out)
	}
	if out, code := runRulesCLI(t, []string{"VERITRAIL_SERVER=" + srv.url, "VERITRAIL_TOKEN=" + tok}, "apply", file); code == 0 || !strings.Contains(out, "HOOK_URL") {
		t.Fatalf("a variable not set: %d\n%s", code, out)
	}

	// Events trip the rule: an alert, delivered to the webhook.
	var evs strings.Builder
	for i := range 3 {
		fmt.Fprintf(&evs, `{"id":"f%d","type":"auth.login","actor":{"type":"user","id":"u1"},"outcome":"failure"}`+"\n", i)
	}
	if c, b := srv.do("POST", "/api/v1/events", tok, evs.String()); c != 200 {
		t.Fatalf("events: %d %s", c, b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if len(hook.Bodies()) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no webhook within 30s\n%s", srv.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	first := hook.Bodies()[0]
	alertID, _ := first["alert_id"].(string)
	if first["rule"] != "failed sign-ins" || first["state"] != "open" || len(first["event_ids"].([]any)) != 3 || hook.Bad() != 0 {
		t.Fatalf("webhook body: %v (%d refused)", first, hook.Bad())
	}

	// rules test replays the log: the same alert, nothing sent.
	out, code = runRulesCLI(t, env, "test", file, "--since", "1h")
	if code != 0 || !strings.Contains(out, "1 alert(s) would have been raised") || !strings.Contains(out, "failed sign-ins") {
		t.Fatalf("rules test: %d\n%s", code, out)
	}
	if c, b := srv.do("PATCH", "/api/v1/alerts/"+alertID, tok, `{"state":"acknowledged","note":"looking"}`); c != 200 {
		t.Fatalf("acknowledge: %d %s", c, b)
	}

	// The alert's records are events of the log, with inclusion proofs.
	var recs struct {
		Data []struct {
			ID  string `json:"id"`
			Seq int64  `json:"seq"`
		} `json:"data"`
	}
	c, b := srv.do("GET", "/api/v1/events?order=asc&type=alert.*&target_id="+alertID, tok, "")
	if c != 200 || json.Unmarshal(b, &recs) != nil || len(recs.Data) != 2 {
		t.Fatalf("alert records: %d %s", c, b)
	}
	_, keyText := srv.do("GET", "/api/v1/log/key", tok, "")
	vkey := strings.TrimSpace(string(keyText))
	for _, rec := range recs.Data {
		var ev struct {
			Proof struct {
				LeafHash   string   `json:"leaf_hash"`
				Hashes     []string `json:"hashes"`
				Checkpoint string   `json:"checkpoint"`
			} `json:"proof"`
		}
		deadline := time.Now().Add(30 * time.Second)
		var body []byte
		for { // until a signed checkpoint covers it
			c, body = srv.do("GET", "/api/v1/events/"+rec.ID+"?proof=true", tok, "")
			if c == 200 && json.Unmarshal(body, &ev) == nil && ev.Proof.Checkpoint != "" || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		cp, err := tlog.OpenCheckpoint([]byte(ev.Proof.Checkpoint), vkey)
		if err != nil {
			t.Fatalf("%s: checkpoint: %v (%s)", rec.ID, err, body)
		}
		leaf, _ := base64.StdEncoding.DecodeString(ev.Proof.LeafHash)
		_, plain := srv.do("GET", "/api/v1/events/"+rec.ID, tok, "")
		env := plain[:strings.Index(string(plain), `,"content":`)]
		if want := veritrail.LeafHash(append(env, '}')); string(want[:]) != string(leaf) {
			t.Fatalf("%s: the leaf is not the record's envelope", rec.ID)
		}
		var hashes [][]byte
		for _, h := range ev.Proof.Hashes {
			d, _ := base64.StdEncoding.DecodeString(h)
			hashes = append(hashes, d)
		}
		if err := tlog.VerifyInclusion(uint64(rec.Seq), cp.Size, leaf, hashes, cp.Root); err != nil {
			t.Fatalf("%s: inclusion proof: %v", rec.ID, err)
		}
	}
	srv.stop()
	key, _ := cli(t, "key", "--data", data)
	if out, errOut, code := runBin(t, "verify", "--data", data, "--key", strings.TrimSpace(key)); code != 0 {
		t.Fatalf("verify --data: %s%s", out, errOut)
	}
}
