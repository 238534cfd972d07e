package sink

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/demo"
)

// BenchmarkFreshRecord measures what a sink that keeps up pays per event
// it forwards from the feed: the record made from the committed event
// (its envelope built, the format written), once per format, as the first
// sink of an organization to forward it does.
//
//	go test ./sink -run XXX -bench FreshRecord -benchmem
func BenchmarkFreshRecord(b *testing.B) {
	var buf bytes.Buffer
	rnd := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC()
	for j := range 1000 {
		buf.Write(demo.Event(nil, rnd, fmt.Sprintf("ev-%07d", j), now.Add(time.Duration(j)*time.Millisecond)))
		buf.WriteByte('\n')
	}
	dec := veritrail.NewDecoder(&buf, veritrail.DefaultLimits, now)
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
		e.Seq, e.ReceivedAt = int64(len(evs)), now
		evs = append(evs, e)
	}
	for _, c := range []struct {
		format  string
		content bool
	}{{FormatNative, false}, {FormatNative, true}, {FormatOCSF, true}} {
		b.Run(fmt.Sprintf("%s-content=%v", c.format, c.content), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				f := &fresh{ev: evs[i%len(evs)]}
				if _, err := f.record(c.format, "acme", c.content); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
