// Command query is the QueryFunction: a device's dashboard data (GET /api/devices/{deviceId}/measurements) and
// gauges (GET /api/devices/{deviceId}/summary).
package main

import (
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/measurements"
)

func main() { lambdaapp.StartHTTP(handler(lambdaapp.Init())) }

// handler is the function's routes (wiring_test.go compares them with template.yaml).
func handler(d lambdaapp.Deps) *api.Mux {
	env := d.Env()
	timeout := env.Duration("QUERY_TIMEOUT", measurements.DefaultTimeout, 100*time.Millisecond, 10*time.Minute)
	lambdaapp.Check(env)
	h := measurements.NewService(d.Influx, d.Registry(), d.Config.Bucket, timeout,
		measurements.WithDownsampled(d.Config.BucketDownsampled))
	return h.Routes()
}
