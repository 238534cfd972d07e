package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/veritrail/veritrail/internal/testenv"
	"github.com/veritrail/veritrail/internal/tlogpeers"
)

// TestWitnessLongOutage: the organization's witness (litewitness) is
// unreachable while the log grows by thousands of events over many
// checkpoints. What is kept for it stays bounded (one checkpoint pending
// per witness, the newest; the witness log gets a row when the outcome
// changes and at most one a minute while it does not, never one per
// checkpoint or attempt), the outage is visible (the latest attempt in
// /api/v1/log/witnesses failed, the failures metric counts), and when the
// witness is back it cosigns the newest checkpoint, whose consistency
// proof spans the whole outage. Counts and states only.
func TestWitnessLongOutage(t *testing.T) {
	w := tlogpeers.StartWitness(t, "witness-outage.test")
	sw := testenv.StartTCPSwitch(t, strings.TrimPrefix(w.URL, "http://"))
	proxied := *w
	proxied.URL = "http://" + sw.Addr()
	const tok = "vt_witness-outage-token-0123456789ab"
	env := []string{"VERITRAIL_BOOTSTRAP_TOKEN=" + tok, "VERITRAIL_LOG_ORIGIN=outage.test", "VERITRAIL_RETENTION_INTERVAL=0",
		"VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true"}
	data := t.TempDir()
	a := startServer(t, data, env)
	key, _ := cli(t, "key", "--data", data)
	vkey := strings.TrimSpace(key)
	w.AddLog(t, "outage.test/default", vkey)
	setWitnessing(t, a, tok, 1, &proxied)
	base := a.url + "/tlog/default"
	postDemoIDs(t, a, tok, 50, "before-")
	waitCosigned(t, base, vkey, 51, &proxied)

	type attempt struct {
		Witness string `json:"witness"`
		Size    int64  `json:"size"`
		OK      bool   `json:"ok"`
		Detail  string `json:"detail"`
	}
	attempts := func() []attempt {
		code, b := a.do("GET", "/api/v1/log/witnesses", tok, "")
		var out struct{ Data []attempt }
		if code != 200 || json.Unmarshal(b, &out) != nil {
			t.Fatalf("witness attempts: %d %s", code, b)
		}
		return out.Data
	}
	rowsBefore := len(attempts())

	sw.SetDown(true)
	const rounds, per = 20, 100
	for i := range rounds {
		postDemoIDs(t, a, tok, per, fmt.Sprintf("outage%d-", i))
	}
	var latest []attempt
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		latest = attempts()
		if len(latest) > 0 && !latest[0].OK && latest[0].Size > 51+rounds*per && sw.Refused() >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outage does not show: %d connections refused, attempts %+v", sw.Refused(), latest)
		}
	}
	if latest[0].Witness != proxied.URL || latest[0].Detail == "" {
		t.Fatalf("latest attempt: %+v", latest[0])
	}
	// Recorded on the change to failing (and at most once a minute
	// since), not once per checkpoint or attempt.
	if grew := len(latest) - rowsBefore; grew > 3 {
		t.Fatalf("the witness log grew by %d rows during the outage (%d connections refused)", grew, sw.Refused())
	}
	if code, m := a.do("GET", "/metrics", "", ""); code != 200 ||
		!strings.Contains(string(m), fmt.Sprintf(`veritrail_witness_requests_total{result="failed",witness=%q}`, proxied.URL)) {
		t.Fatalf("no failure counted in the metrics:\n%s", m)
	}

	sw.SetDown(false)
	size := uint64(latest[0].Size)
	waitCosigned(t, base, vkey, size, &proxied)
	if now := attempts(); len(now) == 0 || !now[0].OK {
		t.Fatalf("after the outage: %+v", now)
	}
	t.Logf("%d connections refused during the outage; cosigned again at size %d", sw.Refused(), size)
}
