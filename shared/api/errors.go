// Package api holds what every HTTP handler shares: the one error type with its status table, JSON responses,
// and validation of caller input (device ids, parameters).
package api

import (
	"errors"
	"fmt"
	"net/http"
)

// Code classifies an Error; Status maps each code to exactly one HTTP status.
type Code string

const (
	Invalid      Code = "invalid"      // bad input; nothing was changed
	Unauthorized Code = "unauthorized" // no or wrong credentials
	Forbidden    Code = "forbidden"    // credentials valid but not for this
	NotFound     Code = "not_found"    // the device (or route) does not exist
	Conflict     Code = "conflict"     // the state changed under the request
	TooMany      Code = "too_many"     // a limit (device cap, rate) was reached
	TooLarge     Code = "too_large"    // body too large
	Unavailable  Code = "unavailable"  // a dependency (InfluxDB) is down or overloaded
	// StoreUnavailable: the control-plane store (DynamoDB) is down, throttling or unreachable; nothing was changed.
	StoreUnavailable Code = "store_unavailable"
	Timeout          Code = "timeout"     // the dependency did not answer within the deadline
	Internal         Code = "internal"    // a bug or unexpected failure; details are logged, never answered
	NotAllowed       Code = "not_allowed" // method not supported by this handler
	// NotImplemented: this deployment lacks what the request needs (a local run without the chunk queue); asking
	// again does not help, unlike Unavailable
	NotImplemented Code = "not_implemented"
)

// statusOf is the single table mapping error codes to HTTP statuses.
var statusOf = map[Code]int{
	Invalid:          http.StatusBadRequest,
	Unauthorized:     http.StatusUnauthorized,
	Forbidden:        http.StatusForbidden,
	NotFound:         http.StatusNotFound,
	Conflict:         http.StatusConflict,
	TooMany:          http.StatusTooManyRequests,
	TooLarge:         http.StatusRequestEntityTooLarge,
	Unavailable:      http.StatusServiceUnavailable,
	StoreUnavailable: http.StatusServiceUnavailable,
	Timeout:          http.StatusGatewayTimeout,
	Internal:         http.StatusInternalServerError,
	NotAllowed:       http.StatusNotFound, // API Gateway HTTP APIs answer 404 for an undeclared method
	NotImplemented:   http.StatusNotImplemented,
}

// Status returns the HTTP status for a code (500 for an unknown one).
func (c Code) Status() int {
	if s, ok := statusOf[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Error is the project's one error type. Message is safe to show to the caller; Err (the cause) is only logged.
type Error struct {
	Code    Code
	Message string
	// Param names the offending query/path parameter or body field, when there is one.
	Param string
	// Extra holds additional JSON members for the response body (for example {"id":..., "registered": false}).
	Extra map[string]any
	Err   error
}

func (e *Error) Error() string {
	msg := string(e.Code)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an Error whose message is shown to the caller.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidParam is a 400 naming the parameter at fault.
func InvalidParam(param, format string, args ...any) *Error {
	return &Error{Code: Invalid, Param: param, Message: fmt.Sprintf(format, args...)}
}

// Wrap attaches a cause that is logged but never answered.
func Wrap(code Code, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}

// CodeOf returns the code of err, Internal for any error that is not an *Error, "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// IsCode reports whether err carries the given code.
func IsCode(err error, code Code) bool { return CodeOf(err) == code }
