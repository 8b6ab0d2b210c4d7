// Command devices is the DevicesFunction: GET /api/devices, the registered devices (never tokens).
package main

import (
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

func main() { lambdaapp.StartHTTP(handler(lambdaapp.Init())) }

// handler is the function's routes (wiring_test.go compares them with template.yaml).
func handler(d lambdaapp.Deps) *api.Mux {
	return registry.NewHandlers(registry.New(d.Influx, d.Config)).Mux(registry.RouteList)
}
