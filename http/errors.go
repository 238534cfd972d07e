package http

import (
	"errors"
	"net/http"
	"strings"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/otlp"
	codepb "google.golang.org/genproto/googleapis/rpc/code"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// How errors are answered. Handlers return errors (handler.go); the adapter
// answers them in the dialect of the route: the native body, Miro's or
// OTLP's. Every dialect reads the status from the one table below.

// answer is what each dialect answers for an error code.
type answer struct {
	status int         // HTTP status
	miro   string      // code in Miro's error body
	grpc   codepb.Code // code in OTLP's google.rpc.Status body
}

// errorTable is the one mapping of error codes to HTTP statuses (and to the
// codes of the Miro and OTLP bodies). Every veritrail error code MUST have
// a row; a test checks it.
var errorTable = map[string]answer{
	veritrail.EInvalid:             {http.StatusBadRequest, "invalidParameters", codepb.Code_INVALID_ARGUMENT},
	veritrail.EInvalidJSON:         {http.StatusBadRequest, "invalidParameters", codepb.Code_INVALID_ARGUMENT},
	veritrail.EInvalidEvent:        {http.StatusBadRequest, "invalidParameters", codepb.Code_INVALID_ARGUMENT},
	veritrail.EInvalidCursor:       {http.StatusBadRequest, "invalidParameters", codepb.Code_INVALID_ARGUMENT},
	veritrail.ETooLarge:            {http.StatusRequestEntityTooLarge, "invalidParameters", codepb.Code_INVALID_ARGUMENT},
	veritrail.EUnsupported:         {http.StatusUnsupportedMediaType, "invalidParameters", codepb.Code_INVALID_ARGUMENT},
	veritrail.EUnauthorized:        {http.StatusUnauthorized, "tokenNotProvided", codepb.Code_UNAUTHENTICATED},
	veritrail.EForbidden:           {http.StatusForbidden, "insufficientPermissions", codepb.Code_PERMISSION_DENIED},
	veritrail.ENotFound:            {http.StatusNotFound, "notFound", codepb.Code_NOT_FOUND},
	veritrail.EMethodNotAllowed:    {http.StatusMethodNotAllowed, "methodNotAllowed", codepb.Code_UNIMPLEMENTED},
	veritrail.EConflict:            {http.StatusConflict, "invalidParameters", codepb.Code_ALREADY_EXISTS},
	veritrail.EExpired:             {http.StatusGone, "notFound", codepb.Code_NOT_FOUND},
	veritrail.ERateLimited:         {http.StatusTooManyRequests, "tooManyRequests", codepb.Code_RESOURCE_EXHAUSTED},
	veritrail.EUnavailable:         {http.StatusServiceUnavailable, "serviceUnavailable", codepb.Code_UNAVAILABLE},
	veritrail.ERequestTimeout:      {http.StatusRequestTimeout, "invalidParameters", codepb.Code_DEADLINE_EXCEEDED},
	veritrail.EInsufficientStorage: {http.StatusInsufficientStorage, "serviceUnavailable", codepb.Code_RESOURCE_EXHAUSTED},
	veritrail.EInternal:            {http.StatusInternalServerError, "internalError", codepb.Code_INTERNAL},
}

// answerFor looks err's code up in the table; an unknown code is answered
// as internal.
func answerFor(err error) answer {
	if a, ok := errorTable[veritrail.ErrorCode(err)]; ok {
		return a
	}
	return errorTable[veritrail.EInternal]
}

// StatusFor returns the HTTP status for an error.
func StatusFor(err error) int { return answerFor(err).status }

// hiddenCause is answered as its coded error while its cause, which the
// client is not told, is logged by the adapter: "could not be recorded;
// retry" to the client, the store's error to the log.
type hiddenCause struct {
	coded *veritrail.Error
	cause error
}

func (e *hiddenCause) Error() string   { return e.coded.Message + ": " + e.cause.Error() }
func (e *hiddenCause) Unwrap() []error { return []error{e.coded, e.cause} }

// withCause returns an error answered as coded, with cause logged.
func withCause(cause error, coded *veritrail.Error) error {
	return &hiddenCause{coded: coded, cause: cause}
}

// retryAfterSeconds is the Retry-After of 503 and 507 answers that set
// none of their own: soon enough for a brief outage, far enough apart for
// a crowd of clients not to hammer a database that is coming back.
const retryAfterSeconds = "2"

// answered is err as the adapter answers it: an uncoded fault of what
// surrounds the server (a database gone, a full disk; veritrail.FaultOf)
// becomes its coded answer, with err logged as the cause. A 503 or 507
// says when to retry.
func answered(w http.ResponseWriter, err error) error {
	if f := veritrail.FaultOf(err); f != nil {
		err = withCause(err, f)
	}
	if s := StatusFor(err); (s == http.StatusServiceUnavailable || s == http.StatusInsufficientStorage) && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", retryAfterSeconds)
	}
	return err
}

