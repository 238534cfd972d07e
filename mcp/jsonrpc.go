// Package mcp is Veritrail's MCP gateway: a proxy between an MCP client
// (an agent) and an MCP server that records every tool call, resource read
// and prompt fetch as an agent.tool_call event, enforces an allow / block /
// redact policy on them, and never loses a record (a durable spool holds
// them while the Veritrail server is unreachable). Neither the agent nor
// the server changes: the proxy speaks MCP's own framing on both sides,
// stdio (newline-delimited JSON-RPC) or Streamable HTTP.
package mcp

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// JSON-RPC error codes the gateway answers with. Both lie in the range
// JSON-RPC leaves to implementations and clash with no code the MCP SDKs
// use (the Go SDK reads -32001 and -32003 to -32005 as its own transport
// errors; -32000 to -32002, -32020 to -32022 and -32042 are taken too).
const (
	// CodeBlocked answers a call a policy blocked; error.data carries
	// {"policy", "reason"}.
	CodeBlocked = -32010
	// CodeAuditUnavailable answers a call whose record could not be made
	// durable within the hold timeout while the gateway fails closed.
	CodeAuditUnavailable = -32011
	// CodeHeaderMismatch is MCP's code for Mcp-Method / Mcp-Name headers
	// that disagree with the body (SEP-2243).
	CodeHeaderMismatch = -32020
	codeInvalidRequest = -32600
)

// Methods the gateway governs and records.
const (
	MethodToolsCall     = "tools/call"
	MethodResourcesRead = "resources/read"
	MethodPromptsGet    = "prompts/get"
	methodInitialize    = "initialize"
	methodCancelled     = "notifications/cancelled"
)

// Meta keys of the 2026-07-28 stateless protocol (per-request client info).
const (
	metaProtocolVersion = "io.modelcontextprotocol/protocolVersion"
	metaClientInfo      = "io.modelcontextprotocol/clientInfo"
)

// message is one JSON-RPC 2.0 message: a request (method and id), a
// notification (method, no id) or a response (id, result or error).
type message struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

type rpcError struct {
	Code    int64           `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (m *message) isRequest() bool  { return m.Method != "" && len(m.ID) > 0 && string(m.ID) != "null" }
func (m *message) isResponse() bool { return m.Method == "" && len(m.ID) > 0 }

// governed reports whether a request is one the gateway records.
func governed(method string) bool {
	return method == MethodToolsCall || method == MethodResourcesRead || method == MethodPromptsGet
}

// idKey is a request id as a map key: its compact JSON form.
func idKey(id json.RawMessage) string {
	id = bytes.TrimSpace(id)
	if len(id) > 0 && id[0] == '"' {
		return string(id)
	}
	// Numbers: 7 and 7.0 are the same id to most peers.
	if f, err := strconv.ParseFloat(string(id), 64); err == nil {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return string(id)
}

// callParams is what the gateway reads from the params of a governed call.
type callParams struct {
	Name      string          `json:"name"`      // tools/call, prompts/get
	URI       string          `json:"uri"`       // resources/read
	Arguments json.RawMessage `json:"arguments"` // tools/call, prompts/get
	Meta      map[string]any  `json:"_meta"`
}

// initParams is what the gateway reads from initialize.
type initParams struct {
	ProtocolVersion string          `json:"protocolVersion"`
	ClientInfo      *implementation `json:"clientInfo"`
}

type initResult struct {
	ProtocolVersion string          `json:"protocolVersion"`
	ServerInfo      *implementation `json:"serverInfo"`
}

type implementation struct {
	Name    string `json:"name"`
	Title   string `json:"title,omitempty"`
	Version string `json:"version,omitempty"`
}

// errorResponse encodes a JSON-RPC error answer to request id.
func errorResponse(id json.RawMessage, code int64, msg string, data any) []byte {
	type errObj struct {
		Code    int64  `json:"code"`
		Message string `json:"message"`
		Data    any    `json:"data,omitempty"`
	}
	b, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   errObj          `json:"error"`
	}{"2.0", id, errObj{code, msg, data}})
	return b
}
