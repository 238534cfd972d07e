package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/veritrail/veritrail/sink"
)

// TestIngestCostOfForwarding measures what forwarding costs ingest: the
// same `veritrail bench` load against a server with no sink, with a webhook
// sink (content, native) and with a Kafka sink (content, OCSF), each
// delivering while the load runs. A measurement, not a check: it runs only
// when asked.
//
//	VERITRAIL_BENCH_FORWARDING=1 go test ./cmd/veritrail -run TestIngestCostOfForwarding -v -timeout 30m
//
// VERITRAIL_BENCH_DURATION sets the load's duration (20s), and
// VERITRAIL_BENCH_ARGS adds flags to veritrail bench (--rate 10000),
// VERITRAIL_BENCH_SERVER_ARGS to the server (--cpuprofile FILE), and
// VERITRAIL_BENCH_ONLY runs only the cases whose name contains it.
func TestIngestCostOfForwarding(t *testing.T) {
	if os.Getenv("VERITRAIL_BENCH_FORWARDING") == "" {
		t.Skip("a measurement: set VERITRAIL_BENCH_FORWARDING=1 to run it")
	}
	dur := "20s"
	if d := os.Getenv("VERITRAIL_BENCH_DURATION"); d != "" {
		dur = d
	}
	rate := regexp.MustCompile(`acknowledged\s+(\d+) events in \d+ requests: (\d+) events/s`)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "veritrail"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	const tok = "vt_bench-forwarding-token-0123456789"
	const secret = "whsec-bench"
	peer := newHookPeer(t, secret)
	peer.signatureOnly = true // a receiver's JSON decoding is not Veritrail's cost
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte(secret), 0o600)
	for _, c := range []struct{ name, sink string }{
		{"no sink", ""},
		{"webhook sink (native, content)", fmt.Sprintf(`{"type":"webhook","url":"http://%s/hook","content":true,"batch":{"max_events":1000,"max_bytes":4194304,"max_wait":"200ms"}}`, peer.addr)},
		{"kafka sink (ocsf, content)", fmt.Sprintf(`{"type":"kafka","brokers":[%q],"topic":"veritrail","format":"ocsf","content":true,"batch":{"max_events":1000,"max_bytes":4194304,"max_wait":"200ms"}}`, kc.ListenAddrs()[0])},
	} {
		if only := os.Getenv("VERITRAIL_BENCH_ONLY"); only != "" && !strings.Contains(c.name, only) {
			continue
		}
		data := filepath.Join(t.TempDir(), "data")
		srv := startServer(t, data, []string{"VERITRAIL_BOOTSTRAP_TOKEN=" + tok, "VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true"}, strings.Fields(os.Getenv("VERITRAIL_BENCH_SERVER_ARGS"))...)
		// As veritrail bench does with the servers it starts: the AI
		// interactions of the mix are stored, not refused.
		code, b := srv.do("GET", "/api/v1/settings", tok, "")
		var st map[string]any
		if code != 200 || json.Unmarshal(b, &st) != nil {
			t.Fatalf("settings: %d %s", code, b)
		}
		st["ai_interaction_logs_enabled"] = true
		delete(st, "ai_interaction_logs_enabled_at")
		body, _ := json.Marshal(st)
		if code, b := srv.do("PUT", "/api/v1/settings", tok, string(body)); code != 200 {
			t.Fatalf("settings: %d %s", code, b)
		}
		id := ""
		if c.sink != "" {
			args := []string{"sink", "create", "--server", srv.url, "--token", tok, "--json", c.sink}
			if c.name[0] == 'w' {
				args = append(args, "--secret-file", secretFile)
			}
			out, _ := cli(t, args...)
			id = regexp.MustCompile(`"id": "([^"]+)"`).FindStringSubmatch(out)[1]
		}
		args := []string{"bench", "--server", srv.url, "--token", tok, "--duration", dur}
		args = append(args, strings.Fields(os.Getenv("VERITRAIL_BENCH_ARGS"))...) // e.g. --rate 10000
		out, _ := cli(t, args...)
		m := rate.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("bench output: %s", out)
		}
		line := fmt.Sprintf("%-32s ingest %6s events/s", c.name, m[2])
		if lat := regexp.MustCompile(`latency\s+p50 (\S+)\s+p90 (\S+)\s+p99 (\S+)`).FindStringSubmatch(out); lat != nil {
			line += fmt.Sprintf(" (ack latency p50 %s p99 %s)", lat[1], lat[3])
		}
		if id != "" {
			v := showSink(t, srv, tok, id)
			start := time.Now()
			v2 := waitSink(t, srv, tok, id, "drain", func(v sink.View) bool { return v.LagEvents == 0 })
			total, _ := strconv.ParseFloat(m[1], 64)
			line += fmt.Sprintf("; lag when the load stopped %d events (%.1f s); drained %.1f s later; last seq %d (of %.0f acknowledged in the measured window)",
				v.LagEvents, v.LagSeconds, time.Since(start).Seconds(), *v2.Delivered, total)
		}
		t.Log(line)
		srv.stop()
	}
}
