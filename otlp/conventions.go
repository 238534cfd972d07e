package otlp

import (
	"sort"
	"strconv"
	"strings"
)

// GenAI telemetry arrives in three conventions, which name the same
// things differently:
//
//   - OpenTelemetry's GenAI semantic conventions: gen_ai.* (current:
//     gen_ai.input.messages, gen_ai.output.messages, …; before semconv
//     1.28, indexed: gen_ai.prompt.<n>.*, gen_ai.completion.<n>.*),
//   - OpenInference (Arize Phoenix): openinference.span.kind, llm.*,
//     input.value/output.value, tool.*, flattened lists
//     (llm.input_messages.<n>.message.role),
//   - OpenLLMetry (Traceloop): traceloop.*, llm.request.type,
//     llm.usage.*, the indexed gen_ai.prompt/completion and
//     llm.request.functions.<n>.*.
//
// normalizeConventions rewrites the last two (and the indexed form) into
// the current OpenTelemetry names before the mapping reads them, and
// rebuilds flattened lists into lists of objects. An attribute is renamed
// only when the current name is not set already; whatever is not renamed
// stays an attribute and so ends in content.attributes: nothing is lost.

// Convention names, as content.convention records them.
const (
	ConventionOpenInference = "openinference"
	ConventionOpenLLMetry   = "openllmetry"
)

// convention names the convention of r's attributes ("" for
// OpenTelemetry's own).
func (r *record) convention() string {
	switch {
	case r.attrs["openinference.span.kind"] != nil, r.has("llm.input_messages."), r.has("llm.output_messages."),
		r.has("llm.token_count."), r.attrs["llm.model_name"] != nil, r.attrs["llm.invocation_parameters"] != nil:
		return ConventionOpenInference
	case r.has("traceloop."), r.attrs["llm.request.type"] != nil, r.has("llm.usage."), r.has("llm.request.functions."):
		return ConventionOpenLLMetry
	}
	return ""
}

// spanKinds reads the OpenInference and OpenLLMetry span kinds
// (openinference.span.kind is upper case: LLM, TOOL, CHAIN…; the
// traceloop one lower case: workflow, task, agent, tool).
func (r *record) spanKinds() (openinference, traceloop string) {
	oi, _ := r.attrs["openinference.span.kind"].(string)
	tl, _ := r.attrs["traceloop.span.kind"].(string)
	return strings.ToUpper(oi), strings.ToLower(tl)
}

// rename moves attribute from to the name to, unless to is set already.
func (r *record) rename(from, to string) {
	v, ok := r.attrs[from]
	if !ok {
		return
	}
	if _, taken := r.attrs[to]; taken {
		return
	}
	delete(r.attrs, from)
	r.attrs[to] = v
}

// claims says which OpenTelemetry attribute fills a content field
// later in the mapping (by event type), so a field another convention
// would fill is left to it.
var claims = map[string]string{
	"prompt": "gen_ai.input.messages", "response": "gen_ai.output.messages",
	"tool_definitions": "gen_ai.tool.definitions", "finish_reasons": "gen_ai.response.finish_reasons",
}

// put sets content[field] to v, or content[alt] when field is taken
// already, or will be by the OpenTelemetry attribute that claims it. Each
// source has its own alt, so two sources never overwrite each other.
func (r *record) put(content map[string]any, tool bool, field, alt string, v any) {
	if v == nil {
		return
	}
	if l, ok := v.([]any); ok && len(l) == 0 {
		return
	}
	claim := claims[field]
	if tool && field == "response" {
		claim = "gen_ai.tool.call.result"
	}
	if _, taken := content[field]; !taken && r.attrs[claim] == nil {
		content[field] = v
		return
	}
	content[alt] = v
}

