package otlp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/dlp"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// attr builds an OTLP attribute from a Go value (string, int, float64,
// bool, []string).
func attr(k string, v any) *commonpb.KeyValue {
	var av *commonpb.AnyValue
	switch x := v.(type) {
	case string:
		av = &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: x}}
	case int:
		av = &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: int64(x)}}
	case float64:
		av = &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: x}}
	case bool:
		av = &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: x}}
	case []string:
		var vs []*commonpb.AnyValue
		for _, s := range x {
			vs = append(vs, &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}})
		}
		av = &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: vs}}}
	default:
		panic(fmt.Sprintf("attr %s: %T", k, v))
	}
	return &commonpb.KeyValue{Key: k, Value: av}
}

// conventionSpans are spans as each convention's instrumentations write
// them (attribute names from the conventions' specifications).
var conventionSpans = []struct {
	name  string
	attrs [][2]any
	// what the event must say
	typ, tool, connector, session, actorID string
	content                                map[string]any // members of content, compared as JSON
}{
	{
		name: "opentelemetry chat",
		attrs: [][2]any{
			{"gen_ai.operation.name", "chat"}, {"gen_ai.provider.name", "openai"}, {"gen_ai.request.model", "gpt-4.1"},
			{"gen_ai.response.model", "gpt-4.1-2025-04-14"}, {"gen_ai.conversation.id", "conv-1"}, {"user.id", "u-7"},
			{"gen_ai.input.messages", `[{"role":"user","parts":[{"type":"text","content":"Weather in Paris?"}]}]`},
			{"gen_ai.output.messages", `[{"role":"assistant","parts":[{"type":"tool_call","id":"call_1","name":"get_weather","arguments":{"city":"Paris"}}],"finish_reason":"tool_call"}]`},
			{"gen_ai.system_instructions", `[{"type":"text","content":"Be brief."}]`},
			{"gen_ai.tool.definitions", `[{"type":"function","name":"get_weather"}]`},
			{"gen_ai.usage.input_tokens", 31}, {"gen_ai.usage.output_tokens", 9}, {"gen_ai.request.temperature", 0.2},
			{"gen_ai.response.finish_reasons", []string{"tool_call"}}, {"gen_ai.response.id", "chatcmpl-1"}, {"server.address", "api.openai.com"},
		},
		typ: "ai.interaction", connector: "openai", session: "conv-1", actorID: "u-7",
		content: map[string]any{"model": "gpt-4.1", "response_model": "gpt-4.1-2025-04-14", "operation": "chat",
			"prompt":         []any{map[string]any{"role": "user", "parts": []any{map[string]any{"type": "text", "content": "Weather in Paris?"}}}},
			"system_context": []any{map[string]any{"type": "text", "content": "Be brief."}},
			"usage":          map[string]any{"input_tokens": 31, "output_tokens": 9}, "finish_reasons": []any{"tool_call"}},
	},
	{
		name: "opentelemetry execute_tool",
		attrs: [][2]any{
			{"gen_ai.operation.name", "execute_tool"}, {"gen_ai.tool.name", "get_weather"}, {"gen_ai.tool.call.id", "call_1"},
			{"gen_ai.tool.type", "function"}, {"gen_ai.tool.description", "Current weather"},
			{"gen_ai.tool.call.arguments", `{"city":"Paris"}`}, {"gen_ai.tool.call.result", `{"temp_c":18}`},
		},
		typ: "agent.tool_call", tool: "get_weather",
		content: map[string]any{"arguments": map[string]any{"city": "Paris"}, "response": map[string]any{"temp_c": 18},
			"tool": map[string]any{"call.id": "call_1", "type": "function", "description": "Current weather"}},
	},
	{
		name: "opentelemetry indexed (before semconv 1.28)",
		attrs: [][2]any{
			{"gen_ai.system", "openai"}, {"gen_ai.request.model", "gpt-4o"},
			{"gen_ai.prompt.0.role", "system"}, {"gen_ai.prompt.0.content", "Be brief."},
			{"gen_ai.prompt.1.role", "user"}, {"gen_ai.prompt.1.content", "Weather in Paris?"},
			{"gen_ai.completion.0.role", "assistant"}, {"gen_ai.completion.0.finish_reason", "tool_calls"},
			{"gen_ai.completion.0.tool_calls.0.id", "call_1"}, {"gen_ai.completion.0.tool_calls.0.name", "get_weather"},
			{"gen_ai.completion.0.tool_calls.0.arguments", `{"city":"Paris"}`},
			{"gen_ai.usage.prompt_tokens", 20}, {"gen_ai.usage.completion_tokens", 7},
		},
		typ: "ai.interaction", connector: "openai",
		content: map[string]any{"model": "gpt-4o",
			"prompt": []any{map[string]any{"role": "system", "content": "Be brief."}, map[string]any{"role": "user", "content": "Weather in Paris?"}},
			"response": []any{map[string]any{"role": "assistant", "finish_reason": "tool_calls",
				"tool_calls": []any{map[string]any{"id": "call_1", "name": "get_weather", "arguments": `{"city":"Paris"}`}}}},
			"usage": map[string]any{"input_tokens": 20, "output_tokens": 7}},
	},
	{
		name: "openinference LLM",
		attrs: [][2]any{
			{"openinference.span.kind", "LLM"}, {"llm.model_name", "claude-sonnet-4"}, {"llm.provider", "anthropic"}, {"llm.system", "anthropic"},
			{"llm.input_messages.0.message.role", "system"}, {"llm.input_messages.0.message.content", "Be brief."},
			{"llm.input_messages.1.message.role", "user"},
			{"llm.input_messages.1.message.contents.0.message_content.type", "text"},
			{"llm.input_messages.1.message.contents.0.message_content.text", "What is in this picture?"},
			{"llm.input_messages.1.message.contents.1.message_content.type", "image"},
			{"llm.input_messages.1.message.contents.1.message_content.image.image.url", "https://example.com/cat.png"},
			{"llm.output_messages.0.message.role", "assistant"},
			{"llm.output_messages.0.message.tool_calls.0.tool_call.id", "toolu_1"},
			{"llm.output_messages.0.message.tool_calls.0.tool_call.function.name", "describe"},
			{"llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments", `{"detail":"high"}`},
			{"llm.token_count.prompt", 120}, {"llm.token_count.completion", 15}, {"llm.token_count.total", 135},
			{"llm.token_count.prompt_details.cache_read", 100}, {"llm.cost.total", 0.0021},
			{"llm.invocation_parameters", `{"max_tokens":512,"temperature":0}`},
			{"llm.tools.0.tool.json_schema", `{"type":"function","function":{"name":"describe"}}`},
			{"llm.prompt_template.template", "Describe {thing}"}, {"llm.prompt_template.variables", `{"thing":"picture"}`},
			{"llm.prompt_template.version", "v3"},
			{"input.value", `{"messages":[{"role":"user"}]}`}, {"input.mime_type", "application/json"},
			{"output.value", "It is a cat."}, {"output.mime_type", "text/plain"},
			{"session.id", "sess-9"}, {"user.id", "u-3"}, {"metadata", `{"tenant":"t1"}`}, {"tag.tags", []string{"vision", "prod"}},
		},
		typ: "ai.interaction", connector: "anthropic", session: "sess-9", actorID: "u-3",
		content: map[string]any{"convention": "openinference", "operation": "llm", "model": "claude-sonnet-4",
			"prompt": []any{map[string]any{"role": "system", "content": "Be brief."},
				map[string]any{"role": "user", "contents": []any{map[string]any{"type": "text", "text": "What is in this picture?"},
					map[string]any{"type": "image", "image": map[string]any{"image": map[string]any{"url": "https://example.com/cat.png"}}}}}},
			"response": []any{map[string]any{"role": "assistant", "tool_calls": []any{map[string]any{"id": "toolu_1",
				"function": map[string]any{"name": "describe", "arguments": `{"detail":"high"}`}}}}},
			"usage":                 map[string]any{"input_tokens": 120, "output_tokens": 15, "total_tokens": 135, "cache_read_input_tokens": 100},
			"cost":                  map[string]any{"total": 0.0021},
			"invocation_parameters": map[string]any{"max_tokens": 512, "temperature": 0},
			"tool_definitions":      []any{map[string]any{"json_schema": `{"type":"function","function":{"name":"describe"}}`}},
			"prompt_template":       map[string]any{"template": "Describe {thing}", "variables": map[string]any{"thing": "picture"}, "version": "v3"},
			"input":                 map[string]any{"messages": []any{map[string]any{"role": "user"}}}, "output": "It is a cat.",
			"metadata": map[string]any{"tenant": "t1"}, "tags": []any{"vision", "prod"}},
	},
	{
		name: "openinference TOOL",
		attrs: [][2]any{
			{"openinference.span.kind", "TOOL"}, {"tool.name", "get_weather"}, {"tool.description", "Current weather"},
			{"tool.parameters", `{"type":"object","properties":{"city":{"type":"string"}}}`}, {"tool.id", "call_1"},
			{"input.value", `{"city":"Paris"}`}, {"output.value", `{"temp_c":18}`},
		},
		typ: "agent.tool_call", tool: "get_weather",
		content: map[string]any{"convention": "openinference", "arguments": map[string]any{"city": "Paris"}, "response": map[string]any{"temp_c": 18},
			"tool":            map[string]any{"call.id": "call_1", "description": "Current weather"},
			"tool_parameters": map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}}},
	},
	{
		name: "openinference RETRIEVER",
		attrs: [][2]any{
			{"openinference.span.kind", "RETRIEVER"}, {"input.value", "refund policy"},
			{"retrieval.documents.0.document.id", "doc-1"}, {"retrieval.documents.0.document.score", 0.91},
			{"retrieval.documents.0.document.content", "Refunds within 30 days."},
			{"retrieval.documents.1.document.id", "doc-2"}, {"retrieval.documents.1.document.content", "Store credit otherwise."},
		},
		typ: "ai.interaction",
		content: map[string]any{"convention": "openinference", "operation": "retriever", "prompt": "refund policy",
			"documents": []any{map[string]any{"id": "doc-1", "score": 0.91, "content": "Refunds within 30 days."},
				map[string]any{"id": "doc-2", "content": "Store credit otherwise."}}},
	},
	{
		name: "openllmetry chat",
		attrs: [][2]any{
			{"llm.request.type", "chat"}, {"gen_ai.system", "Anthropic"}, {"gen_ai.request.model", "claude-3-5-sonnet"},
			{"gen_ai.response.model", "claude-3-5-sonnet-20241022"}, {"gen_ai.request.max_tokens", 256},
			{"gen_ai.prompt.0.role", "user"}, {"gen_ai.prompt.0.content", "Tell me a joke"},
			{"gen_ai.completion.0.role", "assistant"}, {"gen_ai.completion.0.content", "Why did the chicken…"},
			{"gen_ai.completion.0.finish_reason", "end_turn"},
			{"gen_ai.usage.prompt_tokens", 12}, {"gen_ai.usage.completion_tokens", 30}, {"llm.usage.total_tokens", 42},
			{"llm.is_streaming", false}, {"llm.request.functions.0.name", "get_joke"},
			{"llm.request.functions.0.description", "A joke"}, {"llm.request.functions.0.parameters", `{"type":"object"}`},
			{"traceloop.workflow.name", "joke_workflow"}, {"traceloop.entity.path", "joke_workflow.joke_task"},
			{"traceloop.association.properties.user_id", "u-5"}, {"traceloop.association.properties.tier", "pro"},
		},
		typ: "ai.interaction", connector: "Anthropic", actorID: "u-5",
		content: map[string]any{"convention": "openllmetry", "operation": "chat", "model": "claude-3-5-sonnet",
			"prompt":           []any{map[string]any{"role": "user", "content": "Tell me a joke"}},
			"response":         []any{map[string]any{"role": "assistant", "content": "Why did the chicken…", "finish_reason": "end_turn"}},
			"usage":            map[string]any{"input_tokens": 12, "output_tokens": 30, "total_tokens": 42},
			"request":          map[string]any{"max_tokens": 256, "stream": false},
			"tool_definitions": []any{map[string]any{"name": "get_joke", "description": "A joke", "parameters": `{"type":"object"}`}},
			"workflow":         "joke_workflow", "entity": map[string]any{"path": "joke_workflow.joke_task"},
			"association_properties": map[string]any{"tier": "pro"}},
	},
	{
		name: "openllmetry workflow",
		attrs: [][2]any{
			{"traceloop.span.kind", "workflow"}, {"traceloop.entity.name", "joke_workflow"}, {"traceloop.workflow.name", "joke_workflow"},
			{"traceloop.entity.input", `{"args":[],"kwargs":{"topic":"chickens"}}`}, {"traceloop.entity.output", `"Why did the chicken…"`},
		},
		typ: "ai.interaction",
		content: map[string]any{"convention": "openllmetry", "operation": "workflow", "workflow": "joke_workflow",
			"prompt": map[string]any{"args": []any{}, "kwargs": map[string]any{"topic": "chickens"}}, "response": `"Why did the chicken…"`,
			"entity": map[string]any{"name": "joke_workflow"}},
	},
	{
		name: "openllmetry tool",
		attrs: [][2]any{
			{"traceloop.span.kind", "tool"}, {"traceloop.entity.name", "get_weather"}, {"traceloop.entity.version", 2},
			{"traceloop.entity.input", `{"args":["Paris"],"kwargs":{}}`}, {"traceloop.entity.output", `{"temp_c":18}`},
		},
		typ: "agent.tool_call", tool: "get_weather",
		content: map[string]any{"convention": "openllmetry", "arguments": map[string]any{"args": []any{"Paris"}, "kwargs": map[string]any{}},
			"response": map[string]any{"temp_c": 18}, "entity": map[string]any{"version": 2}},
	},
}

