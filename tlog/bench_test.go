package tlog

import (
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

// BenchmarkTreeCost measures what the Merkle log adds to a group commit of
// 2,000 events, everything but the database: each envelope's leaf hash
// (SHA-256 over the leaf prefix and 600 bytes, about a seed event's
// envelope), the compact range, the tiles, and the root, compact range and
// changed tiles a store then writes. tile-bytes/event is what the store
// writes for the tree per event; compare ns/event with an engine's
// BenchmarkAppend (batch=2000) for the share of the commit path.
func BenchmarkTreeCost(b *testing.B) {
	const batch, envelopeSize = 2000, 600
	rnd := rand.New(rand.NewPCG(1, 2))
	envelopes := make([][]byte, batch)
	for i := range envelopes {
		env := make([]byte, 1+envelopeSize) // 0x00, the RFC 6962 leaf prefix, then the envelope
		for j := 1; j < len(env); j++ {
			env[j] = byte(' ' + rnd.IntN(95))
		}
		envelopes[i] = env
	}
	h := NewHead()
	tileBytes, events := 0, 0
	for b.Loop() {
		for _, env := range envelopes {
			leaf := sha256.Sum256(env)
			h.Append(leaf[:])
		}
		for _, t := range h.TakeDirty() {
			tileBytes += len(t.Hashes)
		}
		tileBytes += len(h.Root()) + len(h.CompactHashes())
		events += batch
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
	b.ReportMetric(float64(tileBytes)/float64(events), "tile-bytes/event")
}
