package otlp

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var update = flag.Bool("update", false, "rewrite the golden files (testdata/*.golden.ndjson, *.binpb)")

var testOpts = Options{
	Now:      time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC),
	Limits:   veritrail.DefaultLimits,
	Fallback: veritrail.Actor{Type: veritrail.ActorAPIKey, ID: "tok_test"},
}

// render writes events as the ingest API takes them, one per line.
func render(t *testing.T, res *Result) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, e := range res.Events {
		line, err := veritrail.MarshalInput(e)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	b.WriteString("# skipped " + itoa(res.Skipped) + ", invalid " + itoa(res.Invalid) + ": " + res.Message() + "\n")
	return b.Bytes()
}

func itoa(n int) string { return strconv.Itoa(n) }

type (
	logsReq   = logspb.LogsData
	tracesReq = tracepb.TracesData
)

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./otlp -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test ./otlp -update to accept):\n got: %s\nwant: %s", name, got, want)
	}
}

// TestGolden maps the JSON and the protobuf encodings of the same requests
// and compares both with one golden file.
func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		decode func([]byte, string) (proto.Message, error)
		mapper func(proto.Message) *Result
	}{
		{"genai-logs", func(b []byte, enc string) (proto.Message, error) { return DecodeLogs(b, enc) },
			func(m proto.Message) *Result { return MapLogs(m.(*logsReq), testOpts) }},
		{"genai-traces", func(b []byte, enc string) (proto.Message, error) { return DecodeTraces(b, enc) },
			func(m proto.Message) *Result { return MapTraces(m.(*tracesReq), testOpts) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js, err := os.ReadFile(filepath.Join("testdata", tc.name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			fromJSON, err := tc.decode(js, JSON)
			if err != nil {
				t.Fatal(err)
			}
			pbPath := filepath.Join("testdata", tc.name+".binpb")
			if *update {
				b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(fromJSON)
				os.WriteFile(pbPath, b, 0o644)
			}
			pb, err := os.ReadFile(pbPath)
			if err != nil {
				t.Fatal(err)
			}
			fromPB, err := tc.decode(pb, Protobuf)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(fromJSON, fromPB) {
				t.Fatal("the JSON and protobuf encodings decode differently")
			}
			gotJSON, gotPB := render(t, tc.mapper(fromJSON)), render(t, tc.mapper(fromPB))
			if !bytes.Equal(gotJSON, gotPB) {
				t.Fatalf("JSON and protobuf map differently:\n%s\n%s", gotJSON, gotPB)
			}
			golden(t, tc.name+".golden.ndjson", gotJSON)
			// Mapping is deterministic: an exporter's resend gets the same ids.
			if again := render(t, tc.mapper(fromJSON)); !bytes.Equal(again, gotJSON) {
				t.Fatal("mapping is not deterministic")
			}
		})
	}
}

func TestMapping(t *testing.T) {
	js, _ := os.ReadFile("testdata/genai-logs.json")
	req, err := DecodeLogs(js, JSON)
	if err != nil {
		t.Fatal(err)
	}
	res := MapLogs(req, testOpts)
	if len(res.Events) != 2 || res.Skipped != 1 || !strings.Contains(res.Message(), "not recorded") {
		t.Fatalf("events %d skipped %d: %s", len(res.Events), res.Skipped, res.Message())
	}
	chat := res.Events[0]
	c := string(chat.Content)
	for _, want := range []string{
		`"prompt":[{"parts":[{"content":"What is on this screenshot?","type":"text"}`, // a JSON string, parsed
		`"response":[{"finish_reason":"stop","parts":[{"content":"A login form`,       // structured values
		`"system_context":[{"content":"You are a support assistant.","type":"text"}]`,
		`"usage":{"cache_read_input_tokens":64,"input_tokens":97,"output_tokens":52}`,
		`"attachments":[{"bytes":70,"mime":"image/png","path":"prompt[0].parts[1]","sha256":"`,
		`"attributes":{"app.feature":"screenshot_help"}`,
		`"trace":{"span_id":"eee19b7ec3c1b174","trace_id":"5b8efff798038103d269b633813fc60c"}`,
	} {
		if !strings.Contains(c, want) {
			t.Errorf("content lacks %s:\n%s", want, c)
		}
	}
	if strings.Contains(c, "iVBORw0KGgo") {
		t.Error("image bytes kept without KeepAttachmentBytes")
	}
	if chat.Type != "ai.interaction" || chat.Actor.Email != "sam@example.com" || chat.SessionID != "conv_5j66UpCpwteGg4YSxUnt7lPY" ||
		chat.Connector != "openai" || chat.Context.IP != "198.51.100.7" || !chat.Time.Equal(time.Unix(1793700300, 0)) {
		t.Fatalf("chat envelope: %+v", chat)
	}
	guard := res.Events[1]
	if guard.Type != "ai.guardrail" || guard.Decision == nil || guard.Decision.Action != "blocked" ||
		!strings.Contains(string(guard.Content), `"guardrail":{"component_name":"Amazon Bedrock Guardrails","policy_id":"gr-abc123","result_reason":"Prompt attack detected","result_type":"action","result_value":"GUARDRAIL_INTERVENED","source":"INPUT"}`) {
		t.Fatalf("guardrail: %+v %s", guard, guard.Content)
	}
	// With bytes kept.
	o := testOpts
	o.KeepAttachmentBytes = true
	if res := MapLogs(req, o); !strings.Contains(string(res.Events[0].Content), "iVBORw0KGgo") {
		t.Error("KeepAttachmentBytes dropped the image")
	}

	js, _ = os.ReadFile("testdata/genai-traces.json")
	treq, err := DecodeTraces(js, JSON)
	if err != nil {
		t.Fatal(err)
	}
	tres := MapTraces(treq, testOpts)
	if len(tres.Events) != 3 || tres.Skipped != 2 {
		t.Fatalf("spans: %d events, %d skipped", len(tres.Events), tres.Skipped)
	}
	agent, tool, mcpCall := tres.Events[0], tres.Events[1], tres.Events[2]
	if agent.ID != "otel-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7" || agent.Type != "ai.interaction" || agent.Actor.Type != "agent" ||
		agent.AgentID != "agt_travel_01" || *agent.DurationMS != 3250 {
		t.Fatalf("agent span: %+v", agent)
	}
	if tool.Type != "agent.tool_call" || tool.Tool != "book_flight" || tool.Outcome != "failure" ||
		!strings.Contains(string(tool.Content), `"arguments":{"card":"4111 1111 1111 1111","from":"SFO","to":"CDG"}`) ||
		!strings.Contains(string(tool.Content), `"status_message":"payment declined"`) {
		t.Fatalf("tool span: %+v %s", tool, tool.Content)
	}
	if mcpCall.Type != "agent.tool_call" || mcpCall.Tool != "search_flights" || mcpCall.Connector != "flights-mcp.internal" ||
		mcpCall.SessionID != "191c4850af6c49e08843a3f6c80e5046" || mcpCall.Actor.ID != "usr_5521" {
		t.Fatalf("mcp span: %+v", mcpCall)
	}
}

func TestMalformed(t *testing.T) {
	for _, tc := range []struct{ body, enc, want string }{
		{`{"resourceLogs": [`, JSON, "malformed JSON"},
		{`[]`, JSON, "must be a JSON object"},
		{`{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "xyz"}]}]}]}`, JSON, "traceId"},
		{`{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"spanId": "00f067aa"}]}]}]}`, JSON, "spanId"},
		{`{"resourceLogs": "no"}`, JSON, "malformed OTLP JSON"},
		{`{"resourceLogs": []} trailing`, JSON, "after the request object"},
		{"\xff\x01garbage", Protobuf, "malformed protobuf"},
	} {
		if _, err := DecodeLogs([]byte(tc.body), tc.enc); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.body, err, tc.want)
		}
	}
	// Unknown fields are ignored, as OTLP requires.
	if _, err := DecodeLogs([]byte(`{"resourceLogs": [], "futureField": 1}`), JSON); err != nil {
		t.Errorf("unknown field: %v", err)
	}
	if _, err := Encoding("text/plain"); err == nil {
		t.Error("text/plain accepted")
	}
	if enc, err := Encoding("application/json; charset=utf-8"); err != nil || enc != JSON {
		t.Error("JSON with charset refused")
	}
}