func conventionRequest(attrs [][2]any) *tracepb.TracesData {
	var kvs []*commonpb.KeyValue
	for _, a := range attrs {
		kvs = append(kvs, attr(a[0].(string), a[1]))
	}
	return &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{attr("service.name", "assistant")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "test"}, Spans: []*tracepb.Span{{
			TraceId: bytes.Repeat([]byte{1}, 16), SpanId: bytes.Repeat([]byte{2}, 8), Name: "span",
			StartTimeUnixNano: uint64(testOpts.Now.UnixNano()) - 2e9, EndTimeUnixNano: uint64(testOpts.Now.UnixNano()) - 1e9,
			Attributes: kvs,
		}}}},
	}}}
}

// leaves collects the scalar values in v (as text), parsing strings that
// hold JSON as the mapping does.
func leaves(v any, into map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			leaves(e, into)
		}
	case []any:
		for _, e := range x {
			leaves(e, into)
		}
	case string:
		into[x] = true
	case nil:
	default:
		into[fmt.Sprint(x)] = true
	}
}

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// nothingLost checks that every attribute value of the request is in the
// event (a field or content), as sent or, for JSON text, parsed.
func nothingLost(t *testing.T, req *tracepb.TracesData, e *veritrail.Event) {
	t.Helper()
	b, err := veritrail.MarshalInput(e)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	leaves(decodeJSON(t, b), have)
	for _, kv := range req.ResourceSpans[0].ScopeSpans[0].Spans[0].Attributes {
		want := map[string]bool{}
		v := anyValue(kv.Value)
		leaves(v, want)
		for w := range want {
			if have[w] {
				continue
			}
			if parsed, err := dlp.Decode([]byte(w)); err == nil {
				inner := map[string]bool{}
				leaves(parsed, inner)
				ok := true
				for i := range inner {
					ok = ok && have[i]
				}
				if ok {
					continue
				}
			}
			t.Errorf("attribute %s: %q is not in the event", kv.Key, w)
		}
	}
}

