package sink

import (
	"fmt"
	"testing"
)

// BenchmarkFreshRecord measures what a sink that keeps up pays per event
// it forwards from the feed: the record made from the committed event
// (its envelope built, the format written), once per format, as the first
// sink of an organization to forward it does.
//
//	go test ./sink -run XXX -bench FreshRecord -benchmem
func BenchmarkFreshRecord(b *testing.B) {
	evs := feedEvents(b, 0, 1000)
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
