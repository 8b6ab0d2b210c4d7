// Command backfillworker is the BackfillWorkerFunction: the asynchronous target of WriteMissingFunction, it writes
// one chunk of generated points with the admin token. A returned error makes Lambda retry the event and finally
// send it to the dead-letter queue.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/iot-center/iot-center-serverless/shared/backfill"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/metrics"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
)

func main() {
	d := lambdaapp.Init()
	cfg := d.Config
	w := &backfill.Worker{
		Influx:            d.Influx,
		Bucket:            cfg.Bucket,
		Gen:               sensors.Generator{Lat: cfg.DefaultLat, Lon: cfg.DefaultLon},
		Metrics:           metrics.Stdout,
		DownsampledBucket: cfg.BucketDownsampled,
	}
	lambda.Start(w.Handle)
}
