// Command query is the QueryFunction: a device's dashboard data (GET /api/devices/{deviceId}/measurements) and
// gauges (GET /api/devices/{deviceId}/summary).
package main

import (
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/wiring"
)

func main() { lambdaapp.HTTP(wiring.Query) }
