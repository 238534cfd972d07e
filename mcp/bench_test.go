package mcp

import (
	"fmt"
	"testing"

	veritrail "github.com/veritrail/veritrail"
)

// BenchmarkGatewayCall is the gateway's own work per tool call, without
// the transports: inspect the request, evaluate the policy, inspect the
// answer, build the record and append it to the spool (write + fsync).
//
//	go test ./mcp -run '^$' -bench GatewayCall
func BenchmarkGatewayCall(b *testing.B) {
	p, err := ParsePolicy([]byte(`{"rules":[{"tool":"get-env","action":"block"},{"detect":["aws_access_key_id","private_key"],"action":"redact"}]}`))
	if err != nil {
		b.Fatal(err)
	}
	spool, err := OpenSpool(SpoolConfig{Dir: b.TempDir(), Server: "http://127.0.0.1:1"}) // sender not running
	if err != nil {
		b.Fatal(err)
	}
	defer spool.Close()
	g := NewGateway(Config{Policy: p, Recorder: spool})
	s := NewSession("s", veritrail.Actor{Type: "user", ID: "u"})
	b.ReportAllocs()
	for i := range b.N {
		req := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"message":"benchmark payload of a typical size, a sentence or two of text"}}}`, i)
		if fwd, _ := g.FromClient(s, req); fwd == nil {
			b.Fatal("not forwarded")
		}
		resp := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":"Echo: benchmark payload of a typical size, a sentence or two of text"}]}}`, i)
		g.FromServer(s, resp, 0)
	}
}
