package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/authztest"
	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/routetest"
	"github.com/iot-center/iot-center-serverless/shared/api"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

func TestRoutesMatchTemplate(t *testing.T) {
	env := map[string]string{"CHUNK_QUEUE_URL": "http://127.0.0.1:1/123456789012/ChunkQueue", "AWS_REGION": "us-east-1",
		"STATE_TABLE": "state"}
	routetest.Check(t, "WriteMissingFunction", routetest.Mount(t, handler, routetest.Deps(env)))
}

// TestWithoutQueue: under `sam local start-api` CHUNK_QUEUE_URL is the bare logical id (no queue runs): a
// write-missing request is answered 501 with a JSON message saying so, before anything is recorded.
func TestWithoutQueue(t *testing.T) {
	env := map[string]string{"CHUNK_QUEUE_URL": "ChunkQueue", "AWS_REGION": "us-east-1"}
	h := api.Handler(authztest.Operator(routetest.Mount(t, handler, routetest.Deps(env)))) // every write-missing route is the operator's
	for _, path := range []string{"/api/write-missing", "/api/devices/dev1/write-missing"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, nil))
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("POST %s: %d %q is not JSON: %v", path, rec.Code, rec.Body, err)
		}
		if rec.Code != http.StatusNotImplemented || !strings.Contains(rec.Body.String(), "sam local") {
			t.Errorf("POST %s: %d %s, want 501 naming sam local", path, rec.Code, rec.Body)
		}
	}
}

// TestRoles: every route answers every caller as routetest.Access says, mounted as main mounts it.
func TestRoles(t *testing.T) {
	d := routetest.Live(t, map[string]string{"CHUNK_QUEUE_URL": "ChunkQueue", "AWS_REGION": "us-east-1"})
	routetest.Roles(t, "WriteMissingFunction", routetest.Mount(t, handler, d), &d)
}
