package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
)

// MaxBodyBytes caps every request body read through DecodeJSON.
const MaxBodyBytes = 64 << 10

// WriteJSON answers v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers err as {"error": message}. 5xx errors are logged with their cause and answered with a fixed
// text, so neither a token nor a raw InfluxDB message ever reaches the caller.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: Internal, Err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) && e.Code == Internal {
		e = &Error{Code: Timeout, Message: "the request timed out", Err: err}
	}
	status := e.Code.Status()
	body := map[string]any{}
	for k, v := range e.Extra {
		body[k] = v
	}
	switch {
	case status >= 500:
		Logger(ctx).ErrorContext(ctx, "request failed", slog.String("code", string(e.Code)), slog.String("error", e.Error()),
			slog.String("method", r.Method), slog.String("path", r.URL.Path))
		msg := "internal error"
		switch e.Code {
		case Timeout:
			msg = "timed out waiting for InfluxDB"
		case Unavailable:
			msg = "InfluxDB is unavailable, try again later"
		case StoreUnavailable:
			msg = "the device store is unavailable, try again later"
		case NotImplemented:
			msg = e.Message // what the deployment lacks: written by this code, never a cause
		}
		body["error"] = msg
	default:
		if e.Message != "" || len(e.Extra) == 0 {
			body["error"] = e.Message
		}
		if e.Param != "" {
			body["param"] = e.Param
		}
		Logger(ctx).InfoContext(ctx, "request refused", slog.String("code", string(e.Code)), slog.String("reason", e.Message),
			slog.String("method", r.Method), slog.String("path", r.URL.Path))
	}
	if e.Code == TooMany || e.Code == Unavailable || e.Code == StoreUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if WantsText(r) {
		writeTextError(w, status, body)
		return
	}
	WriteJSON(w, status, body)
}

// writeTextError answers the error as `key: value` lines for a caller that asked for text/plain (iot-center-v2's
// Arduino clients parse lines): `message: …` first, then the other members in name order.
func writeTextError(w http.ResponseWriter, status int, body map[string]any) {
	var b strings.Builder
	if msg, ok := body["error"]; ok {
		fmt.Fprintf(&b, "message: %v\n", msg)
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		if k != "error" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %v\n", k, body[k])
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// WantsText reports whether the caller asked for text/plain: `?accept=text/plain` once (iot-center-v2's query form) or
// an Accept header that prefers text/plain to JSON.
func WantsText(r *http.Request) bool {
	if v := r.URL.Query()["accept"]; len(v) > 0 {
		return len(v) == 1 && v[0] == "text/plain" // (given twice: refused, in JSON)
	}
	return NegotiateType(r.Header, "application/json", "text/plain") == "text/plain"
}

// DecodeJSON reads an optional JSON body into v, capped at MaxBodyBytes; unknown fields are rejected.
// An empty body leaves v untouched.
func DecodeJSON(r *http.Request, v any) error {
	if r.Body == nil {
		return nil
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Errorf(TooLarge, "request body larger than %d bytes", MaxBodyBytes)
		}
		return &Error{Code: Invalid, Param: "body", Message: "request body is not valid JSON for this route: " + jsonReason(err)}
	}
	if dec.More() {
		return &Error{Code: Invalid, Param: "body", Message: "request body must hold a single JSON object"}
	}
	return nil
}

// jsonReason keeps the decoder's explanation short and free of the caller's raw bytes.
func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "syntax error"
	case errors.As(err, &te):
		return "field " + te.Field + " has the wrong type"
	default:
		msg := err.Error()
		if len(msg) > 80 {
			msg = msg[:80]
		}
		return msg
	}
}
