package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/veritrail/veritrail"
)

// Appender is the part of a store Load needs.
type Appender interface {
	Append(ctx context.Context, orgID int64, events []*veritrail.Event) ([]veritrail.AppendResult, error)
}

// Load appends n seed-shaped events (see Event) straight to a store, in
// batches of 5,000: ids prefix+index, times first, first+step, … It is for
// benchmarks that need a large log quickly; progress, when set, is called
// after each batch with the number appended so far.
func Load(ctx context.Context, s Appender, org int64, n int, prefix string, first time.Time, step time.Duration, seed uint64, progress func(int)) error {
	rnd := rand.New(rand.NewPCG(seed, seed+1))
	lim := veritrail.Limits{MaxEventBytes: 1 << 20, MaxBatchEvents: 10000, MaxBodyBytes: 1 << 30, MaxFuture: 100 * 365 * 24 * time.Hour}
	var body bytes.Buffer
	var line []byte
	for i := 0; i < n; i += 5000 {
		body.Reset()
		for j := i; j < min(n, i+5000); j++ {
			line = Event(line[:0], rnd, prefix+strconv.Itoa(j), first.Add(time.Duration(j)*step))
			body.Write(line)
			body.WriteByte('\n')
		}
		dec := veritrail.NewDecoder(&body, lim, time.Now())
		evs := make([]*veritrail.Event, 0, 5000)
		for {
			e, err := dec.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("demo event: %w", err)
			}
			e.Prepare()
			evs = append(evs, e)
		}
		if _, err := s.Append(ctx, org, evs); err != nil {
			return err
		}
		if progress != nil {
			progress(min(n, i+5000))
		}
	}
	return nil
}
