// Command overview is the OverviewFunction: the fleet overview (GET /api/overview: status counts now and over a
// range; /api/overview/silent: the silent devices, paged; /api/overview/positions: every device's position).
package main

import (
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/wiring"
)

func main() { lambdaapp.HTTP(wiring.Overview) }
