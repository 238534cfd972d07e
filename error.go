package veritrail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
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
	// EInsufficientStorage: the disk under the store is full; nothing of
	// the request was stored, and it may be retried once space is freed.
	EInsufficientStorage = "insufficient_storage"
	// ERequestTimeout: the request's body did not arrive in time.
	ERequestTimeout = "request_timeout"
	EInternal       = "internal"
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
	EInternal, EMethodNotAllowed, EExpired, EInsufficientStorage, ERequestTimeout,
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

// FaultOf returns the coded error to answer for err when err is a fault of
// what surrounds Veritrail rather than of the request or of the code: the
// disk under the store is full (EInsufficientStorage), or the database
// cannot be reached, went away or did not answer in time (EUnavailable).
// It returns nil for a coded error and for any other error, which stays
// internal. Callers log err itself: the coded answer says what the client
// can do, not why.
func FaultOf(err error) *Error {
	var e *Error
	if err == nil || errors.As(err, &e) {
		return nil
	}
	switch {
	case diskFull(err):
		return Errorf(EInsufficientStorage, "the server's storage is full; retry once space is freed")
	case unreachable(err):
		return Errorf(EUnavailable, "the database cannot be reached or did not answer in time; retry")
	}
	return nil
}

// sqlState is the SQLSTATE of a database error (PostgreSQL's drivers
// expose it as a method), or "".
func sqlState(err error) string {
	var s interface{ SQLState() string }
	if errors.As(err, &s) {
		return s.SQLState()
	}
	return ""
}

// diskFull: ENOSPC or a quota from the file system, PostgreSQL's disk_full
// (53100), or SQLite's SQLITE_FULL, which its drivers report by message.
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || sqlState(err) == "53100" ||
		strings.Contains(err.Error(), "database or disk is full")
}

// unreachable: a deadline passed, the network failed (connection refused
// or reset, a dial or read that timed out), the connection ended mid-answer,
// or PostgreSQL said it is shutting down, starting up or out of
// connections (SQLSTATE class 08, 57P01-57P03, 53300).
func unreachable(err error) bool {
	// A network operation or name lookup that failed (not any errno: a
	// syscall.Errno satisfies net.Error too, a bad file descriptor
	// included).
	var op *net.OpError
	var dns *net.DNSError
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &op) || errors.As(err, &dns) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	switch st := sqlState(err); {
	case strings.HasPrefix(st, "08"), st == "57P01", st == "57P02", st == "57P03", st == "53300":
		return true
	}
	return false
}
