package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// BenchmarkAppendCPU is the CPU the store spends per event (the commit,
// the full-text indexer trailing it, the WAL checkpoints: everything in
// the process) by the number of events a commit holds, from getrusage:
// on a shared machine the rate swings with what else runs, the CPU per
// event much less. It says what a group commit of one-event requests
// costs per event at the sizes `veritrail bench --batch 1` reaches
// (about 100 per commit with 256 senders) and what larger commits would
// save. The events are built before the timer starts.
//
//	go test -run XXX -bench AppendCPU ./sqlite/
func BenchmarkAppendCPU(b *testing.B) {
	for _, batch := range []int{50, 100, 200, 400, 2000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx := context.Background()
			s, org := openBench(b)
			rnd := rand.New(rand.NewPCG(1, 2))
			start := time.Now().Add(-time.Hour)
			const perRound = 20000
			var sets [][]*veritrail.Event
			for i := 0; i*batch < perRound; i++ {
				sets = append(sets, benchEvents(b, batch, fmt.Sprintf("r%d-", i), rnd, start))
			}
			var cpu time.Duration
			n, round := 0, 0
			w0 := writtenBytes()
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				if round > 0 { // new ids for each round
					sets = sets[:0]
					for i := 0; i*batch < perRound; i++ {
						sets = append(sets, benchEvents(b, batch, fmt.Sprintf("r%d.%d-", round, i), rnd, start))
					}
				}
				c0 := processCPU()
				b.StartTimer()
				for _, evs := range sets {
					if _, err := s.Append(ctx, org.ID, evs); err != nil {
						b.Fatal(err)
					}
					n += len(evs)
				}
				b.StopTimer()
				cpu += processCPU() - c0
				round++
				b.StartTimer()
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/event")
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
			if w0 >= 0 {
				b.ReportMetric(float64(writtenBytes()-w0)/float64(n), "written-B/event")
			}
		})
	}
}

// processCPU is the CPU time (user and system) this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
