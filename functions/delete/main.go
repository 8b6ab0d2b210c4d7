// Command delete is the DeleteFunction: DELETE /api/devices/{deviceId}, revoke and unregister (optionally delete the
// data, and queue the second data pass on the purge queue: see registry.PurgeLate).
package main

import (
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/wiring"
)

func main() { lambdaapp.HTTP(wiring.Delete) }
