package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/iot-center/iot-center-serverless/shared/api"
)

func TestValidDeviceID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"dev1", true}, {"A", true}, {"virtual_device-1.2", true}, {strings.Repeat("a", 64), true},
		{"", false}, {strings.Repeat("a", 65), false}, {"-dev", false}, {"_dev", false}, {".dev", false},
		{"dev 1", false}, {`dev"`, false}, {"dev'1", false}, {"dev\n1", false}, {"dev/1", false},
		{"dev?x=1", false}, {"dev%201", false}, {"d\u00e9v", false}, {`") |> drop(`, false}, {"r._measurement", true}, // legal: ids reach Flux only as extern data
		{"dev;1", false}, {"dev\\1", false}, {"dev\x00", false},
	}
	for _, tc := range tests {
		if got := api.ValidDeviceID(tc.id); got != tc.want {
			t.Errorf("ValidDeviceID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestCodeStatusTable(t *testing.T) {
	tests := []struct {
		code api.Code
		want int
	}{
		{api.Invalid, 400}, {api.Unauthorized, 401}, {api.Forbidden, 403}, {api.NotFound, 404}, {api.Conflict, 409},
		{api.TooLarge, 413}, {api.TooMany, 429}, {api.Internal, 500}, {api.Unavailable, 503}, {api.Timeout, 504},
		{api.Code("unknown"), 500},
	}
	for _, tc := range tests {
		if got := tc.code.Status(); got != tc.want {
			t.Errorf("%s.Status() = %d, want %d", tc.code, got, tc.want)
		}
	}
}

// captureLogs routes the process logger into a buffer for the test.
func captureLogs(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	old := api.BaseLogger()
	api.SetBaseLogger(slog.New(slog.NewJSONHandler(&buf, nil)))
	t.Cleanup(func() { api.SetBaseLogger(old) })
	return &buf
}

func TestWriteErrorNeverLeaksInternalCauses(t *testing.T) {
	const secret = "admin-token-SECRET"
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantBody   map[string]any
	}{
		{"invalid param", api.InvalidParam("start", "start must be a duration"), 400,
			map[string]any{"error": "start must be a duration", "param": "start"}},
		{"not found", api.Errorf(api.NotFound, "device %s is not registered", "d1"), 404,
			map[string]any{"error": "device d1 is not registered"}},
		{"extra members", &api.Error{Code: api.Forbidden, Extra: map[string]any{"id": "d1", "registered": false}}, 403,
			map[string]any{"id": "d1", "registered": false}},
		{"plain error", fmt.Errorf("influx said %s", secret), 500, map[string]any{"error": "internal error"}},
		{"wrapped internal", api.Wrap(api.Internal, errors.New(secret), "creating authorization"), 500,
			map[string]any{"error": "internal error"}},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), 504,
			map[string]any{"error": "timed out waiting for InfluxDB"}},
		{"unavailable", api.Wrap(api.Unavailable, errors.New(secret), "down"), 503,
			map[string]any{"error": "InfluxDB is unavailable, try again later"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := captureLogs(t)
			rec := httptest.NewRecorder()
			api.WriteError(rec, httptest.NewRequest("GET", "/api/x", nil), tc.err)
			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q is not JSON: %v", rec.Body, err)
			}
			if len(got) != len(tc.wantBody) {
				t.Errorf("body = %v, want %v", got, tc.wantBody)
			}
			for k, v := range tc.wantBody {
				if got[k] != v {
					t.Errorf("body[%s] = %v, want %v", k, got[k], v)
				}
			}
			if strings.Contains(rec.Body.String(), secret) {
				t.Errorf("response leaks the cause: %s", rec.Body)
			}
			if tc.wantStatus >= 500 && !strings.Contains(logs.String(), `"level":"ERROR"`) {
				t.Errorf("5xx not logged: %s", logs)
			}
		})
	}
}