// normalizeConventions maps the OpenInference and OpenLLMetry attributes
// of a record of type typ (and the indexed gen_ai.prompt/completion form)
// to OpenTelemetry's names, or into content where OpenTelemetry has no
// name for them.
func (r *record) normalizeConventions(typ string, content map[string]any) {
	conv := r.convention()
	oiKind, tlKind := r.spanKinds()
	tool := typ == "agent.tool_call"

	// OpenTelemetry before semconv 1.28 and OpenLLMetry: indexed messages.
	r.put(content, tool, "prompt", "prompt_indexed", r.indexed("gen_ai.prompt."))
	r.put(content, tool, "response", "completion_indexed", r.indexed("gen_ai.completion."))
	// and its token counts (semconv before 1.27)
	r.rename("gen_ai.usage.prompt_tokens", "gen_ai.usage.input_tokens")
	r.rename("gen_ai.usage.completion_tokens", "gen_ai.usage.output_tokens")
	if conv == "" {
		return
	}
	content["convention"] = conv

	// The kind of operation.
	if r.attrs["gen_ai.operation.name"] == nil {
		switch {
		case conv == ConventionOpenLLMetry && r.attrs["llm.request.type"] != nil:
			r.rename("llm.request.type", "gen_ai.operation.name")
		case oiKind != "" && !tool:
			content["operation"] = strings.ToLower(oiKind)
		case tlKind != "" && !tool:
			content["operation"] = tlKind
		}
	}

	// Provider, model, agent, identity.
	r.rename("llm.provider", "gen_ai.provider.name")
	r.rename("llm.system", "gen_ai.system")
	r.rename("llm.vendor", "gen_ai.system") // OpenLLMetry before gen_ai.system
	r.rename("llm.request.model_name", "gen_ai.request.model")
	r.rename("llm.model_name", "gen_ai.request.model")
	r.rename("embedding.model_name", "gen_ai.request.model")
	r.rename("llm.response.model_name", "gen_ai.response.model")
	r.rename("agent.name", "gen_ai.agent.name")
	r.rename("traceloop.association.properties.user_id", "user.id")
	r.rename("traceloop.association.properties.session_id", "session.id")

	// Usage: token counts under OpenTelemetry's names, the rest beside
	// them. (Pairs in order: the same record always maps the same way.)
	for _, p := range [][2]string{
		{"llm.token_count.prompt", "gen_ai.usage.input_tokens"}, {"llm.token_count.completion", "gen_ai.usage.output_tokens"},
		{"llm.token_count.total", "gen_ai.usage.total_tokens"},
		{"llm.token_count.prompt_details.cache_read", "gen_ai.usage.cache_read.input_tokens"},
		{"llm.token_count.prompt_details.cache_write", "gen_ai.usage.cache_creation.input_tokens"},
		{"llm.usage.total_tokens", "gen_ai.usage.total_tokens"},
	} {
		r.rename(p[0], p[1])
	}
	var counts []string
	for k := range r.attrs {
		if strings.HasPrefix(k, "llm.token_count.") {
			counts = append(counts, k)
		}
	}
	for _, k := range counts {
		r.rename(k, "gen_ai.usage."+strings.TrimPrefix(k, "llm.token_count."))
	}
	if g := group(r, "llm.cost."); len(g) > 0 {
		content["cost"] = g
	}

	// Request parameters.
	for _, p := range [][2]string{
		{"llm.top_k", "gen_ai.request.top_k"}, {"llm.frequency_penalty", "gen_ai.request.frequency_penalty"},
		{"llm.presence_penalty", "gen_ai.request.presence_penalty"}, {"llm.chat.stop_sequences", "gen_ai.request.stop_sequences"},
		{"llm.request.repetition_penalty", "gen_ai.request.repetition_penalty"}, {"llm.is_streaming", "gen_ai.request.stream"},
	} {
		r.rename(p[0], p[1])
	}
	if v := r.take("llm.invocation_parameters"); v != nil {
		content["invocation_parameters"] = jsonish(v)
	}

	// Messages, tools offered, templates.
	r.put(content, tool, "prompt", "input_messages", r.indexed("llm.input_messages."))
	r.put(content, tool, "response", "output_messages", r.indexed("llm.output_messages."))
	r.put(content, tool, "prompt", "prompts", r.indexed("llm.prompts."))   // completions API
	r.put(content, tool, "response", "choices", r.indexed("llm.choices.")) // completions API
	r.put(content, tool, "tool_definitions", "tools", r.indexed("llm.tools."))
	r.put(content, tool, "tool_definitions", "functions", r.indexed("llm.request.functions."))
	if v := r.take("llm.finish_reason"); v != nil {
		r.put(content, tool, "finish_reasons", "finish_reason", []any{v})
	}
	if v := r.take("llm.function_call"); v != nil {
		content["function_call"] = jsonish(v)
	}
	tmpl := group(r, "llm.prompt_template.")
	for k, v := range group(r, "traceloop.prompt.") {
		if _, taken := tmpl[k]; !taken {
			if tmpl == nil {
				tmpl = map[string]any{}
			}
			tmpl[k] = v
		}
	}
	if len(tmpl) > 0 {
		for _, k := range []string{"variables", "template_variables"} {
			if v, ok := tmpl[k]; ok {
				tmpl[k] = jsonish(v)
			}
		}
		content["prompt_template"] = tmpl
	}
	if d := r.indexed("retrieval.documents."); d != nil {
		content["documents"] = d
	}
	if e := r.indexed("embedding.embeddings."); e != nil {
		content["embeddings"] = e
	}
	if g := group(r, "reranker."); len(g) > 0 {
		content["reranker"] = g
	}
	if v := r.take("metadata"); v != nil {
		content["metadata"] = jsonish(v)
	}
	if v := r.take("tag.tags"); v != nil {
		content["tags"] = v
	}

	// The tool of a tool span.
	if tool {
		r.rename("tool.name", "gen_ai.tool.name")
		r.rename("tool.description", "gen_ai.tool.description")
		r.rename("tool.id", "gen_ai.tool.call.id")
		if tlKind == "tool" {
			r.rename("traceloop.entity.name", "gen_ai.tool.name")
		}
		r.rename("input.value", "gen_ai.tool.call.arguments")
		r.rename("output.value", "gen_ai.tool.call.result")
		r.rename("traceloop.entity.input", "gen_ai.tool.call.arguments")
		r.rename("traceloop.entity.output", "gen_ai.tool.call.result")
		for _, k := range []string{"tool.parameters", "tool.json_schema"} {
			if v := r.take(k); v != nil {
				content["tool_"+strings.TrimPrefix(k, "tool.")] = jsonish(v)
			}
		}
	}

	// A step's input and output: the prompt and response when the span
	// has no messages, otherwise beside them.
	for _, io := range [][3]string{
		{"input.value", "prompt", "input"}, {"output.value", "response", "output"},
		{"traceloop.entity.input", "prompt", "entity_input"}, {"traceloop.entity.output", "response", "entity_output"},
	} {
		if v := r.take(io[0]); v != nil {
			r.put(content, tool, io[1], io[2], jsonish(v))
		}
	}
	if e := group(r, "traceloop.entity."); len(e) > 0 {
		content["entity"] = e
	}
	if v := r.take("traceloop.workflow.name"); v != nil {
		content["workflow"] = v
	}
	if g := group(r, "traceloop.association.properties."); len(g) > 0 {
		content["association_properties"] = g
	}
}

