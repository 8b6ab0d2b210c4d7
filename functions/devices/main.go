// Command devices is the DevicesFunction: GET /api/devices, the registered devices (never tokens) with each one's
// lastSeen and status, paged with ?limit=&after=.
package main

import (
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/fleet"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

func main() { lambdaapp.StartHTTP(handler(lambdaapp.Init())) }

// handler is the function's routes (wiring_test.go compares them with template.yaml).
func handler(d lambdaapp.Deps) *api.Mux {
	svc := &fleet.Service{
		Registry: d.Registry(),
		Health: &fleet.Health{Influx: d.Influx, Bucket: d.Config.Bucket,
			Interval: time.Duration(d.Config.MeasurementInterval) * time.Second},
	}
	mux := api.NewMux()
	mux.HandleFunc(registry.RouteList, svc.List)
	return mux
}
