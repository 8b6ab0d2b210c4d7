// Package wiring is what each function builds at cold start: which services, over which of lambdaapp's deps,
// narrowed to which routes. functions/<name>/main.go hands one of these to lambdaapp; the tests mount the same ones.
package wiring

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/authz"
	"github.com/iot-center/iot-center-serverless/shared/backfill"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/deviceapi"
	"github.com/iot-center/iot-center-serverless/shared/fleet"
	"github.com/iot-center/iot-center-serverless/shared/gateway"
	"github.com/iot-center/iot-center-serverless/shared/health"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/measurements"
	"github.com/iot-center/iot-center-serverless/shared/metrics"
	"github.com/iot-center/iot-center-serverless/shared/overview"
	"github.com/iot-center/iot-center-serverless/shared/presence"
	"github.com/iot-center/iot-center-serverless/shared/schema"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
	"github.com/iot-center/iot-center-serverless/shared/ui"
)

// HTTP are the functions behind routes, by template.yaml logical id (Health and UI are built from other inputs).
var HTTP = map[string]func(context.Context, lambdaapp.Deps) (*api.Mux, error){
	"EnvConfigFunction":    EnvConfig,
	"RegisterFunction":     Register,
	"DevicesFunction":      Devices,
	"DeleteFunction":       Delete,
	"WriteMissingFunction": WriteMissing,
	"QueryFunction":        Query,
	"OverviewFunction":     Overview,
	"WriteGatewayFunction": WriteGateway,
}

// EnvConfig is GET /api/env/{deviceId}: a device's configuration, registering an unknown one.
func EnvConfig(_ context.Context, d lambdaapp.Deps) (*api.Mux, error) {
	return deviceapi.NewService(d.Registry()).Routes().Only(deviceapi.RouteEnv), nil
}

// Register is explicit registration (one id or up to 1,000) and token rotation.
func Register(_ context.Context, d lambdaapp.Deps) (*api.Mux, error) {
	return deviceapi.NewService(d.Registry()).Routes().Only(deviceapi.RouteRegister, deviceapi.RouteRotate,
		deviceapi.RouteBulk), nil
}

// Devices is the device list and counts.
func Devices(_ context.Context, d lambdaapp.Deps) (*api.Mux, error) {
	return fleet.NewService(d.Table(), d.Influx, d.Config).Routes(), nil
}

// Delete revokes and unregisters a device; a delete with data queues its second pass on the purge queue (none
// under sam local: the first pass only).
func Delete(ctx context.Context, d lambdaapp.Deps) (*api.Mux, error) {
	env := d.Env()
	url := env.String("PURGE_QUEUE_URL", "")
	delay := time.Duration(env.Int("PURGE_DELAY_SECONDS", 90, 1, int(deviceapi.MaxPurgeDelay/time.Second))) * time.Second
	reg := d.Registry()
	switch schedule, err := deviceapi.PurgeQueue(ctx, url, delay); {
	case errors.Is(err, deviceapi.ErrNoPurgeQueue):
		api.BaseLogger().Warn("no purge queue: a delete with data makes its first pass only", slog.String("PURGE_QUEUE_URL", url))
	case err != nil:
		return nil, err
	default:
		reg.SchedulePurge, reg.PurgeDelay = schedule, delay
	}
	return deviceapi.NewService(reg).Routes().Only(deviceapi.RouteDelete), nil
}

// WriteMissing records write-missing jobs and reports them and the coverage; without a chunk queue (sam local)
// its POST routes answer 501.
func WriteMissing(ctx context.Context, d lambdaapp.Deps) (*api.Mux, error) {
	env := d.Env()
	url := env.String("CHUNK_QUEUE_URL", "")
	timeout := time.Duration(env.Int("JOB_TIMEOUT_MINUTES", int(backfill.DefaultJobTimeout/time.Minute), 1, 1440)) * time.Minute
	var queue backfill.Queue
	switch q, err := backfill.ChunkQueue(ctx, url); {
	case errors.Is(err, backfill.ErrNoQueue):
		api.BaseLogger().Warn("no chunk queue: write-missing requests are answered 501", slog.String("CHUNK_QUEUE_URL", url))
	case err != nil:
		return nil, err
	default:
		queue = q
	}
	return backfill.NewService(d.Registry(), d.Influx, d.Config, d.Table(), queue, timeout).Routes(), nil
}

// Query is a device's dashboard data and gauges.
func Query(_ context.Context, d lambdaapp.Deps) (*api.Mux, error) {
	timeout := d.Env().Duration("QUERY_TIMEOUT", measurements.DefaultTimeout, 100*time.Millisecond, 10*time.Minute)
	return measurements.NewService(d.Influx, d.Registry(), d.Config.Bucket, timeout,
		measurements.WithDownsampled(d.Config.BucketDownsampled)).Routes(), nil
}

