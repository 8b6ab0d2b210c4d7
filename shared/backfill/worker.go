package backfill

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/clock"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/metrics"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
)

// Store is the part of influx.Client the worker needs. WriteGzip retries 429/503 honouring Retry-After and backs
// off exponentially on other transient failures, within a bounded number of attempts; QueryRows reads the hourly
// aggregates of hours a chunk wrote in part.
type Store interface {
	WriteGzip(ctx context.Context, bucket string, gz []byte) error
	QueryRows(ctx context.Context, flux string, extern influx.Extern, fn func(values map[string]any) error) error
}

var _ Store = (*influx.Client)(nil)

// BatchLines is the number of lines per write request.
const BatchLines = 5000

// Worker generates and writes chunks. One Worker serves one invocation at a time (Lambda's model); its buffers are
// reused across batches and invocations, so a chunk costs a few hundred kilobytes whatever its size.
type Worker struct {
	Influx Store
	Bucket string
	Gen    sensors.Generator
	// Metrics receives CloudWatch EMF lines (points written, chunk duration, InfluxDB errors by status); nil: none.
	Metrics io.Writer
	// DownsampledBucket receives the hourly aggregates of the hours the chunk wrote (hourly.go): the hourly task
	// only looks back two hours, so without them backfilled history would never be aggregated. "": none.
	DownsampledBucket string
	// Now is the clock (time.Now when nil).
	Clock clock.Func

	lp, agg []byte
	gz      bytes.Buffer
	zw      *gzip.Writer
}

// Handle writes every minute of the chunk. Line-protocol writes of the same series and time overwrite, so a
// retried or duplicated chunk writes the same points again and leaves no duplicates. A chunk that still fails after
// the client's retries returns the error: the task stays on the queue for another attempt.
func (w *Worker) Handle(ctx context.Context, c Chunk) error { return w.HandleAll(ctx, []Chunk{c}) }

// HandleAll writes the chunks into shared batches of BatchLines lines, then the hourly aggregates of all of them in
// one write: fewer, fuller requests than one per chunk. Either every chunk is written or an error is returned (the
// task runs again; writes are idempotent).
func (w *Worker) HandleAll(ctx context.Context, cs []Chunk) error {
	var total int64
	for _, c := range cs {
		if err := c.Validate(); err != nil {
			return err
		}
		total += c.Minutes()
	}
	if len(cs) == 0 {
		return nil
	}
	start := time.Now()
	if w.lp == nil {
		w.lp = make([]byte, 0, BatchLines*384)
	}
	lp, lines, written := w.lp[:0], 0, 0
	fail := func(err error) error {
		w.emitFailure(ctx, err, written)
		return fmt.Errorf("backfill: %d chunks from %s: %d of %d points written: %w", len(cs), cs[0].DeviceID, written, total, err)
	}
	flush := func() error {
		if lines == 0 {
			return nil
		}
		if err := w.write(ctx, lp); err != nil {
			return fail(err)
		}
		written += lines
		lp, lines = lp[:0], 0
		return nil
	}
	var agg *aggregates
	if w.DownsampledBucket != "" {
		agg = w.newAggregates()
	}
	for _, c := range cs {
		line := sensors.NewGeneratedLine(w.Gen, c.DeviceID)
		var hs *hourly
		if agg != nil {
			hs = newHourly(c)
		}
		for _, r := range c.Ranges {
			for m := r[0]; m < r[1]; m++ {
				var reading sensors.Reading
				lp, reading = line.AppendPoint(lp, m*60_000)
				if hs != nil {
					hs.add(m, reading)
				}
				if lines++; lines == BatchLines {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}
		if agg != nil {
			agg.add(c, hs)
		}
	}
	if err := flush(); err != nil {
		return err
	}
	w.lp = lp
	if agg != nil {
		if err := agg.write(ctx); err != nil {
			// the points are written; a retry of the whole task rewrites them (idempotent) and aggregates again
			return fail(err)
		}
	}
	took := time.Since(start)
	api.Logger(ctx).InfoContext(ctx, "chunks written", slog.String("deviceId", cs[0].DeviceID), slog.Int("chunks", len(cs)),
		slog.Int("points", written), slog.Duration("took", took))
	if w.Metrics != nil {
		metrics.EmitAll(ctx, w.Metrics, []metrics.Dim{{Name: "Function", Value: "BackfillWorker"}},
			metrics.Metric{Name: "PointsWritten", Value: float64(written), Unit: metrics.Count},
			metrics.Metric{Name: "ChunkDuration", Value: float64(took.Milliseconds()), Unit: metrics.Milliseconds})
	}
	return nil
}

// emitFailure counts a failed chunk by InfluxDB's answer (0: no answer, the server was unreachable).
func (w *Worker) emitFailure(ctx context.Context, err error, written int) {
	if w.Metrics == nil {
		return
	}
	metrics.EmitAll(ctx, w.Metrics, []metrics.Dim{{Name: "Function", Value: "BackfillWorker"},
		{Name: "Status", Value: strconv.Itoa(influx.StatusOf(err))}},
		metrics.Metric{Name: "InfluxErrors", Value: 1, Unit: metrics.Count},
		metrics.Metric{Name: "PointsWritten", Value: float64(written), Unit: metrics.Count})
}

// write gzips lp into the reused buffer (fastest level: the network is rarely the bottleneck on a loopback or VPC
// link, CPU is) and sends it.
func (w *Worker) write(ctx context.Context, lp []byte) error { return w.writeTo(ctx, w.Bucket, lp) }

// writeTo gzips lp and writes it to bucket.
func (w *Worker) writeTo(ctx context.Context, bucket string, lp []byte) error {
	w.gz.Reset()
	if w.zw == nil {
		w.zw, _ = gzip.NewWriterLevel(&w.gz, gzip.BestSpeed)
	} else {
		w.zw.Reset(&w.gz)
	}
	if _, err := w.zw.Write(lp); err != nil {
		return err
	}
	if err := w.zw.Close(); err != nil {
		return err
	}
	return w.Influx.WriteGzip(ctx, bucket, w.gz.Bytes())
}
