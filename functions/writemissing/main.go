// Command writemissing is the WriteMissingFunction: it records write-missing jobs and queues their plan task on
// the chunk queue (SQS), reports jobs, and reports coverage.
package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/backfill"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
)

func main() { lambdaapp.HTTP(handler) }

// handler is the function's routes (wiring_test.go compares them with template.yaml).
func handler(ctx context.Context, d lambdaapp.Deps) (*api.Mux, error) {
	env := d.Env()
	url := env.String("CHUNK_QUEUE_URL", "")
	timeout := time.Duration(env.Int("JOB_TIMEOUT_MINUTES", int(backfill.DefaultJobTimeout/time.Minute), 1, 1440)) * time.Minute
	var queue backfill.Queue // nil without a queue (sam local): the POST routes answer 501, the others work
	switch q, err := backfill.ChunkQueue(ctx, url); {
	case errors.Is(err, backfill.ErrNoQueue):
		api.BaseLogger().Warn("no chunk queue: write-missing requests are answered 501", slog.String("CHUNK_QUEUE_URL", url))
	case err != nil:
		return nil, err
	default:
		queue = q
	}
	return backfill.NewService(d.Registry(), d.Influx, d.Config, d.Table(), queue, timeout).Routes(), nil
}
