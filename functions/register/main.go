// Command register is the RegisterFunction: explicit device registration (one id or up to 1,000 at once) and
// token rotation.
package main

import (
	"context"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/deviceapi"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
)

func main() { lambdaapp.HTTP(handler) }

// handler is the function's routes (wiring_test.go compares them with template.yaml).
func handler(_ context.Context, d lambdaapp.Deps) (*api.Mux, error) {
	return deviceapi.NewService(d.Registry()).Routes().Only(deviceapi.RouteRegister, deviceapi.RouteRotate, deviceapi.RouteBulk), nil
}
