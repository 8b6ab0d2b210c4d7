// Command envconfig is the EnvConfigFunction: GET /api/env/{deviceId}, the iot-center-v2 device configuration
// (registers unknown devices).
package main

import (
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/wiring"
)

func main() { lambdaapp.HTTP(wiring.EnvConfig) }
