package main

import (
	"regexp"
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
