package http_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

type listed struct {
	Data []struct {
		ID        string              `json:"id"`
		Type      string              `json:"type"`
		SessionID string              `json:"session_id"`
		Connector string              `json:"connector"`
		Tool      string              `json:"tool"`
		Actor     veritrail.Actor     `json:"actor"`
		Decision  *veritrail.Decision `json:"decision"`
		Content   map[string]any      `json:"content"`
	} `json:"data"`
}

func (e *env) list(t *testing.T, query string) listed {
	t.Helper()
	r := e.do("GET", "/api/v1/events?"+query, e.owner, nil)
	if r.status != 200 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	var l listed
	json.Unmarshal(r.body, &l)
	return l
}

// TestOTLPExporter points the OpenTelemetry Go SDK's own OTLP/HTTP log
// exporter (protobuf, gzip) at the server.
func TestOTLPExporter(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	ingest := e.token(e.org, veritrail.RoleIngest, nil, nil)

	var mu sync.Mutex
	var otelErrs []string
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		otelErrs = append(otelErrs, err.Error())
		mu.Unlock()
	}))
	ctx := context.Background()
	exp, err := otlploghttp.New(ctx,
		otlploghttp.WithEndpointURL(e.srv.URL+"/v1/logs"),
		otlploghttp.WithHeaders(map[string]string{"Authorization": "Bearer " + ingest}),
		otlploghttp.WithCompression(otlploghttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	provider := sdklog.NewLoggerProvider(
		sdklog.WithProcessor(sdklog.NewSimpleProcessor(exp)),
		sdklog.WithResource(resource.NewSchemaless(attribute.String("service.name", "copilot"))))
	logger := provider.Logger("github.com/example/copilot")

	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	var chat otellog.Record
	chat.SetEventName("gen_ai.client.inference.operation.details")
	chat.SetTimestamp(at)
	chat.SetSeverity(otellog.SeverityInfo)
	chat.AddAttributes(
		attribute.String("gen_ai.operation.name", "chat"),
		attribute.String("gen_ai.provider.name", "openai"),
		attribute.String("gen_ai.request.model", "gpt-4.1"),
		attribute.String("gen_ai.conversation.id", "conv-42"),
		attribute.String("user.email", "sam@example.com"),
		attribute.Int("gen_ai.usage.input_tokens", 12),
		attribute.Int("gen_ai.usage.output_tokens", 8),
		attribute.String("gen_ai.input.messages", `[{"role":"user","parts":[{"type":"text","content":"Summarise the Q4 risks"}]}]`),
		attribute.Slice("gen_ai.output.messages", attribute.MapValue(
			attribute.String("role", "assistant"),
			attribute.Slice("parts", attribute.MapValue(attribute.String("type", "text"), attribute.String("content", "Vendor migration slips."))))),
	)
	logger.Emit(ctx, chat)
	var plain otellog.Record
	plain.SetTimestamp(at)
	plain.SetBody(attribute.StringValue("cache warmed"))
	logger.Emit(ctx, plain)
	if err := provider.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	l := e.list(t, "type=ai.*")
	if len(l.Data) != 1 {
		t.Fatalf("stored %d AI events", len(l.Data))
	}
	ev := l.Data[0]
	if ev.Type != "ai.interaction" || ev.Actor.Email != "sam@example.com" || ev.SessionID != "conv-42" || ev.Connector != "openai" {
		t.Fatalf("event: %+v", ev)
	}
	prompt, _ := json.Marshal(ev.Content["prompt"])
	response, _ := json.Marshal(ev.Content["response"])
	if !strings.Contains(string(prompt), "Summarise the Q4 risks") || !strings.Contains(string(response), "Vendor migration slips.") ||
		ev.Content["model"] != "gpt-4.1" {
		t.Fatalf("content: %v", ev.Content)
	}
	// The plain log record was answered as not recorded (partial_success),
	// which the exporter reports.
	mu.Lock()
	defer mu.Unlock()
	if len(otelErrs) != 1 || !strings.Contains(otelErrs[0], "1 log records rejected") && !strings.Contains(otelErrs[0], "not recorded") {
		t.Fatalf("exporter saw: %v", otelErrs)
	}
}

type partialSuccess struct {
	RejectedLogRecords string `json:"rejectedLogRecords"`
	RejectedSpans      string `json:"rejectedSpans"`
	ErrorMessage       string `json:"errorMessage"`
}

// partial reads the partial_success of an OTLP JSON answer.
func partial(t *testing.T, r response) partialSuccess {
	t.Helper()
	var resp struct {
		PartialSuccess partialSuccess `json:"partialSuccess"`
	}
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatalf("not an OTLP JSON answer: %s", r.body)
	}
	return resp.PartialSuccess
}