func fuzzSeeds(f *testing.F) {
	for _, n := range []string{"genai-logs", "genai-traces"} {
		if b, err := os.ReadFile("testdata/" + n + ".json"); err == nil {
			f.Add(b, false)
		}
		if b, err := os.ReadFile("testdata/" + n + ".binpb"); err == nil {
			f.Add(b, true)
		}
	}
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"","attributes":[{"key":"gen_ai.operation.name","value":{"intValue":"1"}}]}]}]}]}`), false)
	// spans of the three GenAI conventions (conventions_test.go)
	for _, tc := range conventionSpans {
		if b, err := proto.Marshal(conventionRequest(tc.attrs)); err == nil {
			f.Add(b, true)
		}
	}
}

// FuzzDecode feeds arbitrary bodies to both decoders and the mappers: no
// panic, and an exporter's resend maps to the same events (a record with
// an id derived from it would otherwise be refused as a conflict).
func FuzzDecode(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte, isProto bool) {
		enc := JSON
		if isProto {
			enc = Protobuf
		}
		check := func(first, again *Result) {
			if len(first.Events) != len(again.Events) {
				t.Fatalf("%d events, then %d", len(first.Events), len(again.Events))
			}
			for i, e := range first.Events {
				derived := strings.HasPrefix(e.ID, "otlp-") || strings.HasPrefix(e.ID, "otel-")
				if derived && !veritrail.SameSubmission(e, again.Events[i]) {
					t.Fatalf("event %d maps differently the second time", i)
				}
			}
		}
		if req, err := DecodeLogs(body, enc); err == nil {
			check(MapLogs(req, testOpts), MapLogs(req, testOpts))
		}
		if req, err := DecodeTraces(body, enc); err == nil {
			check(MapTraces(req, testOpts), MapTraces(req, testOpts))
		}
	})
}

// TestResponses checks the hand-written responses against the collector's
// generated messages.
func TestResponses(t *testing.T) {
	var lr collogs.ExportLogsServiceResponse
	if err := proto.Unmarshal(EncodeLogsResponse(Protobuf, 3, "why"), &lr); err != nil ||
		lr.GetPartialSuccess().GetRejectedLogRecords() != 3 || lr.GetPartialSuccess().GetErrorMessage() != "why" {
		t.Fatalf("logs response: %v %v", &lr, err)
	}
	var tr coltrace.ExportTraceServiceResponse
	if err := protojson.Unmarshal(EncodeTracesResponse(JSON, 2, "no"), &tr); err != nil ||
		tr.GetPartialSuccess().GetRejectedSpans() != 2 || tr.GetPartialSuccess().GetErrorMessage() != "no" {
		t.Fatalf("traces response: %v %v", &tr, err)
	}
	for _, enc := range []string{Protobuf, JSON} {
		var empty collogs.ExportLogsServiceResponse
		b := EncodeLogsResponse(enc, 0, "")
		var err error
		if enc == JSON {
			err = protojson.Unmarshal(b, &empty)
		} else {
			err = proto.Unmarshal(b, &empty)
		}
		if err != nil || empty.PartialSuccess != nil {
			t.Fatalf("%s empty response: %q %v", enc, b, err)
		}
	}
	// The requests decode as the collector's own messages would.
	js, _ := os.ReadFile("testdata/genai-traces.json")
	var want coltrace.ExportTraceServiceRequest
	fixed, _ := hexIDsToBase64(js)
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(fixed, &want); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeTraces(js, JSON)
	if err != nil {
		t.Fatal(err)
	}
	wb, _ := proto.MarshalOptions{Deterministic: true}.Marshal(&want)
	gb, _ := proto.MarshalOptions{Deterministic: true}.Marshal(got)
	if !bytes.Equal(wb, gb) {
		t.Fatal("TracesData and ExportTraceServiceRequest differ on the wire")
	}
}