// Overview is the fleet overview.
func Overview(_ context.Context, d lambdaapp.Deps) (*api.Mux, error) {
	return overview.NewService(d.Influx, d.Config.Bucket, d.Table()).Routes(), nil
}

// WriteGateway is POST /api/v2/write; the state table holds the series budgets and the revocation items.
func WriteGateway(_ context.Context, d lambdaapp.Deps) (*api.Mux, error) {
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
		Series:            d.Table(),
		SeriesBudget:      env.Int("WRITE_SERIES_BUDGET", gateway.DefaultSeriesBudget, 1, 100_000),
		FleetSeriesBudget: int64(env.Int("WRITE_FLEET_SERIES_BUDGET", gateway.DefaultFleetSeriesBudget, 1, 1_000_000_000)),
	}
	s, err := schema.Load(d.Getenv(schema.EnvExtension))
	if err != nil {
		return nil, err
	}
	o.Schema = s
	if d.Config.Gateway() {
		// the fleet-health run reads the devices' presence from this digest in gateway mode (fleet.Service.Digest)
		o.Presence = presence.NewRecorder(presence.DefaultEvery, presence.DefaultMaxPending)
	}
	// One attempt per request: a device's client library retries on the 503 + Retry-After the gateway answers, so
	// the function never waits out an outage on the device's behalf.
	c := d.NewInflux(influx.Options{HTTPTimeout: 8 * time.Second, Retry: influx.RetryPolicy{MaxAttempts: 1}})
	g, err := gateway.NewService(d.Registry(), d.Table(), c, o)
	if err != nil {
		return nil, err
	}
	return g.Routes(), nil
}

// Health is GET /api/health. It needs only INFLUX_URL: InfluxDB's /health takes no token, so the function holds
// no secret (and needs no SSM access).
func Health(getenv config.Getenv) (*api.Mux, error) {
	env := &config.Env{Get: getenv}
	url := env.String("INFLUX_URL", "")
	env.URL("INFLUX_URL", url)
	if err := env.Err(); err != nil {
		return nil, err
	}
	c := influx.New(url, "", getenv("INFLUX_ORG"), influx.Options{HTTPTimeout: health.Timeout})
	return health.NewService(c).Routes(), nil
}

// UI is the dashboard's files, dist being the embedded build (with index.html at its root once built).
func UI(dist fs.FS) (*api.Mux, error) {
	s, err := ui.NewService(dist)
	if err != nil {
		return nil, fmt.Errorf("ui: preparing files: %w", err)
	}
	api.BaseLogger().Info("ui ready", slog.Int("assets", len(s.Assets())))
	return s.Routes(), nil
}

// Authorizer is the HTTP API's Lambda authorizer.
func Authorizer(ctx context.Context, d lambdaapp.Deps) (any, error) {
	keys, err := authz.LoadKeys(ctx, d.Getenv, nil)
	if err != nil {
		return nil, err
	}
	return authz.New(keys, d.Registry()).Handle, nil
}

// BackfillWorker runs the chunk queue's tasks: plans jobs and writes chunks of generated points.
func BackfillWorker(ctx context.Context, d lambdaapp.Deps) (any, error) {
	env, cfg := d.Env(), d.Config
	url := env.String("CHUNK_QUEUE_URL", "")
	chunk := env.Int("CHUNK_MINUTES", 1440, 60, backfill.MaxChunkMinutes)
	batch := env.Int("BATCH_DEVICES", 0, 0, backfill.MaxBatchDevices) // 0: sized to the window (backfill.BatchSize)
	queue, err := backfill.ChunkQueue(ctx, url)
	if err != nil {
		return nil, err
	}
	r := &backfill.Runner{
		Worker: &backfill.Worker{Influx: d.Influx, Bucket: cfg.Bucket, Metrics: metrics.Stdout,
			Gen: sensors.Generator{Lat: cfg.DefaultLat, Lon: cfg.DefaultLon}, DownsampledBucket: cfg.BucketDownsampled},
		Planner:      &backfill.Planner{Influx: d.Influx, Bucket: cfg.Bucket},
		Jobs:         &backfill.JobStore{Table: d.Table()},
		Queue:        queue,
		Devices:      d.Registry(),
		ChunkMinutes: chunk,
		BatchDevices: batch,
	}
	return r.HandleSQS, nil
}

// FleetHealth is the scheduled run keeping the devices' status, the counts and the positions snapshot.
func FleetHealth(_ context.Context, d lambdaapp.Deps) (any, error) {
	svc := fleet.NewService(d.Table(), d.Influx, d.Config)
	svc.Metrics = metrics.Stdout
	return func(ctx context.Context, _ events.CloudWatchEvent) (fleet.Counts, error) { return svc.Check(ctx) }, nil
}

// Purge runs a delete's second data pass once its delay has passed.
func Purge(_ context.Context, d lambdaapp.Deps) (any, error) {
	return deviceapi.NewService(d.Registry()).HandlePurge, nil
}