func TestConventions(t *testing.T) {
	for _, tc := range conventionSpans {
		t.Run(tc.name, func(t *testing.T) {
			req := conventionRequest(tc.attrs)
			res := MapTraces(req, testOpts)
			if len(res.Events) != 1 {
				t.Fatalf("%d events (skipped %d, invalid %d: %s)", len(res.Events), res.Skipped, res.Invalid, res.Message())
			}
			e := res.Events[0]
			if e.Type != tc.typ || e.Tool != tc.tool || e.Connector != tc.connector && tc.connector != "" || e.SessionID != tc.session ||
				tc.actorID != "" && e.Actor.ID != tc.actorID {
				t.Fatalf("event: type %s tool %q connector %q session %q actor %+v", e.Type, e.Tool, e.Connector, e.SessionID, e.Actor)
			}
			content := decodeJSON(t, e.Content).(map[string]any)
			for k, want := range tc.content {
				wb, _ := json.Marshal(want)
				gb, _ := json.Marshal(content[k])
				if !reflect.DeepEqual(decodeJSON(t, wb), decodeJSON(t, gb)) {
					t.Errorf("content.%s = %s, want %s", k, gb, wb)
				}
			}
			nothingLost(t, req, e)
			if t.Failed() {
				t.Logf("content: %s", e.Content)
			}
			// The same span maps to the same event: exporter retries are duplicates.
			again := MapTraces(conventionRequest(tc.attrs), testOpts).Events[0]
			if !bytes.Equal(again.Content, e.Content) {
				t.Fatalf("mapping is not deterministic:\n%s\n%s", e.Content, again.Content)
			}
		})
	}
}

func TestIndexedKeepsConflicts(t *testing.T) {
	r := &record{attrs: map[string]any{"p.0.content": "a", "p.0.content.x": "b", "p.1": "c", "p.name": "not indexed"}}
	got, _ := json.Marshal(r.indexed("p."))
	if string(got) != `[{"content":"a","content.x":"b"},"c"]` || r.attrs["p.name"] != "not indexed" {
		t.Fatalf("indexed: %s, left %v", got, r.attrs)
	}
	if s := strings.Join([]string{fmt.Sprint(len(r.attrs))}, ""); s != "1" {
		t.Fatalf("%s attributes left", s)
	}
}
