// Command overview is the OverviewFunction: the fleet overview (GET /api/overview: status counts now and over a
// range; /api/overview/silent: the silent devices, paged; /api/overview/positions: every device's position).
package main

import (
	"context"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/overview"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

func main() {
	d := lambdaapp.Init()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t, err := store.FromEnv(ctx, d.Getenv)
	if err != nil {
		api.Exit("invalid configuration", err)
	}
	lambdaapp.StartHTTP(handler(d, t))
}

// handler is the function's routes (wiring_test.go compares them with template.yaml).
func handler(d lambdaapp.Deps, t *store.Table) *api.Mux {
	return overview.NewService(d.Influx, d.Config.Bucket, t).Routes()
}
