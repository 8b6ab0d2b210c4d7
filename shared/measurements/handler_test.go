package measurements_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/iot-center/iot-center-serverless/internal/authztest"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/iot-center/iot-center-serverless/internal/devstack"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/measurements"
)

// TestThroughAPIGatewayAdapter runs the routes as the query function does (payload 2.0 adapter, under an
// invocation deadline): path values and the raw query string (an unescaped '+' offset included) reach the
// handler, JSON and CSV come back as text.
func TestThroughAPIGatewayAdapter(t *testing.T) {
	f := newFixture(t)
	adapter := httpadapter.NewV2(api.Handler(f.h))
	tests := []struct {
		name, path, rawQuery, accept, wantType string
		wantStatus                             int
	}{
		{"json", "/api/devices/dev1/measurements", "start=2026-01-01T01:00:00+01:00&every=10m&fields=CO2", "", "application/json", 200},
		{"csv", "/api/devices/dev1/measurements", "start=-1h&every=raw", "text/csv", "text/csv; charset=utf-8", 200},
		{"summary", "/api/devices/dev1/summary", "range=1h", "", "application/json", 200},
		{"unregistered", "/api/devices/ghost/summary", "", "", "application/json", 404},
		{"bad param", "/api/devices/dev1/measurements", "fn=median", "", "application/json", 400},
		// durations that overflow time.Duration are refused, not wrapped into small ones
		{"start overflows", "/api/devices/dev1/measurements", "start=-213505d", "", "application/json", 400},
		{"every overflows", "/api/devices/dev1/measurements", "start=-1h&every=30501w", "", "application/json", 400},
		{"range overflows", "/api/devices/dev1/summary", "range=213505d", "", "application/json", 400},
		{"csv and json, json preferred", "/api/devices/dev1/measurements", "start=-1h&every=raw", "application/json, text/csv;q=0.5", "application/json", 200},
		{"no route", "/api/devices/dev1/other", "", "", "application/json", 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req := events.APIGatewayV2HTTPRequest{
				Version: "2.0", RawPath: tc.path, RawQueryString: tc.rawQuery, RouteKey: "GET " + tc.path,
				Headers: map[string]string{"accept": tc.accept},
				RequestContext: events.APIGatewayV2HTTPRequestContext{RequestID: "req-1",
					HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: http.MethodGet, Path: tc.path}},
			}
			res, err := adapter.ProxyWithContext(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.wantStatus || res.Headers["Content-Type"] != tc.wantType || res.IsBase64Encoded {
				t.Fatalf("status %d type %q base64 %v, want %d %q text (body %.200s)", res.StatusCode, res.Headers["Content-Type"],
					res.IsBase64Encoded, tc.wantStatus, tc.wantType, res.Body)
			}
			if tc.name == "json" {
				var m measResp
				if err := json.Unmarshal([]byte(res.Body), &m); err != nil || m.Start != minute(0) || len(m.Time) != 6 {
					t.Errorf("body = %.300s (err %v), want start %s and 6 rows", res.Body, err, minute(0))
				}
			}
			if tc.name == "csv" && !strings.HasPrefix(res.Body, "time,Temperature,TVOC,Pressure,Humidity,CO2\r\n"+minute(0)+",0.25,0,,60,400\r\n") {
				t.Errorf("CSV = %.200s", res.Body)
			}
		})
	}
}

// TestInfluxDown503: an unreachable InfluxDB is a 503 JSON; neither the answer nor the log
// carries the admin token.
func TestInfluxDown503(t *testing.T) {
	f := newFixture(t)
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	const token = "admin-token-that-must-not-leak"
	down := influx.New(fmt.Sprintf("http://127.0.0.1:%d", port), token, "org", influx.Options{})
	defer down.Close()
	var logs bytes.Buffer
	prev := api.BaseLogger()
	api.SetBaseLogger(slog.New(slog.NewJSONHandler(&logs, nil)))
	defer api.SetBaseLogger(prev)

	h := api.Handler(authztest.Operator(measurements.NewService(down, f.reg, f.bucket, 5*time.Second).Routes()))
	for _, path := range []string{"/api/devices/dev1/measurements", "/api/devices/dev1/summary"} {
		f.h = h
		code, body := f.get(t, path, "")
		if code != http.StatusServiceUnavailable {
			t.Fatalf("GET %s = %d %s, want 503", path, code, body)
		}
		if msg, _ := errorBody(t, body); msg != "InfluxDB is unavailable, try again later" {
			t.Errorf("error = %q", msg)
		}
	}
	if !strings.Contains(logs.String(), "request failed") {
		t.Errorf("the failure was not logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the log holds the token: %s", logs.String())
	}
}
