// Package otlp turns OpenTelemetry data sent over OTLP/HTTP into Veritrail
// events: log records and spans that follow the OpenTelemetry GenAI
// semantic conventions (gen_ai.*) become ai.interaction (and ai.guardrail,
// ai.evaluation) events, tool executions and MCP calls (mcp.*) become
// agent.tool_call events. Records of neither kind are not recorded: the
// receiver tells the sender so in OTLP's partial_success.
//
// Decoding follows OTLP/HTTP: binary protobuf (application/x-protobuf) or
// OTLP's JSON encoding (application/json: the proto3 JSON mapping with
// lowerCamelCase names, trace and span ids as hex rather than base64, enums
// as integers, 64-bit integers as strings or numbers, unknown fields
// ignored).
package otlp

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"

	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The collector packages (ExportLogsServiceRequest, …) also hold the gRPC
// service and its HTTP gateway, and importing them links gRPC into the
// binary. Their requests are wire- and JSON-identical to LogsData and
// TracesData (one repeated field 1, resourceLogs / resourceSpans), and
// their responses are two small messages written by hand below.

// Encodings of an OTLP/HTTP body.
const (
	Protobuf = "application/x-protobuf"
	JSON     = "application/json"
)

// ErrUnsupportedType is returned for a Content-Type that is neither.
var ErrUnsupportedType = errors.New("Content-Type must be application/x-protobuf or application/json")

// Encoding returns Protobuf or JSON for a Content-Type header.
func Encoding(contentType string) (string, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", ErrUnsupportedType
	}
	switch mt {
	case Protobuf, JSON:
		return mt, nil
	}
	return "", ErrUnsupportedType
}

// DecodeLogs parses an ExportLogsServiceRequest (as the identical LogsData).
func DecodeLogs(body []byte, encoding string) (*logspb.LogsData, error) {
	req := &logspb.LogsData{}
	return req, decode(body, encoding, req)
}

// DecodeTraces parses an ExportTraceServiceRequest (as the identical TracesData).
func DecodeTraces(body []byte, encoding string) (*tracepb.TracesData, error) {
	req := &tracepb.TracesData{}
	return req, decode(body, encoding, req)
}

func decode(body []byte, encoding string, m proto.Message) error {
	switch encoding {
	case Protobuf:
		if err := proto.Unmarshal(body, m); err != nil {
			return fmt.Errorf("malformed protobuf: %v", err)
		}
		return nil
	case JSON:
		fixed, err := hexIDsToBase64(body)
		if err != nil {
			return err
		}
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(fixed, m); err != nil {
			return fmt.Errorf("malformed OTLP JSON: %v", err)
		}
		return nil
	}
	return ErrUnsupportedType
}

// idFields are the members OTLP JSON encodes as hex, with their byte sizes.
// Object keys in OTLP JSON are all schema names (attribute keys are
// values of "key"), so a member with one of these names is always an id.
var idFields = map[string]int{
	"traceId": 16, "spanId": 8, "parentSpanId": 8,
	"trace_id": 16, "span_id": 8, "parent_span_id": 8,
}

// hexIDsToBase64 rewrites OTLP JSON's hex ids into the base64 that the
// proto3 JSON mapping expects for bytes, keeping everything else as is
// (numbers exactly).
func hexIDsToBase64(body []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("malformed JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("malformed JSON: data after the request object")
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, errors.New("malformed OTLP JSON: the body must be a JSON object")
	}
	if err := fixIDs(v, 0); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func fixIDs(v any, depth int) error {
	if depth > 64 {
		return errors.New("malformed OTLP JSON: nested too deeply")
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if size, ok := idFields[k]; ok {
				s, isStr := e.(string)
				if !isStr {
					return fmt.Errorf("malformed OTLP JSON: %s must be a hex string", k)
				}
				b, err := hex.DecodeString(s)
				if err != nil || (len(b) != 0 && len(b) != size) {
					return fmt.Errorf("malformed OTLP JSON: %s %q is not %d bytes of hex", k, s, size)
				}
				x[k] = base64.StdEncoding.EncodeToString(b)
				continue
			}
			if err := fixIDs(e, depth+1); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := fixIDs(e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// EncodeLogsResponse encodes an ExportLogsServiceResponse: partial_success
// (rejected_log_records, error_message) only when something was rejected.
func EncodeLogsResponse(encoding string, rejected int64, msg string) []byte {
	return encodeResponse(encoding, "rejectedLogRecords", rejected, msg)
}

// EncodeTracesResponse encodes an ExportTraceServiceResponse
// (partial_success.rejected_spans).
func EncodeTracesResponse(encoding string, rejected int64, msg string) []byte {
	return encodeResponse(encoding, "rejectedSpans", rejected, msg)
}

// encodeResponse writes message Export*ServiceResponse { Export*PartialSuccess
// partial_success = 1; } with { int64 rejected = 1; string error_message = 2; }.
func encodeResponse(encoding, rejectedName string, rejected int64, msg string) []byte {
	if encoding == JSON {
		if rejected == 0 && msg == "" {
			return []byte("{}")
		}
		ps := map[string]any{}
		if rejected != 0 {
			ps[rejectedName] = fmt.Sprint(rejected) // proto3 JSON: int64 as a string
		}
		if msg != "" {
			ps["errorMessage"] = msg
		}
		b, _ := json.Marshal(map[string]any{"partialSuccess": ps})
		return b
	}
	if rejected == 0 && msg == "" {
		return []byte{}
	}
	var inner []byte
	if rejected != 0 {
		inner = protowire.AppendTag(inner, 1, protowire.VarintType)
		inner = protowire.AppendVarint(inner, uint64(rejected))
	}
	if msg != "" {
		inner = protowire.AppendTag(inner, 2, protowire.BytesType)
		inner = protowire.AppendString(inner, msg)
	}
	out := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendBytes(out, inner)
}
