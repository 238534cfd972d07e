package main

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/veritrail/veritrail/postgres/pgtest"
)

// TestBenchScenarios runs `veritrail bench` once in each scenario its flags
// set up (briefly: a check that each works and reports, not a
// measurement): one event per request, a target rate, sinks on (webhook
// and Kafka), a store filled first, and two nodes on one PostgreSQL
// loading two organizations.
func TestBenchScenarios(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "veritrail"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	acked := regexp.MustCompile(`acknowledged\s+(\d+) events`)
	short := []string{"bench", "--duration", "500ms", "--warmup", "200ms", "--concurrency", "4"}
	for _, c := range []struct {
		name string
		args []string
		want []string // lines of the report
	}{
		{"one event per request", []string{"--batch", "1"}, []string{"4 senders × 1 events/request", "setup         SQLite, 1 node(s), 1 organization(s), 0 events stored before, sinks: none",
			"CPU           (node 1) ", "CPU           (load generator) "}},
		{"rate", []string{"--batch", "10", "--rate", "400"}, []string{"rate=400/s"}},
		{"sinks", []string{"--batch", "20", "--sinks", "webhook,kafka:" + kc.ListenAddrs()[0]}, []string{
			"sinks: webhook,kafka:", "sink webhook  active;", "sink kafka    active;", "all delivered"}},
		{"stored events", []string{"--batch", "20", "--stored", "2500"}, []string{"2500 events stored before"}},
		{"stored events in a kept directory, again", []string{"--batch", "20", "--stored", "1500", "--data", "DIR"}, []string{
			"1500 events stored before", "server RSS    (node 1) at most"}},
		{"postgres, two nodes, two organizations", []string{"--batch", "20", "--nodes", "2", "--orgs", "2"}, []string{
			"setup         PostgreSQL, 2 node(s), 2 organization(s)", "group commit  (node 1)", "group commit  (node 2)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append(append([]string(nil), short...), c.args...)
			if i := slices.Index(args, "DIR"); i >= 0 {
				args[i] = filepath.Join(t.TempDir(), "data")
				cli(t, args...) // builds the store the run below reuses
			}
			if strings.HasPrefix(c.name, "postgres") {
				args = append(args, "--db", pgtest.New(t))
			}
			out, _ := cli(t, args...)
			m := acked.FindStringSubmatch(out)
			if m == nil || m[1] == "0" {
				t.Fatalf("no event acknowledged:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("the report has no %q:\n%s", w, out)
				}
			}
		})
	}
}
