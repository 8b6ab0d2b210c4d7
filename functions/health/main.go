// Command health serves GET /api/health. It needs only INFLUX_URL: InfluxDB's /health takes no token, so the check
// works without the admin token (and the function needs no SSM access).
package main

import (
	"os"

	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/metrics"
)

func main() {
	env := &config.Env{Get: os.Getenv}
	url := env.String("INFLUX_URL", "")
	env.URL("INFLUX_URL", url)
	lambdaapp.Check(env)
	c := influx.New(url, "", os.Getenv("INFLUX_ORG"), influx.Options{HTTPTimeout: metrics.HealthTimeout})
	lambdaapp.StartHTTP(metrics.HealthHandler(c))
}
