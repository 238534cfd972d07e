package veritrail

import (
	"errors"
	"fmt"
)

// Error codes. Every error a client can see carries one of these codes; the
// HTTP layer maps each to a status in one place (http/errors.go, errorTable).
const (
	EInvalid       = "invalid_request"        // malformed parameters
	EInvalidJSON   = "invalid_json"           // body is not well-formed JSON / NDJSON
	EInvalidEvent  = "invalid_event"          // an event failed validation
	EInvalidCursor = "invalid_cursor"         // cursor is not ours or does not match the query
	ETooLarge      = "payload_too_large"      // event, batch or body over its limit
	EUnsupported   = "unsupported_media_type" // content encoding we cannot read
	EUnauthorized  = "unauthorized"           // no token, or an unknown/revoked/expired one
	EForbidden     = "forbidden"              // the token's role or scopes do not allow it
	ENotFound      = "not_found"
	EConflict      = "conflict" // e.g. an event id reused for a different event
	ERateLimited   = "rate_limited"
	EUnavailable   = "unavailable" // shutting down, or a dependency is down
	EInternal      = "internal"
	// EMethodNotAllowed: the path exists, the method does not (the answer
	// lists the allowed ones).
	EMethodNotAllowed = "method_not_allowed"
	// EExpired: what was asked for existed and is gone for good (an export
	// download link past its expiry, or its file).
	EExpired = "expired"
)

// ErrorCodes lists every error code, so that the layers that map codes
// (the HTTP status table) can be checked to map them all.
var ErrorCodes = []string{
	EInvalid, EInvalidJSON, EInvalidEvent, EInvalidCursor, ETooLarge, EUnsupported,
	EUnauthorized, EForbidden, ENotFound, EConflict, ERateLimited, EUnavailable,
	EInternal, EMethodNotAllowed, EExpired,
}

// Error is the one coded error type of Veritrail. Message is safe to show to
// the client; internal details never go into it (they are logged instead).
type Error struct {
	Code    string
	Message string
	// Index is the position of the offending event in a batch, or -1.
	Index int
	// Field is the JSON path of the offending field, when known.
	Field string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns a coded error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Index: -1}
}

// EventError returns an invalid_event error naming the event index and field.
func EventError(index int, field, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	switch {
	case index >= 0 && field != "":
		msg = fmt.Sprintf("event %d: field %q: %s", index, field, msg)
	case index >= 0:
		msg = fmt.Sprintf("event %d: %s", index, msg)
	case field != "":
		msg = fmt.Sprintf("field %q: %s", field, msg)
	}
	return &Error{Code: EInvalidEvent, Message: msg, Index: index, Field: field}
}

// ErrorCode returns the code of a coded error anywhere in err's chain, or
// EInternal for any other non-nil error.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the client-safe message of err: the coded message, or
// a generic one for internal errors.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error; the server log has the details"
}