// wrappers are the keys OpenInference nests each element of a flattened
// list under (llm.input_messages.0.message.role): the element is the
// wrapper's value.
var wrappers = map[string]bool{"message": true, "message_content": true, "tool_call": true, "tool": true,
	"document": true, "embedding": true, "prompt": true, "completion": true}

// indexed takes the attributes prefix<n>.<path> into a list ordered by n,
// each element an object built from its paths (prefix<n> alone is the
// element itself). Numeric path segments make lists too. Attributes of
// prefix whose next segment is not a number are left alone
// (gen_ai.prompt.name is MCP's, not a message).
func (r *record) indexed(prefix string) []any {
	tree := map[string]any{}
	var keys []string
	for k := range r.attrs {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			n, _, _ := strings.Cut(rest, ".")
			if _, err := strconv.Atoi(n); err == nil {
				keys = append(keys, k)
			}
		}
	}
	if len(keys) == 0 {
		return nil
	}
	sort.Strings(keys)
	for _, k := range keys {
		insert(tree, strings.Split(strings.TrimPrefix(k, prefix), "."), r.take(k))
	}
	l, _ := listOf(tree).([]any)
	return l
}

// insert puts v at path in tree. A path that runs into a value already
// there (a.b set, then a.b.c) is kept as a flat key ("b.c") in the last
// object reached, so no value is lost.
func insert(tree map[string]any, path []string, v any) {
	for i, seg := range path[:len(path)-1] {
		next, ok := tree[seg]
		if !ok {
			m := map[string]any{}
			tree[seg] = m
			tree = m
			continue
		}
		m, ok := next.(map[string]any)
		if !ok {
			tree[strings.Join(path[i:], ".")] = v
			return
		}
		tree = m
	}
	last := path[len(path)-1]
	if _, taken := tree[last]; taken {
		last = strings.Join(path, ".")
	}
	tree[last] = v
}

// listOf turns objects whose keys are all numbers into lists (in the
// numbers' order), and unwraps OpenInference's wrapped elements.
func listOf(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	nums := make([]int, 0, len(m))
	for k, x := range m {
		m[k] = listOf(x)
		if n, err := strconv.Atoi(k); err == nil && n >= 0 && strconv.Itoa(n) == k {
			nums = append(nums, n)
		}
	}
	if len(nums) == 0 || len(nums) != len(m) {
		return m
	}
	sort.Ints(nums)
	out := make([]any, len(nums))
	for i, n := range nums {
		e := m[strconv.Itoa(n)]
		if w, ok := e.(map[string]any); ok && len(w) == 1 {
			for k, inner := range w {
				if wrappers[k] {
					e = inner
				}
			}
		}
		out[i] = e
	}
	return out
}
