package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// HealthTimeout bounds the check: a hung InfluxDB must turn into a 503, not a Lambda timeout.
const HealthTimeout = 3 * time.Second

// HealthResponse is the body of GET /api/health.
type HealthResponse struct {
	Status string       `json:"status"`
	Influx InfluxHealth `json:"influxdb"`
}

// InfluxHealth is InfluxDB's own status ("pass") and version.
type InfluxHealth struct {
	Status  string `json:"status"`
	Version string `json:"version,omitempty"`
}

// HealthHandler serves GET /api/health: 200 with InfluxDB's status and version when reachable and passing, 503 JSON
// when not.
func HealthHandler(hc *influx.Client) *api.Mux {
	mux := api.NewMux()
	mux.HandleFunc("GET /api/health", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), HealthTimeout)
		defer cancel()
		status, version, err := hc.Health(ctx)
		if err == nil && status != "pass" {
			err = api.Errorf(api.Unavailable, "InfluxDB reports status %q", status)
		}
		if err != nil {
			Emit(ctx, Stdout, "HealthCheckFailed", 1, Count)
			api.WriteError(w, r, &api.Error{Code: api.Unavailable, Err: err,
				Extra: map[string]any{"status": "fail", "influxdb": InfluxHealth{Status: "fail"}}})
			return
		}
		api.WriteJSON(w, http.StatusOK, HealthResponse{Status: "pass", Influx: InfluxHealth{Status: status, Version: version}})
	})
	mux.NotFound("no such route")
	return mux
}
