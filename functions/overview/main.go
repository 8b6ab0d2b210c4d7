// Command overview is the OverviewFunction: the fleet overview (GET /api/overview: status counts now and over a
// range; /api/overview/silent: the silent devices, paged; /api/overview/positions: every device's position).
package main

import (
	"context"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/overview"
)

func main() { lambdaapp.HTTP(handler) }

// handler is the function's routes (wiring_test.go compares them with template.yaml).
func handler(_ context.Context, d lambdaapp.Deps) (*api.Mux, error) {
	return overview.NewService(d.Influx, d.Config.Bucket, d.Table()).Routes(), nil
}