func TestDecodeJSON(t *testing.T) {
	type body struct {
		Days int `json:"days"`
	}
	tests := []struct {
		name     string
		in       string
		wantDays int
		wantCode api.Code
	}{
		{"empty body keeps defaults", "", 7, ""},
		{"value", `{"days": 3}`, 3, ""},
		{"unknown field", `{"dayz": 3}`, 7, api.Invalid},
		{"wrong type", `{"days": "3"}`, 7, api.Invalid},
		{"syntax", `{"days": `, 7, api.Invalid},
		{"two objects", `{"days": 1}{"days": 2}`, 1, api.Invalid},
		{"too large", `{"days": 1, "x": "` + strings.Repeat("a", api.MaxBodyBytes) + `"}`, 7, api.TooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := body{Days: 7}
			err := api.DecodeJSON(httptest.NewRequest("POST", "/", strings.NewReader(tc.in)), &b)
			if got := api.CodeOf(err); got != tc.wantCode {
				t.Errorf("code = %q (%v), want %q", got, err, tc.wantCode)
			}
			if tc.wantCode == "" && b.Days != tc.wantDays {
				t.Errorf("days = %d, want %d", b.Days, tc.wantDays)
			}
		})
	}
}

func TestHandlerRecoversPanics(t *testing.T) {
	logs := captureLogs(t)
	h := api.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "internal error") {
		t.Errorf("got %d %s, want 500 internal error", rec.Code, rec.Body)
	}
	if !strings.Contains(logs.String(), "panic in handler") {
		t.Errorf("panic not logged: %s", logs)
	}
}

// A device route's log lines name the device: DeviceID validates the path parameter and tags the logger.
func TestDeviceIDAddsDeviceIDToLogs(t *testing.T) {
	logs := captureLogs(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /d/{deviceId}", func(w http.ResponseWriter, r *http.Request) {
		r, id, err := api.DeviceID(r)
		if err != nil || id != "dev-42" {
			t.Errorf("DeviceID = %q %v, want dev-42", id, err)
		}
		api.Logger(r.Context()).InfoContext(r.Context(), "hello")
	})
	api.Handler(mux).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/d/dev-42", nil))
	if !strings.Contains(logs.String(), `"deviceId":"dev-42"`) {
		t.Errorf("log line without deviceId: %s", logs)
	}
}

func TestWantsText(t *testing.T) {
	for _, tc := range []struct {
		name, query, accept string
		want                bool
	}{
		{"nothing", "", "", false},
		{"json", "", "application/json", false},
		{"text", "", "text/plain", true},
		{"text with charset", "", "text/plain; charset=utf-8", true},
		{"json preferred by order", "", "application/json, text/plain;q=0.9", false},
		{"text preferred by q", "", "application/json;q=0.5, text/plain", true},
		{"text refused", "", "text/plain;q=0", false},
		{"parameter", "accept=text/plain", "application/json", true},
		{"parameter json", "accept=application/json", "text/plain", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x?"+tc.query, nil)
			if tc.accept != "" {
				r.Header.Set("Accept", tc.accept)
			}
			if got := api.WantsText(r); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWriteErrorAsText(t *testing.T) {
	r := httptest.NewRequest("GET", "/x?accept=text/plain", nil)
	w := httptest.NewRecorder()
	api.WriteError(w, r, &api.Error{Code: api.Forbidden, Message: "no", Extra: map[string]any{"id": "d1", "registered": false}})
	want := "message: no\nid: d1\nregistered: false\n"
	if w.Code != 403 || w.Body.String() != want || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		t.Errorf("got %d %q %q, want 403 text/plain %q", w.Code, w.Header().Get("Content-Type"), w.Body.String(), want)
	}
	w = httptest.NewRecorder()
	api.WriteError(w, r, errors.New("influx: token abc123 refused"))
	if w.Code != 500 || w.Body.String() != "message: internal error\n" {
		t.Errorf("5xx as text: got %d %q, want the fixed message only", w.Code, w.Body.String())
	}
}
