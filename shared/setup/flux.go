package setup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/schema"
)

// TaskEvery is the downsampling task's period; TaskLookback is how far back each run re-aggregates (two full hours,
// so points that arrive a little late are still counted; rewriting an hour is idempotent).
const (
	TaskEvery    = time.Hour
	TaskLookback = 2 * time.Hour
	taskOffset   = 5 * time.Minute
)

const fluxImports = `import "date"
import "experimental"
`

// downsampleBody reads the options sourceBucket, targetBucket, downsampleStart and downsampleStop. Each aggregate
// reads the source itself (range |> filter |> aggregateWindow is pushed down into InfluxDB's storage, unlike
// aggregating one shared stream in Flux). Every aggregate is written as float: count is an integer, and InfluxDB
// refuses a field whose type differs between series of one measurement (inside to() the write fails silently).
var downsampleBody = `
hourly = (fn, name) => from(bucket: sourceBucket)
    |> range(start: downsampleStart, stop: downsampleStop)
    |> filter(fn: (r) => r._measurement == "` + schema.Measurement + `")
    |> filter(fn: (r) => ` + fieldFilter + `)
    |> aggregateWindow(every: 1h, fn: fn, createEmpty: false, timeSrc: "_start")
    |> toFloat()
    |> set(key: "agg", value: name)
    |> experimental.group(columns: ["agg"], mode: "extend")

union(tables: [
    hourly(fn: count, name: "count"),
    hourly(fn: mean, name: "mean"),
    hourly(fn: min, name: "min"),
    hourly(fn: max, name: "max"),
    hourly(fn: last, name: "last"),
])
    |> set(key: "_measurement", value: "` + schema.DownsampledMeasurement + `")
    |> to(bucket: targetBucket)
`

// TaskFlux is the script of the hourly task: the last TaskLookback full hours of src aggregated into dst.
func TaskFlux(name, src, dst string) string {
	return fluxImports + fmt.Sprintf(`
option task = {name: %s, every: %s, offset: %s}

sourceBucket = %s
targetBucket = %s
downsampleStop = date.truncate(t: now(), unit: 1h)
downsampleStart = date.sub(d: %s, from: downsampleStop)
`, fluxString(name), fluxDuration(TaskEvery), fluxDuration(taskOffset), fluxString(src), fluxString(dst),
		fluxDuration(TaskLookback)) + downsampleBody
}

// DownsampleFlux is the same aggregation for a caller-chosen range: its four inputs arrive as extern options (see
// DownsampleExtern), never spliced into the text.
func DownsampleFlux() string { return fluxImports + downsampleBody }

// DownsampleExtern gives DownsampleFlux its inputs, widening [start, stop) to whole hours: a partial hour would
// overwrite the hour's aggregate with one of part of its points.
func DownsampleExtern(src, dst string, start, stop time.Time) influx.Extern {
	start = start.UTC().Truncate(time.Hour)
	if t := stop.UTC().Truncate(time.Hour); !t.Equal(stop.UTC()) {
		stop = t.Add(time.Hour)
	}
	return influx.Extern{"sourceBucket": src, "targetBucket": dst, "downsampleStart": start, "downsampleStop": stop.UTC()}
}

// MaxDownsampleRange bounds one Downsample call (a backfill chunk is at most a few days).
const MaxDownsampleRange = 31 * 24 * time.Hour

// Downsample runs the task's aggregation once over [start, stop) (widened to whole hours), so hours a backfill wrote
// get their downsampled points without waiting for (or being missed by) the hourly task.
func Downsample(ctx context.Context, c *influx.Client, src, dst string, start, stop time.Time) error {
	if !stop.After(start) {
		return errors.New("setup: downsample range is empty")
	}
	if stop.Sub(start) > MaxDownsampleRange {
		return fmt.Errorf("setup: downsample range %s longer than %s", stop.Sub(start), MaxDownsampleRange)
	}
	// reading the whole answer surfaces errors InfluxDB reports in the middle of the stream
	err := c.QueryRows(ctx, DownsampleFlux(), DownsampleExtern(src, dst, start, stop), func(map[string]any) error { return nil })
	if err != nil {
		return fmt.Errorf("setup: downsampling %s to %s: %w", src, dst, err)
	}
	return nil
}

func fluxDuration(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	if d%time.Minute == 0 {
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// DownsampledFields are the numeric fields of the environment measurement (iot-center-v2 devices and the virtual
// device write these). Naming them keeps the filter one InfluxDB's storage can apply itself, so each aggregate is
// computed next to the data instead of streaming every point through Flux.
var DownsampledFields = schema.Default().FieldNames(schema.Measurement)

var fieldFilter = func() string {
	terms := make([]string, len(DownsampledFields))
	for i, f := range DownsampledFields {
		terms[i] = `r._field == ` + fluxString(f)
	}
	return strings.Join(terms, " or ")
}()
