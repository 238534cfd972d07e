package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/npmtest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// conventionSpan is one span of otlp/testdata/conventions.json: GenAI
// telemetry in the OpenTelemetry GenAI, OpenInference and OpenLLMetry
// conventions, and what the stored event must say.
type conventionSpan struct {
	Name       string                     `json:"name"`
	Attributes map[string]json.RawMessage `json:"attributes"`
	Expect     struct {
		Type, Tool, Connector, Convention string
		Content                           []string
	} `json:"expect"`
}

func conventionSpans(t *testing.T) (path string, spans []conventionSpan) {
	t.Helper()
	path, _ = filepath.Abs(filepath.Join("..", "otlp", "testdata", "conventions.json"))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &spans); err != nil {
		t.Fatal(err)
	}
	return path, spans
}

// attribute converts a JSON attribute value (string, number, bool, list
// of strings) to an OpenTelemetry attribute, integers as Int64 as
// JavaScript's exporter sends them.
func otelAttribute(t *testing.T, k string, raw json.RawMessage) attribute.KeyValue {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	dec.Decode(&v)
	switch x := v.(type) {
	case string:
		return attribute.String(k, x)
	case bool:
		return attribute.Bool(k, x)
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return attribute.Int64(k, n)
		}
		f, _ := x.Float64()
		return attribute.Float64(k, f)
	case []any:
		var s []string
		for _, e := range x {
			s = append(s, e.(string))
		}
		return attribute.StringSlice(k, s)
	}
	t.Fatalf("attribute %s: %s", k, raw)
	return attribute.KeyValue{}
}

// leafValues collects the scalar values in v as text, and those of JSON
// held in strings.
func leafValues(v any, into map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			leafValues(e, into)
		}
	case []any:
		for _, e := range x {
			leafValues(e, into)
		}
	case string:
		into[x] = true
	case nil:
	default:
		into[fmt.Sprint(x)] = true
	}
}

func jsonLeaves(t *testing.T, b []byte) map[string]bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	leafValues(v, out)
	return out
}

// checkConventionEvents reads the stored events back through the API and
// checks each span's event: its type, tool, connector, convention, the
// content members expected, and that every attribute value is in it.
func checkConventionEvents(t *testing.T, e *env, spans []conventionSpan) {
	t.Helper()
	r := e.do("GET", "/api/v1/events?limit=100", e.owner, nil)
	if r.status != 200 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	var l struct {
		Data []json.RawMessage `json:"data"`
	}
	json.Unmarshal(r.body, &l)
	byName := map[string]json.RawMessage{}
	for _, raw := range l.Data {
		var ev struct {
			Content struct {
				Trace struct{ Name string } `json:"trace"`
			} `json:"content"`
		}
		json.Unmarshal(raw, &ev)
		byName[ev.Content.Trace.Name] = raw
	}
	for _, sp := range spans {
		raw, ok := byName[sp.Name]
		if !ok {
			t.Errorf("span %s: no event stored", sp.Name)
			continue
		}
		var ev struct {
			Type, Tool, Connector string
			Content               map[string]any
		}
		json.Unmarshal(raw, &ev)
		x := sp.Expect
		conv, _ := ev.Content["convention"].(string)
		if ev.Type != x.Type || ev.Tool != x.Tool || x.Connector != "" && ev.Connector != x.Connector || conv != x.Convention {
			t.Errorf("span %s: type %s tool %q connector %q convention %q, want %+v", sp.Name, ev.Type, ev.Tool, ev.Connector, conv, x)
		}
		for _, k := range x.Content {
			if ev.Content[k] == nil {
				t.Errorf("span %s: no content.%s in %s", sp.Name, k, raw)
			}
		}
		have := jsonLeaves(t, raw)
		for k, v := range sp.Attributes {
			for w := range jsonLeaves(t, v) {
				if have[w] {
					continue
				}
				ok := false
				if strings.HasPrefix(strings.TrimSpace(w), "{") || strings.HasPrefix(strings.TrimSpace(w), "[") {
					ok = true
					for inner := range jsonLeaves(t, []byte(w)) {
						ok = ok && have[inner]
					}
				}
				if !ok {
					t.Errorf("span %s: attribute %s value %q is not in the event %s", sp.Name, k, w, raw)
				}
			}
		}
	}
}

// TestGenAIConventionsGoExporter sends the spans through the
// OpenTelemetry Go SDK's OTLP/HTTP trace exporter.
func TestGenAIConventionsGoExporter(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	ingest := e.token(e.org, veritrail.RoleIngest, nil, nil)
	_, spans := conventionSpans(t)
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(e.srv.URL+"/v1/traces"),
		otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + ingest}),
		otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "go-assistant"))))
	tracer := tp.Tracer("veritrail-conventions-test")
	for _, sp := range spans {
		var attrs []attribute.KeyValue
		for k, v := range sp.Attributes {
			attrs = append(attrs, otelAttribute(t, k, v))
		}
		_, s := tracer.Start(ctx, sp.Name)
		s.SetAttributes(attrs...)
		s.End()
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	checkConventionEvents(t, e, spans)
}

// exportScript sends the spans of a JSON file through OpenTelemetry's
// JavaScript SDK and its OTLP/HTTP protobuf trace exporter.
const exportScript = `
const { TracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const fs = require('fs');
const [url, token, file] = process.argv.slice(2);
const spans = JSON.parse(fs.readFileSync(file, 'utf8'));
const exporter = new OTLPTraceExporter({ url, headers: { Authorization: 'Bearer ' + token } });
const provider = new TracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'node-assistant' }),
  spanProcessors: [new SimpleSpanProcessor({ exporter })],
});
const tracer = provider.getTracer('veritrail-conventions-test', '1.0.0');
for (const s of spans) tracer.startSpan(s.name, { attributes: s.attributes }).end();
provider.forceFlush()
  .then(() => provider.shutdown())
  .then(() => console.log('exported ' + spans.length + ' spans'), (err) => { console.error(err); process.exit(1); });
`

// TestGenAIConventionsNodeExporter sends the same spans through
// @opentelemetry/exporter-trace-otlp-proto from npm, run by Node.js.
func TestGenAIConventionsNodeExporter(t *testing.T) {
	node := npmtest.Node(t)
	modules := filepath.Join(npmtest.Prefix(t, "otel"), "node_modules")
	e := newEnv(t, veritrail.DefaultLimits)
	ingest := e.token(e.org, veritrail.RoleIngest, nil, nil)
	path, spans := conventionSpans(t)
	script := filepath.Join(t.TempDir(), "export.cjs")
	if err := os.WriteFile(script, []byte(exportScript), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, script, e.srv.URL+"/v1/traces", ingest, path)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node exporter: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("exported %d spans", len(spans))) {
		t.Fatalf("node exporter said: %s", out)
	}
	checkConventionEvents(t, e, spans)
}
