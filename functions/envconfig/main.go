// Command envconfig is the EnvConfigFunction: GET /api/env/{deviceId}, the iot-center-v2 device configuration (registers unknown devices).
package main

import (
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/deviceapi"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
)

func main() { lambdaapp.StartHTTP(handler(lambdaapp.Init())) }

// handler is the function's routes (wiring_test.go compares them with template.yaml).
func handler(d lambdaapp.Deps) *api.Mux {
	return deviceapi.NewService(d.Registry()).Routes().Only(deviceapi.RouteEnv)
}
