package http

import (
	"errors"
	"net/http"
	"strings"

	veritrail "github.com/veritrail/veritrail"
)

// statusFor is the one mapping of error codes to HTTP statuses.
var statusFor = map[string]int{
	veritrail.EInvalid:       http.StatusBadRequest,
	veritrail.EInvalidJSON:   http.StatusBadRequest,
	veritrail.EInvalidEvent:  http.StatusBadRequest,
	veritrail.EInvalidCursor: http.StatusBadRequest,
	veritrail.ETooLarge:      http.StatusRequestEntityTooLarge,
	veritrail.EUnsupported:   http.StatusUnsupportedMediaType,
	veritrail.EUnauthorized:  http.StatusUnauthorized,
	veritrail.EForbidden:     http.StatusForbidden,
	veritrail.ENotFound:      http.StatusNotFound,
	veritrail.EConflict:      http.StatusConflict,
	veritrail.ERateLimited:   http.StatusTooManyRequests,
	veritrail.EUnavailable:   http.StatusServiceUnavailable,
	veritrail.EInternal:      http.StatusInternalServerError,
}

// StatusFor returns the HTTP status for an error.
func StatusFor(err error) int {
	if st, ok := statusFor[veritrail.ErrorCode(err)]; ok {
		return st
	}
	return http.StatusInternalServerError
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

// writeError answers err as {"error": {"code", "message"}} with its status.
// Internal errors are answered with a generic message; the caller logs them.
func writeError(w http.ResponseWriter, err error) {
	d := errorDetail{Code: veritrail.ErrorCode(err), Message: veritrail.ErrorMessage(err)}
	var ve *veritrail.Error
	if errors.As(err, &ve) {
		if ve.Index >= 0 {
			i := ve.Index
			d.Index = &i
		}
		d.Field = ve.Field
	}
	if d.Code == veritrail.EUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="veritrail"`)
	}
	writeJSON(w, StatusFor(err), errorBody{Error: d})
}

func writeErrorStatus(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg}})
}

// miroCodes are the error codes of Miro's REST API for our error codes.
var miroCodes = map[string]string{
	veritrail.EInvalid:       "invalidParameters",
	veritrail.EInvalidCursor: "invalidParameters",
	veritrail.EUnauthorized:  "tokenNotProvided",
	veritrail.EForbidden:     "insufficientPermissions",
	veritrail.ENotFound:      "notFound",
	veritrail.ERateLimited:   "tooManyRequests",
	veritrail.EUnavailable:   "serviceUnavailable",
	veritrail.EInternal:      "internalError",
}

// writeMiroError answers err in the body of Miro's REST API:
// {"status", "code", "message", "type": "error"}.
func writeMiroError(w http.ResponseWriter, err error) {
	status := StatusFor(err)
	code := miroCodes[veritrail.ErrorCode(err)]
	if code == "" {
		code = "invalidParameters"
	}
	msg := veritrail.ErrorMessage(err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="veritrail"`)
		// A token was sent but is unknown, revoked, expired or orphaned.
		if !strings.HasPrefix(msg, missingToken) {
			code = "invalidToken"
		}
	}
	writeJSON(w, status, map[string]any{"status": status, "code": code, "message": msg, "type": "error"})
}
