package sink

import (
	"fmt"
	"testing"

	veritrail "github.com/veritrail/veritrail"
)

// BenchmarkFreshRecord measures what a sink that keeps up pays per event
// it forwards from the feed: the record made from the committed event
// (its envelope built, the format written), once per format, as the first
// sink of an organization to forward it does; "kept": with the envelope
// the commit path kept (Commits.WantEnvelopes), as a serving node does.
//
//	go test ./sink -run XXX -bench FreshRecord -benchmem
func BenchmarkFreshRecord(b *testing.B) {
	evs := feedEvents(b, 0, 1000)
	withEnv := make([]*veritrail.Event, len(evs))
	for i, e := range evs {
		e.SealContent() // as committed
		c := *e
		c.KeepEnvelope(veritrail.AppendEnvelope(nil, &c))
		withEnv[i] = &c
	}
	for _, c := range []struct {
		format  string
		content bool
		kept    bool
	}{{FormatNative, false, false}, {FormatNative, false, true}, {FormatNative, true, false}, {FormatNative, true, true}, {FormatOCSF, true, false}, {FormatOCSF, true, true}} {
		evs := evs
		if c.kept {
			evs = withEnv
		}
		b.Run(fmt.Sprintf("%s-content=%v-kept=%v", c.format, c.content, c.kept), func(b *testing.B) {
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
