// Command register is the RegisterFunction: explicit device registration and token rotation.
package main

import (
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

func main() {
	d := lambdaapp.Init()
	lambdaapp.StartHTTP(registry.NewHandlers(registry.New(d.Influx, d.Config)).Mux(registry.RouteRegister, registry.RouteRotate))
}
