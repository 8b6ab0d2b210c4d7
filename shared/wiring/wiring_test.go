package wiring_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/iot-center/iot-center-serverless/internal/authztest"
	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/routetest"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/wiring"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

// env is what the functions read beyond the configuration: a chunk queue as sam local leaves it (none).
var env = map[string]string{"CHUNK_QUEUE_URL": "ChunkQueue", "AWS_REGION": "us-east-1"}

// mounted is every function behind routes, built as its main builds it from d (nil: deps that answer nothing).
func mounted(t *testing.T, d *lambdaapp.Deps) map[string]*api.Mux {
	t.Helper()
	out := map[string]*api.Mux{}
	for id, build := range wiring.HTTP {
		deps := routetest.Deps(env)
		if d != nil {
			deps = *d
		}
		out[id] = routetest.Mount(t, build, deps)
	}
	influxURL := "http://127.0.0.1:9"
	if d != nil {
		influxURL = d.Config.InfluxURL
	}
	h, err := wiring.Health(func(k string) string { return map[string]string{"INFLUX_URL": influxURL}[k] })
	if err != nil {
		t.Fatal(err)
	}
	out["HealthFunction"] = h
	if out["UiFunction"], err = wiring.UI(fstest.MapFS{"index.html": {Data: []byte("<html></html>")}}); err != nil {
		t.Fatal(err)
	}
	return out
}

// Every function template.yaml routes to is built here, and serves exactly its events' routes.
func TestRoutesMatchTemplate(t *testing.T) {
	fns := mounted(t, nil)
	for id := range routetest.TemplateRoutes(t) {
		if fns[id] == nil {
			t.Errorf("%s has routes in template.yaml and no build in wiring", id)
		}
	}
	for id, h := range fns {
		routetest.Check(t, id, h)
	}
}

// TestRoles: every route answers every caller as routetest.Access says, mounted as the functions mount it, over
// a real InfluxDB and state table.
func TestRoles(t *testing.T) {
	d := routetest.Live(t, env)
	fns := mounted(t, &d)
	for _, id := range slices.Sorted(maps.Keys(fns)) {
		t.Run(id, func(t *testing.T) { routetest.Roles(t, id, fns[id], &d) })
	}
}

// TestWriteMissingWithoutQueue: under `sam local start-api` CHUNK_QUEUE_URL is the bare logical id (no queue
// runs): a write-missing request is answered 501 with a JSON message saying so, before anything is recorded.
func TestWriteMissingWithoutQueue(t *testing.T) {
	h := api.Handler(authztest.Operator(routetest.Mount(t, wiring.WriteMissing, routetest.Deps(env))))
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
