// Command devices is the DevicesFunction: GET /api/devices, the registered devices (never tokens).
package main

import (
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

func main() {
	d := lambdaapp.Init()
	lambdaapp.StartHTTP(registry.NewHandlers(registry.New(d.Influx, d.Config)).Mux(registry.RouteList))
}
