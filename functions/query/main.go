// Command query is the QueryFunction: a device's dashboard data (GET /api/devices/{deviceId}/measurements) and
// gauges (GET /api/devices/{deviceId}/summary).
package main

import (
	"context"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/measurements"
)

func main() { lambdaapp.HTTP(handler) }

// handler is the function's routes (wiring_test.go compares them with template.yaml).
func handler(_ context.Context, d lambdaapp.Deps) (*api.Mux, error) {
	timeout := d.Env().Duration("QUERY_TIMEOUT", measurements.DefaultTimeout, 100*time.Millisecond, 10*time.Minute)
	return measurements.NewService(d.Influx, d.Registry(), d.Config.Bucket, timeout,
		measurements.WithDownsampled(d.Config.BucketDownsampled)).Routes(), nil
}
