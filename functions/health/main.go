// Command health serves GET /api/health. It needs only INFLUX_URL: InfluxDB's /health takes no token, so the check
// works without the admin token (and the function needs no SSM access).
package main

import (
	"os"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/health"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
)

func main() { lambdaapp.StartHTTP(handler(os.Getenv)) }

// handler is the function's routes (wiring_test.go compares them with template.yaml).
func handler(getenv config.Getenv) *api.Mux {
	env := &config.Env{Get: getenv}
	url := env.String("INFLUX_URL", "")
	env.URL("INFLUX_URL", url)
	lambdaapp.Check(env)
	c := influx.New(url, "", getenv("INFLUX_ORG"), influx.Options{HTTPTimeout: health.Timeout})
	return health.NewService(c).Routes()
}
