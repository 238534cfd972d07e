package dlp

import "testing"

// A seed-shaped AI interaction's content (~600 bytes).
var benchClean = []byte(`{"feature":"ai_generate_sticky_notes","model":"gpt-4.1","prompt":"Generate me 1 sticker summarising the Q4 risks for the payments team, with owners and dates","response":"Top Q4 risk: vendor migration slips past the change freeze on 2026-12-15; owner: platform team. Second: settlement retries double-charge under load.","system_context":{"board_context":{"selected_items":3,"board":"uXjVK-board-42","frames":["Q4 planning","Risks"]}},"attachments":[{"mime":"image/png","sha256":"9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab","bytes":48213}]}`)

var benchSecret = []byte(`{"feature":"chat","prompt":"why does key AKIAIOSFODNN7EXAMPLE fail for dana@example.com? card 4111 1111 1111 1111","response":"The key may be inactive.","system_context":{"board_context":{"selected_items":3}}}`)

// BenchmarkRedactJSON is the cost per event of ingest DLP (redact mode).
func BenchmarkRedactJSON(b *testing.B) {
	set := NewSet()
	for _, c := range []struct {
		name string
		doc  []byte
	}{{"clean", benchClean}, {"findings", benchSecret}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.doc)))
			for range b.N {
				if _, _, err := set.RedactJSON(c.doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
