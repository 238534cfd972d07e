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
// benchmarks that need a large log quickly: the next batch is generated
// and decoded on a goroutine of its own while the store commits one (the
// events are the same as generated in line). progress, when set, is
// called after each batch with the number appended so far.
func Load(ctx context.Context, s Appender, org int64, n int, prefix string, first time.Time, step time.Duration, seed uint64, progress func(int)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type batch struct {
		evs []*veritrail.Event
		err error
	}
	batches := make(chan batch, 1)
	go func() {
		defer close(batches)
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
			b := batch{evs: make([]*veritrail.Event, 0, 5000)}
			for {
				e, err := dec.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.err = fmt.Errorf("demo event: %w", err)
					break
				}
				e.Prepare()
				b.evs = append(b.evs, e)
			}
			select {
			case batches <- b:
			case <-ctx.Done():
				return
			}
			if b.err != nil {
				return
			}
		}
	}()
	done := 0
	for b := range batches {
		if b.err != nil {
			return b.err
		}
		if _, err := s.Append(ctx, org, b.evs); err != nil {
			return err
		}
		done += len(b.evs)
		if progress != nil {
			progress(done)
		}
	}
	return ctx.Err()
}