// toLog returns what the adapter logs of err: err itself when it is
// internal (its answer says no more than "internal error"), its cause
// when it hides one, else nil.
func toLog(err error) error {
	if veritrail.ErrorCode(err) == veritrail.EInternal {
		return err
	}
	var h *hiddenCause
	if errors.As(err, &h) {
		return h.cause
	}
	return nil
}

// dialect writes an error body in one API's form.
type dialect func(w http.ResponseWriter, r *http.Request, err error)

// unauthorized marks a 401 as asking for a bearer token.
func unauthorized(w http.ResponseWriter, status int) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="veritrail"`)
	}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Index   *int   `json:"index,omitempty"`
	Field   string `json:"field,omitempty"`
}

// writeNative answers err as {"error": {"code", "message", "index",
// "field"}}, index and field when err names an event or field. Internal
// errors are answered with a generic message.
func writeNative(w http.ResponseWriter, _ *http.Request, err error) {
	d := errorDetail{Code: veritrail.ErrorCode(err), Message: veritrail.ErrorMessage(err)}
	var ve *veritrail.Error
	if errors.As(err, &ve) {
		if ve.Index >= 0 {
			i := ve.Index
			d.Index = &i
		}
		d.Field = ve.Field
	}
	status := StatusFor(err)
	unauthorized(w, status)
	writeJSON(w, status, errorBody{Error: d})
}

// writeMiro answers err in the body of Miro's REST API:
// {"status", "code", "message", "type": "error"}.
func writeMiro(w http.ResponseWriter, _ *http.Request, err error) {
	a := answerFor(err)
	code, msg := a.miro, veritrail.ErrorMessage(err)
	unauthorized(w, a.status)
	// A token was sent but is unknown, revoked, expired or orphaned.
	if a.status == http.StatusUnauthorized && !strings.HasPrefix(msg, missingToken) {
		code = "invalidToken"
	}
	writeJSON(w, a.status, map[string]any{"status": a.status, "code": code, "message": msg, "type": "error"})
}

// writeOTLP answers err as OTLP/HTTP requires: a google.rpc.Status in the
// request's encoding (JSON when the request's is neither OTLP encoding).
// 503 carries Retry-After (set by the adapter), which OTLP exporters honour.
func writeOTLP(w http.ResponseWriter, r *http.Request, err error) {
	a := answerFor(err)
	st := &spb.Status{Code: int32(a.grpc), Message: veritrail.ErrorMessage(err)}
	encoding, _ := otlp.Encoding(r.Header.Get("Content-Type"))
	var b []byte
	if encoding == otlp.Protobuf {
		b, _ = proto.Marshal(st)
	} else {
		encoding = otlp.JSON
		b, _ = protojson.Marshal(st)
	}
	unauthorized(w, a.status)
	w.Header().Set("Content-Type", encoding)
	w.WriteHeader(a.status)
	w.Write(b)
}
