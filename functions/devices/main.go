// Command devices is the DevicesFunction: GET /api/devices, the registered devices (never tokens) with each one's
// lastSeen and status, paged with ?limit=&after=.
package main

import (
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/fleet"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
)

func main() { lambdaapp.StartHTTP(handler(lambdaapp.Init())) }

// handler is the function's routes (wiring_test.go compares them with template.yaml).
func handler(d lambdaapp.Deps) *api.Mux {
	return fleet.NewService(d.Registry(), d.Influx, d.Config).Routes()
}
