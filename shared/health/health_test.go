package health

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

// getHealth calls the handler like API Gateway would and decodes the JSON body.
func getHealth(t *testing.T, h http.Handler) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/health", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, rec.Body.String())
	}
	return rec.Code, body
}

func TestHealthUpThenDown(t *testing.T) {
	srv := influxtest.Start(t)
	// no token: /health needs none, as in the deployed function
	svc := NewService(influx.New(srv.URL, "", srv.Org, influx.Options{HTTPTimeout: Timeout}))
	var out strings.Builder
	svc.Metrics = &out
	h := svc.Routes()

	code, body := getHealth(t, h)
	if code != http.StatusOK {
		t.Fatalf("up: got %d %v, want 200", code, body)
	}
	db, _ := body["influxdb"].(map[string]any)
	if body["status"] != "pass" || db["status"] != "pass" {
		t.Errorf("up: got %v, want status pass and influxdb.status pass", body)
	}
	if v, _ := db["version"].(string); !strings.HasPrefix(strings.TrimPrefix(v, "v"), "2.") {
		t.Errorf("up: influxdb.version got %q, want v2.x", v)
	}

	srv.Stop(t)
	code, body = getHealth(t, h)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("down: got %d %v, want 503", code, body)
	}
	if body["status"] != "fail" || body["error"] == nil {
		t.Errorf("down: got %v, want status fail and an error", body)
	}
	if s, _ := body["error"].(string); strings.Contains(s, "127.0.0.1") || strings.Contains(s, "refused") {
		t.Errorf("down: error leaks the cause: %q", s)
	}
	if !strings.Contains(out.String(), `"HealthCheckFailed"`) {
		t.Errorf("down: no HealthCheckFailed metric emitted, got %q", out.String())
	}

	srv.Restart(t)
	if code, body := getHealth(t, h); code != http.StatusOK {
		t.Errorf("restarted: got %d %v, want 200", code, body)
	}
}

func TestHealthOtherMethodsNotRouted(t *testing.T) {
	h := NewService(influx.New("http://127.0.0.1:1", "", "org", influx.Options{})).Routes()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/health", nil))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"error"`) {
		t.Errorf("POST /api/health: got %d %s, want 404 JSON", rec.Code, rec.Body.String())
	}
}
