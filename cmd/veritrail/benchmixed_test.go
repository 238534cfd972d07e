package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestBenchMixed runs `veritrail bench --exports --query-clients` briefly:
// a check that both runs happen and the report states the rates, their
// ratio, the exports and the queries' latency (not a measurement).
func TestBenchMixed(t *testing.T) {
	out, _ := cli(t, "bench", "--duration", "500ms", "--warmup", "200ms", "--concurrency", "2", "--batch", "20",
		"--stored", "500", "--exports", "1", "--query-clients", "2")
	for _, re := range []string{
		`solo\s+[1-9]\d* events/s, 0 errors`,
		`mixed\s+[1-9]\d* events/s, 0 errors`,
		`ratio\s+\d+\.\d\d \(goal ≥ 0\.90\)`,
		`exports\s+\d+ complete, [\d.]+ MB streamed, 0 errors`,
		`queries\s+[1-9]\d*, p50 \S+\s+p99 \S+\s+max \S+, 0 errors`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("the report has no line matching %s:\n%s", re, out)
		}
	}
}

// The inner runs of the mixed bench go to the server it started, so the
// flags of starting one are left out of their arguments.
func TestWithoutServerFlags(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"--exports", "4", "--server-args", "--read-share 100", "--duration", "5s"}, []string{"--exports", "4", "--duration", "5s"}},
		{[]string{"--server-args=--read-share 100", "--keep", "--db", "postgres://x", "--data=/tmp/d", "--stored", "10"}, []string{"--stored", "10"}},
		{[]string{"-db", "postgres://x", "--query-clients=20"}, []string{"--query-clients=20"}},
	} {
		if got := withoutServerFlags(c.in); !slices.Equal(got, c.want) {
			t.Errorf("withoutServerFlags(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// A server started with read settings takes them, and shows how busy
// ingest keeps it and how many reads wait in its metrics.
func TestServeReadScheduling(t *testing.T) {
	s := startServer(t, t.TempDir(), nil, "--read-share", "20", "--read-busy-threshold", "70", "--read-max-wait", "2s")
	status, body := s.do("GET", "/metrics", "", "")
	if status != 200 {
		t.Fatalf("metrics: %d", status)
	}
	for _, name := range []string{"veritrail_ingest_busy_ratio", "veritrail_reads_waiting 0"} {
		if !strings.Contains(string(body), name) {
			t.Errorf("the metrics lack %q", name)
		}
	}
}
