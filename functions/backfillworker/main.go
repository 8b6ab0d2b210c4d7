// Command backfillworker is the BackfillWorkerFunction: the chunk queue's (SQS) event source mapping runs it, one
// task at a time, at most ScalingConfig.MaximumConcurrency at once. It plans jobs (plan and batch tasks) and writes
// chunks of generated points with the admin token. A failed task stays on the queue (retried after a backoff) and
// the redrive policy finally moves it to the dead-letter queue.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/backfill"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/metrics"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

func main() {
	d := lambdaapp.Init()
	cfg := d.Config
	env := d.Env()
	queueURL := env.String("CHUNK_QUEUE_URL", "")
	chunk := env.Int("CHUNK_MINUTES", 1440, 60, backfill.MaxChunkMinutes)
	batch := env.Int("BATCH_DEVICES", 0, 0, backfill.MaxBatchDevices) // 0: sized to the window (backfill.BatchSize)
	lambdaapp.Check(env)
	queue, err := backfill.ChunkQueue(context.Background(), queueURL)
	if err != nil {
		api.Exit("invalid configuration", err)
	}
	table, err := store.FromEnv(context.Background(), d.Getenv)
	if err != nil {
		api.Exit("invalid configuration", err)
	}
	r := &backfill.Runner{
		Worker: &backfill.Worker{
			Influx:            d.Influx,
			Bucket:            cfg.Bucket,
			Gen:               sensors.Generator{Lat: cfg.DefaultLat, Lon: cfg.DefaultLon},
			Metrics:           metrics.Stdout,
			DownsampledBucket: cfg.BucketDownsampled,
		},
		Planner:      &backfill.Planner{Influx: d.Influx, Bucket: cfg.Bucket},
		Jobs:         &backfill.JobStore{Table: table},
		Queue:        queue,
		Devices:      d.Registry(),
		ChunkMinutes: chunk,
		BatchDevices: batch,
	}
	lambda.Start(r.HandleSQS)
}
