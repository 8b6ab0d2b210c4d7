// Command delete is the DeleteFunction: DELETE /api/devices/{deviceId}, revoke and unregister (optionally delete the data).
package main

import (
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

func main() { lambdaapp.StartHTTP(handler(lambdaapp.Init())) }

// handler is the function's routes (wiring_test.go compares them with template.yaml).
func handler(d lambdaapp.Deps) *api.Mux {
	return registry.NewHandlers(d.Registry()).Mux(registry.RouteDelete)
}
