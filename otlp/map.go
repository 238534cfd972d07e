package otlp

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/dlp"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Options guide the mapping.
type Options struct {
	// Now is the receive time: records without a time get it, and the
	// limits of the ingest decoder apply as of it.
	Now    time.Time
	Limits veritrail.Limits
	// KeepAttachmentBytes keeps inline blobs of messages (images, audio);
	// otherwise only their mime type, size and SHA-256.
	KeepAttachmentBytes bool
	// Fallback is the actor of records that name nobody (no user.*,
	// gen_ai.agent.* or service.name): usually the sending token.
	Fallback veritrail.Actor
}

// Result is what a request maps to.
type Result struct {
	Events []*veritrail.Event // validated and normalized, ready to Prepare and append
	// Skipped counts records that are not GenAI or MCP records, Invalid
	// those that could not be made into valid events; Reasons says why
	// (one line per kind, for partial_success.error_message).
	Skipped, Invalid int
	Reasons          []string
}

func (r *Result) reason(s string) {
	for _, x := range r.Reasons {
		if x == s {
			return
		}
	}
	if len(r.Reasons) < 8 {
		r.Reasons = append(r.Reasons, s)
	}
}

// Message is the partial_success error message for the result.
func (r *Result) Message() string { return strings.Join(r.Reasons, "; ") }

// MapLogs maps the log records of a request.
func MapLogs(req *logspb.LogsData, o Options) *Result {
	res := &Result{}
	seen := map[string]int{}
	for _, rl := range req.GetResourceLogs() {
		resAttrs := attrMap(rl.GetResource().GetAttributes())
		resBytes, _ := proto.MarshalOptions{Deterministic: true}.Marshal(rl.GetResource())
		for _, sl := range rl.GetScopeLogs() {
			scope := scopeMap(sl.GetScope())
			scopeName := sl.GetScope().GetName()
			for _, lr := range sl.GetLogRecords() {
				r := &record{attrs: attrMap(lr.GetAttributes()), resource: resAttrs, scope: scope, eventName: lr.GetEventName()}
				if r.eventName == "" {
					r.eventName, _ = r.attrs["event.name"].(string)
				}
				r.time = nanos(lr.GetTimeUnixNano())
				if r.time.IsZero() {
					r.time = nanos(lr.GetObservedTimeUnixNano())
				}
				if lr.GetBody() != nil {
					r.body = anyValue(lr.GetBody())
				}
				r.failed = lr.GetSeverityNumber() >= logspb.SeverityNumber_SEVERITY_NUMBER_ERROR
				r.severity = lr.GetSeverityText()
				r.traceID, r.spanID = hex.EncodeToString(lr.GetTraceId()), hex.EncodeToString(lr.GetSpanId())
				if !r.time.IsZero() {
					// Exporters retry: the same record gets the same id, and
					// the store answers a resend as a duplicate.
					h := sha256.New()
					b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(lr)
					h.Write(b)
					h.Write(resBytes)
					io.WriteString(h, scopeName)
					id := "otlp-" + hex.EncodeToString(h.Sum(nil))[:40]
					seen[id]++
					if n := seen[id]; n > 1 {
						id += "-" + strconv.Itoa(n)
					}
					r.id = id
				}
				res.add(r, o)
			}
		}
	}
	return res
}

// MapTraces maps the spans of a request.
func MapTraces(req *tracepb.TracesData, o Options) *Result {
	res := &Result{}
	for _, rs := range req.GetResourceSpans() {
		resAttrs := attrMap(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			scope := scopeMap(ss.GetScope())
			for _, sp := range ss.GetSpans() {
				r := &record{attrs: attrMap(sp.GetAttributes()), resource: resAttrs, scope: scope, span: sp}
				r.time = nanos(sp.GetStartTimeUnixNano())
				if end := nanos(sp.GetEndTimeUnixNano()); !r.time.IsZero() && !end.Before(r.time) {
					d := end.Sub(r.time).Milliseconds()
					r.duration = &d
				}
				r.failed = sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR
				r.traceID, r.spanID = hex.EncodeToString(sp.GetTraceId()), hex.EncodeToString(sp.GetSpanId())
				if r.traceID != "" && r.spanID != "" {
					r.id = "otel-" + r.traceID + "-" + r.spanID
				}
				res.add(r, o)
			}
		}
	}
	return res
}

