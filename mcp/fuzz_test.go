package mcp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	veritrail "github.com/veritrail/veritrail"
)

var fuzzPolicy, _ = ParsePolicy([]byte(`{"rules":[{"tool":"get-env","action":"block"},{"detect":["*"],"action":"redact"}]}`))

// FuzzMessages feeds arbitrary client and server messages through the
// gateway: no panic; what is forwarded is what came in unless a mask
// applied (then it is valid JSON); every record is a valid event.
func FuzzMessages(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"AKIAIOSFODNN7EXAMPLE"}}}`,
		`{"jsonrpc":"2.0","id":"x","method":"resources/read","params":{"uri":"file:///a","_meta":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get-env"}}`,
		`[{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"p"}}]`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"clientInfo":{"name":"c","version":"1"}}}`,
	} {
		f.Add([]byte(s), []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"image","data":"aGk=","mimeType":"image/png"},{"type":"text","text":"x@example.com"}]}}`))
	}
	f.Fuzz(func(t *testing.T, fromClient, fromServer []byte) {
		rec := &memRecorder{}
		g := NewGateway(Config{Policy: fuzzPolicy, Recorder: rec})
		s := NewSession("s", veritrail.Actor{Type: "user", ID: "u"})
		fwd, reply := g.FromClient(s, fromClient)
		if fwd != nil && !bytes.Equal(fwd, bytes.TrimSpace(fromClient)) && !json.Valid(fwd) {
			t.Fatalf("rewrote into invalid JSON: %q", fwd)
		}
		if reply != nil && !json.Valid(reply) {
			t.Fatalf("invalid reply: %q", reply)
		}
		out := g.FromServer(s, fromServer, 0)
		if !bytes.Equal(out, fromServer) && !json.Valid(out) {
			t.Fatalf("rewrote the answer into invalid JSON: %q", out)
		}
		g.End(s, "fuzz")
		for _, e := range rec.all() {
			b, err := veritrail.MarshalInput(e)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := veritrail.NewDecoder(bytes.NewReader(b), veritrail.DefaultLimits, e.Time).Next(); err != nil {
				t.Fatalf("record does not validate: %v\n%s", err, b)
			}
		}
	})
}

// FuzzSSE passes arbitrary event streams through the SSE rewriter: no
// panic, and a stream without answers to pending calls passes unchanged.
func FuzzSSE(f *testing.F) {
	f.Add("event: message\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n: comment\r\ndata: x\r\n\r\n")
	f.Add("data: {\"jsonrpc\":\"2.0\",\n data: \"id\":1}\n\n")
	f.Fuzz(func(t *testing.T, stream string) {
		rec := &memRecorder{}
		g := NewGateway(Config{Recorder: rec})
		p := &HTTPProxy{g: g, log: g.log}
		s := NewSession("", veritrail.Actor{Type: "user", ID: "u"})
		r := &sseRewriter{src: bufio.NewReader(strings.NewReader(stream)), closer: io.NopCloser(nil), p: p, x: &exchange{sess: s}, status: 200}
		out, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != stream {
			t.Fatalf("changed a stream with no pending call:\n%q\n%q", stream, out)
		}
	})
}

func FuzzPolicy(f *testing.F) {
	f.Add([]byte(`{"name":"p","default":"block","rules":[{"connector":"gh*","tool":"?x","actor":"*@x","match":"a+","detect":["email"],"action":"redact","reason":"r"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b)
		if err != nil {
			return
		}
		v := p.Evaluate(&Call{Connector: "github", Tool: "ax", Method: MethodToolsCall, Actor: veritrail.Actor{Email: "a@x"}, Arguments: map[string]any{"k": "aaa b@example.com"}})
		if v.Action != veritrail.DecisionAllowed && v.Action != veritrail.DecisionBlocked {
			t.Fatalf("verdict %+v", v)
		}
	})
}
