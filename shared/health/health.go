// Package health serves GET /api/health: InfluxDB's own /health, which needs no token, so the function holds no
// secret and needs no SSM access.
package health

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/metrics"
)

// Timeout bounds the check: a hung InfluxDB must turn into a 503, not a Lambda timeout.
const Timeout = 3 * time.Second

// Response is the body of GET /api/health.
type Response struct {
	Status string       `json:"status"`
	Influx InfluxHealth `json:"influxdb"`
}

// InfluxHealth is InfluxDB's own status ("pass") and version.
type InfluxHealth struct {
	Status  string `json:"status"`
	Version string `json:"version,omitempty"`
}

// Service checks InfluxDB through c; a failed check is counted on Metrics (HealthCheckFailed).
type Service struct {
	c       *influx.Client
	Metrics io.Writer
}

// NewService checks the InfluxDB c points at (a client without a token is enough).
func NewService(c *influx.Client) *Service { return &Service{c: c, Metrics: metrics.Stdout} }

// Routes serves GET /api/health, open to every caller.
func (s *Service) Routes() *api.Mux {
	mux := api.NewMux()
	mux.HandleFunc("GET /api/health", s.health)
	mux.NotFound("no such route")
	return mux
}

// health answers 200 with InfluxDB's status and version when it passes, 503 JSON when not.
func (s *Service) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), Timeout)
	defer cancel()
	status, version, err := s.c.Health(ctx)
	if err == nil && status != "pass" {
		err = api.Errorf(api.Unavailable, "InfluxDB reports status %q", status)
	}
	if err != nil {
		metrics.Emit(ctx, s.Metrics, "HealthCheckFailed", 1, metrics.Count)
		api.WriteError(w, r, &api.Error{Code: api.Unavailable, Err: err,
			Extra: map[string]any{"status": "fail", "influxdb": InfluxHealth{Status: "fail"}}})
		return
	}
	api.WriteJSON(w, http.StatusOK, Response{Status: "pass", Influx: InfluxHealth{Status: status, Version: version}})
}
