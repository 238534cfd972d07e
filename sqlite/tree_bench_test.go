package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/demo"
)

// BenchmarkTreeCost measures group commits of 2,000 seed-shaped events with
// the Merkle tree (leaf hashes, compact range, tiles, log head) and without.
func BenchmarkTreeCost(b *testing.B) {
	for _, tree := range []bool{true, false} {
		b.Run(fmt.Sprintf("tree=%v", tree), func(b *testing.B) {
			benchmarkWithoutTree = !tree
			defer func() { benchmarkWithoutTree = false }()
			ctx := context.Background()
			s, err := Open(ctx, b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			org, _ := s.CreateOrg(ctx, "bench")
			rnd := rand.New(rand.NewPCG(1, 2))
			n := 0
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				var body bytes.Buffer
				for j := range 2000 {
					body.Write(demo.Event(nil, rnd, fmt.Sprintf("t%d-%d", i, j), time.Now().Add(-time.Minute)))
					body.WriteByte('\n')
				}
				dec := veritrail.NewDecoder(&body, veritrail.DefaultLimits, time.Now())
				var evs []*veritrail.Event
				for {
					e, err := dec.Next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					e.Prepare()
					evs = append(evs, e)
				}
				b.StartTimer()
				if _, err := s.Append(ctx, org.ID, evs); err != nil {
					b.Fatal(err)
				}
				n += len(evs)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
