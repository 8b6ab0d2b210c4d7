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
	"github.com/iot-center/iot-center-serverless/shared/store"
)

func main() { lambdaapp.StartHTTP(handler(lambdaapp.Init())) }

// handler is the function's routes (wiring_test.go compares them with template.yaml).
func handler(d lambdaapp.Deps) *api.Mux {
	env := d.Env()
	queueURL := env.String("CHUNK_QUEUE_URL", "")
	timeout := env.Int("JOB_TIMEOUT_MINUTES", int(backfill.DefaultJobTimeout/time.Minute), 1, 1440)
	lambdaapp.Check(env)
	var queue backfill.Queue // nil without a queue (sam local): the POST routes answer 501, the others work
	switch q, err := backfill.ChunkQueue(context.Background(), queueURL); {
	case errors.Is(err, backfill.ErrNoQueue):
		api.BaseLogger().Warn("no chunk queue: write-missing requests are answered 501", slog.String("CHUNK_QUEUE_URL", queueURL))
	case err != nil:
		api.Exit("invalid configuration", err)
	default:
		queue = q
	}
	table, err := store.FromEnv(context.Background(), d.Getenv)
	if err != nil {
		api.Exit("invalid configuration", err)
	}
	return backfill.NewService(d.Registry(), d.Influx, d.Config, table, queue, time.Duration(timeout)*time.Minute).Routes()
}
