// Command backfillworker is the BackfillWorkerFunction: the chunk queue's (SQS) event source mapping runs it, one
// task at a time, at most ScalingConfig.MaximumConcurrency at once. It plans jobs and writes chunks of generated
// points; a task that keeps failing ends on the dead-letter queue (the redrive policy).
package main

import (
	"context"

	"github.com/iot-center/iot-center-serverless/shared/backfill"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/metrics"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
)

func main() { lambdaapp.Event(handler) }

func handler(ctx context.Context, d lambdaapp.Deps) (any, error) {
	env, cfg := d.Env(), d.Config
	url := env.String("CHUNK_QUEUE_URL", "")
	chunk := env.Int("CHUNK_MINUTES", 1440, 60, backfill.MaxChunkMinutes)
	batch := env.Int("BATCH_DEVICES", 0, 0, backfill.MaxBatchDevices) // 0: sized to the window (backfill.BatchSize)
	queue, err := backfill.ChunkQueue(ctx, url)
	if err != nil {
		return nil, err
	}
	r := &backfill.Runner{
		Worker: &backfill.Worker{Influx: d.Influx, Bucket: cfg.Bucket, Metrics: metrics.Stdout,
			Gen: sensors.Generator{Lat: cfg.DefaultLat, Lon: cfg.DefaultLon}, DownsampledBucket: cfg.BucketDownsampled},
		Planner:      &backfill.Planner{Influx: d.Influx, Bucket: cfg.Bucket},
		Jobs:         &backfill.JobStore{Table: d.Table()},
		Queue:        queue,
		Devices:      d.Registry(),
		ChunkMinutes: chunk,
		BatchDevices: batch,
	}
	return r.HandleSQS, nil
}
