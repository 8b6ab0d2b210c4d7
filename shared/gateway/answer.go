package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// influxCode is InfluxDB's error code (the "code" member of its JSON errors) for each of the project's codes. The
// client libraries read the status; the code and message are what they show.
var influxCode = map[api.Code]string{
	api.Invalid:          "invalid",
	api.Unauthorized:     "unauthorized",
	api.Forbidden:        "forbidden",
	api.NotFound:         "not found",
	api.TooLarge:         "request too large",
	api.TooMany:          "too many requests",
	api.Unavailable:      "unavailable",
	api.StoreUnavailable: "unavailable",
	api.Timeout:          "unavailable",
	api.Internal:         "internal error",
}

// statusOf answers a timeout as 503, not the API's usual 504: every InfluxDB client library retries a 503 (with
// Retry-After), which is what a device should do when InfluxDB is slow.
func statusOf(c api.Code) int {
	if c == api.Timeout {
		return http.StatusServiceUnavailable
	}
	return c.Status()
}

// passedThrough are the InfluxDB answers handed to the caller as they are: they describe the caller's data (a
// field type already stored differently, a point InfluxDB refuses), never the gateway's token or setup.
var passedThrough = map[int]bool{http.StatusBadRequest: true, http.StatusRequestEntityTooLarge: true, http.StatusUnprocessableEntity: true}

// writeError answers err the way InfluxDB's write API does: {"code": …, "message": …}, and returns the status. A
// refusal InfluxDB itself made about the data is passed through; 5xx causes are logged and answered with a fixed
// text; 429 and 503 carry Retry-After (the client libraries wait for it).
func writeError(w http.ResponseWriter, r *http.Request, err error) int {
	ctx := r.Context()
	var he *influx.HTTPError
	if errors.As(err, &he) && passedThrough[he.Status] {
		body := influxBody(he)
		api.Logger(ctx).InfoContext(ctx, "write refused by InfluxDB", slog.Int("status", he.Status), slog.String("message", body.Message))
		writeBody(w, he.Status, body)
		return he.Status
	}
	var e *api.Error
	if !errors.As(err, &e) {
		e = &api.Error{Code: api.Internal, Err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) && e.Code == api.Internal {
		e = &api.Error{Code: api.Timeout, Err: err}
	}
	status := statusOf(e.Code)
	msg := e.Message
	switch {
	case status >= 500:
		api.Logger(ctx).ErrorContext(ctx, "write failed", slog.String("code", string(e.Code)), slog.String("error", e.Error()))
		msg = "internal error"
		if status == http.StatusServiceUnavailable {
			msg = "InfluxDB is unavailable, try again later"
		}
	default:
		api.Logger(ctx).InfoContext(ctx, "write refused", slog.String("code", string(e.Code)), slog.String("reason", msg))
	}
	if (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	code, ok := influxCode[e.Code]
	if !ok {
		code = "internal error"
	}
	writeBody(w, status, errorBody{Code: code, Message: msg})
	return status
}

// errorBody is InfluxDB's error answer.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeBody(w http.ResponseWriter, status int, b errorBody) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(b)
}

// influxBody is InfluxDB's own answer when it is the usual JSON error, else one built from its status.
func influxBody(he *influx.HTTPError) errorBody {
	var b errorBody
	if json.Unmarshal([]byte(he.Message), &b) == nil && b.Code != "" {
		return b
	}
	code := "invalid"
	switch he.Status {
	case http.StatusUnprocessableEntity:
		code = "unprocessable entity"
	case http.StatusRequestEntityTooLarge:
		code = "request too large"
	}
	return errorBody{Code: code, Message: clip([]byte(he.Message), 512)}
}
