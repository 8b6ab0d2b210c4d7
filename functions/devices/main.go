// Command devices is the DevicesFunction: GET /api/devices, the registered devices (never credentials) a page at a
// time with each one's lastSeen and status (filtered by status, searched by id prefix, sorted by id or lastSeen),
// and GET /api/devices/counts.
package main

import (
	"context"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/fleet"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
)

func main() { lambdaapp.HTTP(handler) }

// handler is the function's routes (wiring_test.go compares them with template.yaml).
func handler(_ context.Context, d lambdaapp.Deps) (*api.Mux, error) {
	return fleet.NewService(d.Table(), d.Influx, d.Config).Routes(), nil
}
