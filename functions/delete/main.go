// Command delete is the DeleteFunction: DELETE /api/devices/{deviceId}, revoke and unregister (optionally delete the data).
package main

import (
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

func main() {
	d := lambdaapp.Init()
	lambdaapp.StartHTTP(registry.NewHandlers(registry.New(d.Influx, d.Config)).Mux(registry.RouteDelete))
}