// record is a log record or span on its way to an event.
type record struct {
	id              string
	attrs           map[string]any // consumed as they are mapped; the rest goes to content.attributes
	resource, scope map[string]any
	eventName       string
	body            any
	time            time.Time
	duration        *int64
	failed          bool
	severity        string
	traceID, spanID string
	span            *tracepb.Span
}

func (r *record) take(key string) any {
	v, ok := r.attrs[key]
	if ok {
		delete(r.attrs, key)
	}
	return v
}

func (r *record) str(key string) string {
	switch v := r.take(key).(type) {
	case string:
		return v
	case nil:
		return ""
	case json.Number:
		return v.String()
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

func (r *record) has(prefix string) bool {
	for k := range r.attrs {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// kind decides the event type, or "" for records Veritrail does not keep.
// OpenInference and OpenLLMetry spans are recognised by their span kinds
// and attribute prefixes (conventions.go).
func (r *record) kind() string {
	op, _ := r.attrs["gen_ai.operation.name"].(string)
	method, _ := r.attrs["mcp.method.name"].(string)
	oiKind, tlKind := r.spanKinds()
	switch {
	case r.eventName == "gen_ai.guardrail.result" || op == "apply_guardrail" || oiKind == "GUARDRAIL":
		return "ai.guardrail"
	case r.eventName == "gen_ai.evaluation.result" || oiKind == "EVALUATOR":
		return "ai.evaluation"
	case method == "tools/call" || method == "resources/read" || method == "prompts/get" || op == "execute_tool" ||
		oiKind == "TOOL" || tlKind == "tool":
		return "agent.tool_call"
	case method != "":
		return "" // other MCP traffic (lists, notifications, pings)
	case op != "" || strings.HasPrefix(r.eventName, "gen_ai.") || r.has("gen_ai.") || r.convention() != "":
		return "ai.interaction"
	}
	return ""
}

func (res *Result) add(r *record, o Options) {
	typ := r.kind()
	if typ == "" {
		res.Skipped++
		res.reason("records without gen_ai.* or MCP tool attributes are not audit events and were not recorded")
		return
	}
	e, err := r.event(typ, o)
	if err != nil {
		res.Invalid++
		res.reason(err.Error())
		return
	}
	res.Events = append(res.Events, e)
}

// event builds the event and passes it through the ingest decoder, so an
// OTLP record is validated and normalized exactly like a native one.
func (r *record) event(typ string, o Options) (*veritrail.Event, error) {
	content := map[string]any{}
	r.normalizeConventions(typ, content)
	e := &veritrail.Event{ID: r.id, Time: r.time, Type: typ, DurationMS: r.duration}
	if e.Time.IsZero() {
		e.Time = o.Now
	}

	// Who.
	e.AgentID = clip(firstStr(r.str("gen_ai.agent.id"), r.attrs["gen_ai.agent.name"]), 256)
	switch uid, email, name := r.str("user.id"), r.str("user.email"), r.str("user.name"); {
	case uid != "" || email != "":
		e.Actor = veritrail.Actor{Type: veritrail.ActorUser, ID: uid, Email: email, Name: name}
	case r.attrs["enduser.id"] != nil:
		e.Actor = veritrail.Actor{Type: veritrail.ActorUser, ID: r.str("enduser.id"), Name: name}
	case e.AgentID != "":
		e.Actor = veritrail.Actor{Type: veritrail.ActorAgent, ID: e.AgentID, Name: strOf(r.attrs["gen_ai.agent.name"])}
	case strOf(r.resource["service.name"]) != "":
		e.Actor = veritrail.Actor{Type: veritrail.ActorService, ID: strOf(r.resource["service.name"])}
	default:
		e.Actor = o.Fallback
	}
	e.Actor.ID, e.Actor.Email, e.Actor.Name = clip(e.Actor.ID, 256), clip(e.Actor.Email, 320), clip(e.Actor.Name, 1024)
	if e.Actor.Email != "" && !strings.Contains(e.Actor.Email, "@") {
		content["user_email"], e.Actor.Email = e.Actor.Email, ""
	}
	e.SessionID = clip(firstStr(r.str("gen_ai.conversation.id"), r.attrs["mcp.session.id"], r.attrs["session.id"]), 256)
	delete(r.attrs, "mcp.session.id")
	delete(r.attrs, "session.id")

	// Where from.
	ctx := &veritrail.Context{}
	if ip := firstStr(r.str("client.address"), r.resource["client.address"]); ip != "" {
		if a, err := netip.ParseAddr(ip); err == nil && a.Zone() == "" {
			ctx.IP = a.Unmap().String()
		} else {
			content["client_address"] = ip
		}
	}
	ctx.UserAgent = clip(r.str("user_agent.original"), 1024)
	if *ctx != (veritrail.Context{}) {
		e.Context = ctx
	}

	// What.
	op := r.str("gen_ai.operation.name")
	provider := r.str("gen_ai.provider.name")
	if provider == "" {
		provider = r.str("gen_ai.system") // before semconv 1.37
	}
	switch typ {
	case "agent.tool_call":
		method := r.str("mcp.method.name")
		if method == "" {
			method = op
		}
		if method != "" {
			content["method"] = method
		}
		switch method {
		case "resources/read":
			uri := r.str("mcp.resource.uri")
			e.Tool = uri
			e.Target = &veritrail.Target{Type: "resource", ID: clip(uri, 256)}
		case "prompts/get":
			e.Tool = r.str("gen_ai.prompt.name")
			e.Target = &veritrail.Target{Type: "prompt", ID: clip(e.Tool, 256)}
		default:
			e.Tool = r.str("gen_ai.tool.name")
		}
		e.Tool = clip(e.Tool, 256)
		e.Connector = clip(firstStr(r.str("server.address"), r.resource["service.name"]), 256)
		if v := r.take("gen_ai.tool.call.arguments"); v != nil {
			content["arguments"] = jsonish(v)
		}
		if v := r.take("gen_ai.tool.call.result"); v != nil {
			content["response"] = jsonish(v)
		}
		tool := map[string]any{}
		for _, k := range []string{"gen_ai.tool.call.id", "gen_ai.tool.type", "gen_ai.tool.description"} {
			if v := r.take(k); v != nil {
				tool[strings.TrimPrefix(k, "gen_ai.tool.")] = v
			}
		}
		if len(tool) > 0 {
			content["tool"] = tool
		}
		if v := r.str("mcp.protocol.version"); v != "" {
			content["protocol_version"] = v
		}
		if op != "" {
			content["operation"] = op
		}
	default:
		e.Connector = clip(provider, 256)
		if op != "" {
			content["operation"] = op
		}
		if provider != "" {
			content["provider"] = provider
		}
		if m := r.str("gen_ai.request.model"); m != "" {
			content["model"] = m
		}
		if m := r.str("gen_ai.response.model"); m != "" {
			content["response_model"] = m
		}
		if v := r.take("gen_ai.input.messages"); v != nil {
			content["prompt"] = jsonish(v)
		}
		if v := r.take("gen_ai.output.messages"); v != nil {
			content["response"] = jsonish(v)
		}
		if v := r.take("gen_ai.system_instructions"); v != nil {
			content["system_context"] = jsonish(v)
		}
		if v := r.take("gen_ai.tool.definitions"); v != nil {
			content["tool_definitions"] = jsonish(v)
		}
		if v := r.take("gen_ai.response.finish_reasons"); v != nil {
			content["finish_reasons"] = v
		}
		if v := r.str("gen_ai.response.id"); v != "" {
			content["response_id"] = v
		}
		if typ == "ai.guardrail" {
			g := group(r, "gen_ai.guardrail.")
			if len(g) > 0 {
				content["guardrail"] = g
			}
		}
		if typ == "ai.evaluation" {
			if g := group(r, "gen_ai.evaluation."); len(g) > 0 {
				content["evaluation"] = g
			}
		}
		if g := group(r, "gen_ai.request."); len(g) > 0 {
			content["request"] = g
		}
	}
	if u := group(r, "gen_ai.usage."); len(u) > 0 {
		content["usage"] = u
	}
	if a := group(r, "gen_ai.agent."); len(a) > 0 {
		content["agent"] = a
	}

	// How it ended.
	e.Outcome = veritrail.OutcomeSuccess
	if errType := r.str("error.type"); errType != "" {
		content["error_type"] = errType
		r.failed = true
	}
	if r.failed {
		e.Outcome = veritrail.OutcomeFailure
	}
	for _, k := range []string{"rpc.response.status_code", "jsonrpc.error.code", "rpc.jsonrpc.error_code", "http.response.status_code"} {
		if st, ok := intOf(r.attrs[k]); ok {
			delete(r.attrs, k)
			e.Status = &st
			break
		}
	}
	if r.span != nil {
		if st := r.span.GetStatus(); st.GetMessage() != "" {
			content["status_message"] = st.GetMessage()
		}
	}
	// An explicit governance outcome (Veritrail's own attributes); a
	// guardrail's provider-native result is kept in content.guardrail and
	// never turned into a verdict (the GenAI conventions forbid inferring one).
	if a := r.str("veritrail.decision.action"); a != "" {
		e.Decision = &veritrail.Decision{Action: a, Policy: r.str("veritrail.decision.policy"), Reason: r.str("veritrail.decision.reason")}
	}

	// Everything else, so nothing is lost.
	trace := map[string]any{}
	if r.traceID != "" {
		trace["trace_id"] = r.traceID
	}
	if r.spanID != "" {
		trace["span_id"] = r.spanID
	}
	if sp := r.span; sp != nil {
		if p := hex.EncodeToString(sp.GetParentSpanId()); p != "" {
			trace["parent_span_id"] = p
		}
		trace["name"] = sp.GetName()
		trace["kind"] = strings.ToLower(strings.TrimPrefix(sp.GetKind().String(), "SPAN_KIND_"))
		if len(sp.GetEvents()) > 0 {
			var evs []any
			for _, ev := range sp.GetEvents() {
				m := map[string]any{"name": ev.GetName(), "time": nanos(ev.GetTimeUnixNano()).Format(time.RFC3339Nano)}
				if a := attrMap(ev.GetAttributes()); len(a) > 0 {
					m["attributes"] = a
				}
				evs = append(evs, m)
			}
			content["events"] = evs
		}
	}
	if len(trace) > 0 {
		content["trace"] = trace
	}
	if r.eventName != "" {
		content["event_name"] = r.eventName
		delete(r.attrs, "event.name")
	}
	if r.body != nil {
		content["body"] = jsonish(r.body)
	}
	if r.severity != "" {
		content["severity"] = r.severity
	}
	if len(r.attrs) > 0 {
		content["attributes"] = r.attrs
	}
	if len(r.resource) > 0 {
		content["resource"] = r.resource
	}
	if len(r.scope) > 0 {
		content["scope"] = r.scope
	}
	nv, atts := dlp.DigestAttachments(any(content), "", o.KeepAttachmentBytes)
	content = nv.(map[string]any)
	if len(atts) > 0 {
		content["attachments"] = atts
	}
	if e.Content, _ = dlp.Encode(content); len(e.Content) > o.Limits.MaxEventBytes-8<<10 {
		e.Content = shrink(content, o.Limits.MaxEventBytes-8<<10)
	}
	return normalize(e, o)
}

// shrink replaces the largest members of content by their size and digest
// until it fits.
func shrink(content map[string]any, limit int) []byte {
	for {
		b, _ := dlp.Encode(content)
		if len(b) <= limit {
			return b
		}
		var big string
		size := 0
		for k, v := range content {
			vb, _ := dlp.Encode(v)
			if len(vb) > size {
				big, size = k, len(vb)
			}
		}
		if big == "" || size < 256 {
			return b
		}
		vb, _ := dlp.Encode(content[big])
		sum := sha256.Sum256(vb)
		content[big] = map[string]any{"omitted": "larger than the event size limit", "bytes": len(vb), "sha256": hex.EncodeToString(sum[:])}
	}
}

// normalize runs the event through the ingest decoder (the one validator).
func normalize(e *veritrail.Event, o Options) (*veritrail.Event, error) {
	b, err := veritrail.MarshalInput(e)
	if err != nil {
		return nil, err
	}
	lim := o.Limits
	lim.MaxBatchEvents, lim.MaxBodyBytes = 1, 0
	dec := veritrail.NewDecoder(bytes.NewReader(b), lim, o.Now)
	out, err := dec.Next()
	if err != nil {
		return nil, fmt.Errorf("a record could not be recorded: %s", strings.TrimPrefix(veritrail.ErrorMessage(err), "event 0: "))
	}
	return out, nil
}

// group takes the attributes under prefix into a map keyed by the rest of
// the name, dots turned into underscores (gen_ai.usage.cache_read.input_tokens
// → cache_read_input_tokens).
func group(r *record, prefix string) map[string]any {
	var keys []string
	for k := range r.attrs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	sort.Strings(keys)
	g := map[string]any{}
	for _, k := range keys {
		g[strings.ReplaceAll(strings.TrimPrefix(k, prefix), ".", "_")] = r.take(k)
	}
	return g
}

// jsonish parses strings that hold JSON (the GenAI conventions allow
// messages as a JSON string or as structured values).
func jsonish(v any) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	t := strings.TrimSpace(s)
	if len(t) == 0 || (t[0] != '[' && t[0] != '{') {
		return v
	}
	if parsed, err := dlp.Decode([]byte(t)); err == nil {
		return parsed
	}
	return v
}

func attrMap(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		if kv.GetKey() == "" {
			continue
		}
		m[kv.GetKey()] = anyValue(kv.GetValue())
	}
	return m
}

func scopeMap(s *commonpb.InstrumentationScope) map[string]any {
	m := map[string]any{}
	if s.GetName() != "" {
		m["name"] = s.GetName()
	}
	if s.GetVersion() != "" {
		m["version"] = s.GetVersion()
	}
	if a := attrMap(s.GetAttributes()); len(a) > 0 {
		m["attributes"] = a
	}
	return m
}

// anyValue converts an OTLP AnyValue to JSON-ready Go values; integers
// stay exact (json.Number), bytes become base64, non-finite doubles strings.
func anyValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return validUTF8(x.StringValue)
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return json.Number(strconv.FormatInt(x.IntValue, 10))
	case *commonpb.AnyValue_DoubleValue:
		if math.IsNaN(x.DoubleValue) || math.IsInf(x.DoubleValue, 0) {
			return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
		}
		return json.Number(strconv.FormatFloat(x.DoubleValue, 'g', -1, 64))
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		out := make([]any, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, anyValue(e))
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		return attrMap(x.KvlistValue.GetValues())
	}
	return nil
}

// validUTF8 replaces invalid bytes (protobuf strings should be UTF-8, but
// a decoder does not check): the event decoder refuses invalid UTF-8.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func nanos(n uint64) time.Time {
	if n == 0 || n > math.MaxInt64 {
		return time.Time{}
	}
	return time.Unix(0, int64(n)).UTC()
}

func strOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return ""
}

func firstStr(first string, rest ...any) string {
	if first != "" {
		return first
	}
	for _, v := range rest {
		if s := strOf(v); s != "" {
			return s
		}
	}
	return ""
}

func intOf(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil
	}
	return 0, false
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
