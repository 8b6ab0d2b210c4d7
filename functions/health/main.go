// Command health serves GET /api/health. It needs only INFLUX_URL: InfluxDB's /health takes no token, so the check
// works without the admin token (and the function needs no SSM access).
package main

import (
	"os"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/wiring"
)

func main() {
	h, err := wiring.Health(os.Getenv)
	if err != nil {
		api.Exit("invalid configuration", err)
	}
	lambdaapp.StartHTTP(h)
}
