package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/demo"
	"github.com/veritrail/veritrail/sqlite"
	"github.com/veritrail/veritrail/storetest"
)

func benchEvents(b *testing.B, n int, prefix string, rnd *rand.Rand, start time.Time) []*veritrail.Event {
	var body bytes.Buffer
	for i := range n {
		body.Write(demo.Event(nil, rnd, fmt.Sprintf("%s%d", prefix, i), start.Add(time.Duration(i)*time.Millisecond)))
		body.WriteByte('\n')
	}
	dec := veritrail.NewDecoder(&body, veritrail.Limits{MaxEventBytes: 1 << 20, MaxBatchEvents: n + 1, MaxBodyBytes: 1 << 40, MaxFuture: time.Hour}, time.Now())
	evs := make([]*veritrail.Event, 0, n)
	for {
		e, err := dec.Next()
		if errors.Is(err, io.EOF) {
			return evs
		}
		if err != nil {
			b.Fatal(err)
		}
		e.Prepare()
		evs = append(evs, e)
	}
}

// BenchmarkAppend measures the durable commit path (one fsync per Append)
// for batches of seed-shaped events with client ids.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 100, 2000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx := context.Background()
			s, org := openBench(b)
			rnd := rand.New(rand.NewPCG(1, 2))
			start := time.Now().Add(-time.Hour)
			n := 0
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				evs := benchEvents(b, batch, fmt.Sprintf("b%d-", i), rnd, start)
				b.StartTimer()
				if _, err := s.Append(ctx, org.ID, evs); err != nil {
					b.Fatal(err)
				}
				n += batch
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkQuery measures first pages (100 events) over 200,000 stored
// events, per filter.
func BenchmarkQuery(b *testing.B) {
	ctx := context.Background()
	s, org := openBench(b)
	rnd := rand.New(rand.NewPCG(1, 2))
	start := time.Now().Add(-48 * time.Hour)
	var sample *veritrail.Event
	for i := 0; i < 200000; i += 5000 {
		evs := benchEvents(b, 5000, fmt.Sprintf("q%d-", i), rnd, start.Add(time.Duration(i)*time.Millisecond))
		if _, err := s.Append(ctx, org.ID, evs); err != nil {
			b.Fatal(err)
		}
		for _, e := range evs {
			if e.AgentID != "" && e.Connector != "" && e.Context != nil && e.Context.IP != "" {
				sample = e
			}
		}
	}
	if err := s.SyncFullText(ctx); err != nil {
		b.Fatal(err)
	}
	filter := func(f veritrail.Field, v string) []veritrail.Filter {
		kr, err := veritrail.ParseFilterValue(f, v)
		if err != nil {
			b.Fatal(err)
		}
		return []veritrail.Filter{{Field: f, Ranges: []veritrail.KeyRange{kr}}}
	}
	for _, tc := range []struct {
		name string
		q    veritrail.Query
	}{
		{"all", veritrail.Query{}},
		{"type", veritrail.Query{Filters: filter(veritrail.FieldType, sample.Type)}},
		{"type_prefix", veritrail.Query{Filters: filter(veritrail.FieldType, veritrail.Category(sample.Type)+".*")}},
		{"actor_id", veritrail.Query{Filters: filter(veritrail.FieldActorID, sample.Actor.ID)}},
		{"agent_id", veritrail.Query{Filters: filter(veritrail.FieldAgentID, sample.AgentID)}},
		{"connector", veritrail.Query{Filters: filter(veritrail.FieldConnector, sample.Connector)}},
		{"outcome", veritrail.Query{Filters: filter(veritrail.FieldOutcome, "failure")}},
		{"ip_cidr", veritrail.Query{Filters: filter(veritrail.FieldIP, sample.Context.IP+"/24")}},
		{"text", veritrail.Query{Text: "export", TextInContent: true}},
		{"seq_poll", veritrail.Query{Order: veritrail.OrderSeq}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			q := tc.q
			q.Limit = 100
			for b.Loop() {
				if _, err := s.Query(ctx, org.ID, &q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendConcurrent is the commit path of one-event requests:
// 256 goroutines each append one event at a time (as 256 HTTP senders of
// --batch 1 do, without HTTP), so each commit holds many small requests.
// It reports the bytes the process wrote (WAL and full-text index) per
// event, from /proc/self/io, and the process's CPU per event (commit,
// full-text indexer, checkpoints and the senders themselves).
func BenchmarkAppendConcurrent(b *testing.B) {
	ctx := context.Background()
	s, org := openBench(b)
	const senders = 256
	rnd := rand.New(rand.NewPCG(1, 2))
	evs := benchEvents(b, b.N, "c-", rnd, time.Now().Add(-time.Hour))
	w0 := writtenBytes()
	c0 := processCPU()
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(evs)) {
					return
				}
				if _, err := s.Append(ctx, org.ID, evs[i:i+1]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-c0).Microseconds())/float64(b.N), "cpu-µs/event")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if w0 >= 0 {
		b.ReportMetric(float64(writtenBytes()-w0)/float64(b.N), "written-B/event")
	}
}

// writtenBytes is what this process has passed to write calls so far
// (wchar of /proc/self/io), or -1 where there is no such file.
func writtenBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

// openBench opens a store for one benchmark, with one organization; the
// store is closed when the benchmark ends.
func openBench(b *testing.B) (*sqlite.Store, *veritrail.Org) {
	s, err := sqlite.Open(context.Background(), b.TempDir(), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	org, err := s.CreateOrg(context.Background(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	return s, org
}

// BenchmarkStats measures the stats endpoint's store call (storetest's
// BenchStats) over VERITRAIL_BENCH_EVENTS events (200,000 by default). The
// store is built once and kept in the benchmark cache (BenchFixture), so
// that a second run at 10M events measures at once; it is opened read-only.
func BenchmarkStats(b *testing.B) {
	ctx := context.Background()
	dir := storetest.BenchFixture(b, "", "sqlite", []string{".", "..", "../demo", "../internal/commitq", "../tlog", "../storetest"}, func(dir string) error {
		s, err := sqlite.Open(ctx, dir, sqlite.Options{})
		if err != nil {
			return err
		}
		if err := storetest.LoadBenchStats(ctx, s); err != nil {
			s.Close()
			return err
		}
		if err := s.SyncFullText(ctx); err != nil {
			s.Close()
			return err
		}
		return s.Close()
	})
	s, err := sqlite.Open(ctx, dir, sqlite.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchStats(b, s)
}