func TestOTLPJSONAndTraces(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	logs, _ := os.ReadFile("../otlp/testdata/genai-logs.json")
	traces, _ := os.ReadFile("../otlp/testdata/genai-traces.json")

	r := e.do("POST", "/v1/logs", e.owner, bytes.NewReader(logs), "Content-Type", "application/json")
	if ps := partial(t, r); r.status != 200 || r.header.Get("Content-Type") != "application/json" ||
		ps.RejectedLogRecords != "1" || !strings.HasPrefix(ps.ErrorMessage, "records without gen_ai.*") {
		t.Fatalf("logs: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	// An exporter's retry stores nothing new.
	if r := e.do("POST", "/v1/logs", e.owner, bytes.NewReader(logs), "Content-Type", "application/json"); r.status != 200 {
		t.Fatal(r.status)
	}
	if l := e.list(t, "type=ai.*"); len(l.Data) != 2 {
		t.Fatalf("after a resend: %d AI events", len(l.Data))
	}
	r = e.do("POST", "/v1/traces", e.owner, bytes.NewReader(traces), "Content-Type", "application/json")
	if r.status != 200 || partial(t, r).RejectedSpans != "2" {
		t.Fatalf("traces: %d %s", r.status, r.body)
	}
	calls := e.list(t, "type=agent.tool_call&order=asc")
	if len(calls.Data) != 2 || calls.Data[0].Tool != "search_flights" || calls.Data[1].Tool != "book_flight" {
		t.Fatalf("tool calls: %+v", calls.Data)
	}
	if l := e.list(t, "decision=blocked"); len(l.Data) != 1 || l.Data[0].Type != "ai.guardrail" {
		t.Fatalf("guardrail decision: %+v", l.Data)
	}
}

func TestOTLPErrors(t *testing.T) {
	lim := veritrail.DefaultLimits
	lim.MaxBodyBytes = 4096
	e := newEnv(t, lim)
	auditor := e.token(e.org, veritrail.RoleAuditor, nil, nil)

	status := func(r response) *spb.Status {
		t.Helper()
		var st spb.Status
		if r.header.Get("Content-Type") == "application/x-protobuf" {
			if err := proto.Unmarshal(r.body, &st); err != nil {
				t.Fatalf("not a protobuf Status: %q", r.body)
			}
			return &st
		}
		var m struct {
			Code    int32  `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(r.body, &m); err != nil {
			t.Fatalf("not a JSON Status: %s", r.body)
		}
		return &spb.Status{Code: m.Code, Message: m.Message}
	}
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"` + strings.Repeat("x", 8000) + `"}}]}]}]}`))
	zw.Close()
	for _, tc := range []struct {
		name, path, token, ctype, body string
		hdr                            []string
		status                         int
		code                           int32
		msg                            string
	}{
		{"malformed JSON", "/v1/logs", e.owner, "application/json", `{"resourceLogs": [`, nil, 400, 3, "malformed JSON"},
		{"bad trace id", "/v1/traces", e.owner, "application/json", `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}`, nil, 400, 3, "traceId"},
		{"malformed protobuf", "/v1/logs", e.owner, "application/x-protobuf", "\xff\xff\xff", nil, 400, 3, "malformed protobuf"},
		{"corrupt gzip", "/v1/logs", e.owner, "application/json", "not gzip", []string{"Content-Encoding", "gzip"}, 400, 3, "gzip"},
		{"content type", "/v1/logs", e.owner, "text/plain", "{}", nil, 415, 3, "Content-Type"},
		{"content encoding", "/v1/logs", e.owner, "application/json", "{}", []string{"Content-Encoding", "br"}, 415, 3, "Content-Encoding"},
		{"too large after gunzip", "/v1/logs", e.owner, "application/json", zipped.String(), []string{"Content-Encoding", "gzip"}, 413, 3, "after decompression"},
		{"no token", "/v1/logs", "", "application/json", "{}", nil, 401, 16, "token"},
		{"no write scope", "/v1/logs", auditor, "application/json", "{}", nil, 403, 7, "events:write"},
	} {
		hdr := append([]string{"Content-Type", tc.ctype}, tc.hdr...)
		r := e.do("POST", tc.path, tc.token, strings.NewReader(tc.body), hdr...)
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.status, tc.status, r.body)
			continue
		}
		if st := status(r); st.Code != tc.code || !strings.Contains(st.Message, tc.msg) {
			t.Errorf("%s: status body %v, want code %d and %q", tc.name, st, tc.code, tc.msg)
		}
	}
	// An empty request is fine (OTLP exporters send them).
	if r := e.do("POST", "/v1/traces", e.owner, strings.NewReader(`{}`), "Content-Type", "application/json"); r.status != 200 || strings.TrimSpace(string(r.body)) != "{}" {
		t.Errorf("empty request: %d %s", r.status, r.body)
	}
}

func TestOTLPRespectsSettings(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	logs, _ := os.ReadFile("../otlp/testdata/genai-logs.json")
	traces, _ := os.ReadFile("../otlp/testdata/genai-traces.json")
	// AI interaction logs off: the AI records are answered as not
	// recorded, the agent tool calls are kept (another category), and DLP
	// masks the card number in a tool's arguments.
	body := `{"ai_interaction_logs_enabled":false,"retention":[{"category":"*","content_days":90,"metadata_days":730}],"dlp":{"mode":"redact","detectors":["card_number"]}}`
	if r := e.do("PUT", "/api/v1/settings", e.owner, strings.NewReader(body)); r.status != 200 {
		t.Fatalf("settings: %d %s", r.status, r.body)
	}
	r := e.do("POST", "/v1/logs", e.owner, bytes.NewReader(logs), "Content-Type", "application/json")
	if ps := partial(t, r); r.status != 200 || ps.RejectedLogRecords != "3" || !strings.Contains(ps.ErrorMessage, "AI interaction logs are turned off") {
		t.Fatalf("logs with AI off: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/traces", e.owner, bytes.NewReader(traces), "Content-Type", "application/json"); r.status != 200 || partial(t, r).RejectedSpans != "3" {
		t.Fatalf("traces with AI off: %d %s", r.status, r.body)
	}
	if l := e.list(t, "type=ai.*"); len(l.Data) != 0 {
		t.Fatalf("AI events stored while off: %d", len(l.Data))
	}
	l := e.list(t, "type=agent.tool_call&tool=book_flight")
	if len(l.Data) != 1 || l.Data[0].Decision == nil || l.Data[0].Decision.Action != "redacted" {
		t.Fatalf("tool call: %+v", l.Data)
	}
	if args, _ := json.Marshal(l.Data[0].Content["arguments"]); strings.Contains(string(args), "4111") {
		t.Fatalf("card number stored: %s", args)
	}
}
