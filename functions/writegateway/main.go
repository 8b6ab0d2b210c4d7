// Command writegateway is the WriteGatewayFunction: POST /api/v2/write, InfluxDB's write API for devices, checked
// against the schema and written with the gateway's own token (see shared/gateway).
package main

import (
	"context"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/gateway"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/metrics"
	"github.com/iot-center/iot-center-serverless/shared/schema"
)

func main() { lambdaapp.HTTP(handler) }

// handler is the function's routes (wiring_test.go compares them with template.yaml); the state table holds the
// series budgets and the registry's revocation items.
func handler(_ context.Context, d lambdaapp.Deps) (*api.Mux, error) {
	t := d.Table()
	env := d.Env()
	o := gateway.Options{
		Org:          d.Config.Org,
		Bucket:       d.Config.Bucket,
		Retention:    time.Duration(env.Int("DATA_RETENTION_DAYS", 30, 1, 100_000)) * 24 * time.Hour,
		AuthCacheTTL: env.Duration("WRITE_AUTH_CACHE_TTL", gateway.DefaultAuthCacheTTL, time.Second, gateway.MaxAuthCacheTTL),
		RevocationCheck: env.Duration("WRITE_REVOCATION_CHECK", gateway.DefaultRevocationCheck, 100*time.Millisecond,
			gateway.RevocationWindow),
		Rate:              env.Float("WRITE_RATE", 10, -1, 1e6),
		Burst:             env.Int("WRITE_BURST", 50, 1, 1e6),
		MaxPoints:         env.Int("WRITE_MAX_POINTS", gateway.DefaultMaxPoints, 1, 100_000),
		PointRate:         env.Float("WRITE_POINT_RATE", gateway.DefaultPointRate, -1, 1e7),
		PointBurst:        env.Int("WRITE_POINT_BURST", 3*gateway.DefaultMaxPoints, 1, 1e8),
		Metrics:           metrics.Stdout,
		Series:            t,
		SeriesBudget:      env.Int("WRITE_SERIES_BUDGET", gateway.DefaultSeriesBudget, 1, 100_000),
		FleetSeriesBudget: int64(env.Int("WRITE_FLEET_SERIES_BUDGET", gateway.DefaultFleetSeriesBudget, 1, 1_000_000_000)),
	}
	s, err := schema.Load(d.Getenv(schema.EnvExtension))
	if err != nil {
		return nil, err
	}
	o.Schema = s
	// One attempt per request: a device's client library retries on the 503 + Retry-After the gateway answers, so
	// the function never waits out an outage on the device's behalf.
	influxdb := d.NewInflux(influx.Options{HTTPTimeout: 8 * time.Second, Retry: influx.RetryPolicy{MaxAttempts: 1}})
	// credentials are checked against the registry's device items; rotations and deletions learned from its
	// revocation items
	g, err := gateway.NewService(d.Registry(), t, influxdb, o)
	if err != nil {
		return nil, err
	}
	return g.Routes(), nil
}
