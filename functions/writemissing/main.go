// Command writemissing is the WriteMissingFunction: it plans write-missing backfills, fans the chunks out to the
// worker function (asynchronous lambda:Invoke), and reports coverage.
package main

import (
	"context"
	"errors"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/backfill"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

func main() { lambdaapp.StartHTTP(handler(lambdaapp.Init())) }

// handler is the function's routes (wiring_test.go compares them with template.yaml).
func handler(d lambdaapp.Deps) *api.Mux {
	env := d.Env()
	worker := env.String("WORKER_FUNCTION", "")
	chunk := env.Int("CHUNK_MINUTES", 1440, 1, backfill.MaxChunkMinutes)
	lambdaapp.Check(env)
	if worker == "" {
		api.Exit("invalid configuration", errors.New("WORKER_FUNCTION is required (the backfill worker's name)"))
	}
	// AWS_ENDPOINT_URL_LAMBDA (local API) is honoured by the default configuration: one code path.
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		api.Exit("loading AWS configuration", err)
	}
	svc := &backfill.Service{
		Devices:      backfill.RegistryDevices{R: registry.New(d.Influx, d.Config)},
		Planner:      &backfill.Planner{Influx: d.Influx, Bucket: d.Config.Bucket},
		Dispatcher:   &backfill.LambdaDispatcher{Client: lambda.NewFromConfig(awsCfg), Function: worker},
		ChunkMinutes: chunk,
		MaxDevices:   d.Config.MaxDevices,
	}
	return svc.Handler()
}
