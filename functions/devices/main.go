// Command devices is the DevicesFunction: GET /api/devices, the registered devices (never credentials) a page at a
// time with each one's lastSeen and status (filtered by status, searched by id prefix, sorted by id or lastSeen),
// and GET /api/devices/counts.
package main

import (
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/wiring"
)

func main() { lambdaapp.HTTP(wiring.Devices) }
