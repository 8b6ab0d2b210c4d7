package presence

import (
	"context"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// readFlux reads the digest points of the window as one table (filter |> group() is pushed down to the storage
// engine: its few series are read as one).
const readFlux = `from(bucket: bucket)
  |> range(start: start, stop: stop)
  |> filter(fn: (r) => r._measurement == "` + Measurement + `" and r._field == "` + Field + `")
  |> group()
  |> keep(columns: ["_value"])`

// Read returns, per device, the digest's entries of [start, stop) merged: the newest time, the last position and the
// points. A digest point is flushed after the writes it holds, so the window's points hold every entry of the
// window that was flushed by then (and older ones, left out here). skipped counts the malformed entries.
func Read(ctx context.Context, c *influx.Client, bucket string, start, stop time.Time) (out map[string]Entry, skipped int, err error) {
	rc, err := c.QueryRaw(ctx, readFlux, influx.Extern{"bucket": bucket, "start": start, "stop": stop})
	if err != nil {
		return nil, 0, err
	}
	defer rc.Close()
	out = map[string]Entry{}
	err = influx.EachRow(rc, []string{"_value"}, func(row []string) error {
		skipped += Decode(row[0], start, stop, out)
		return nil
	})
	if err != nil {
		return nil, skipped, err
	}
	return out, skipped, nil
}
