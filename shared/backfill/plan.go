package backfill

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/schema"
)

// presentMinutesFlux returns the start of every minute of [start, stop) holding at least one Temperature point of
// the device. range |> filter |> aggregateWindow(count) is pushed down to the storage engine, so InfluxDB answers
// one row per present minute without moving raw points; minutes with several series or points count once.
// Caller values arrive only as extern options.
const presentMinutesFlux = `from(bucket: bucket)
  |> range(start: start, stop: stop)
  |> filter(fn: (r) => r._measurement == "` + schema.Measurement + `" and r._field == "` + schema.Temperature + `" and r.` + schema.TagClientID + ` == deviceId)
  |> aggregateWindow(every: 1m, fn: count, createEmpty: false, timeSrc: "_start")
  |> keep(columns: ["_time"])`

// Planner reads which minutes of a window a device has data for.
type Planner struct {
	Influx influx.Querier
	Bucket string
}

// Present returns, for each minute of w, whether the device has a Temperature point in it.
func (p *Planner) Present(ctx context.Context, deviceID string, w Window) ([]bool, error) {
	present, _, err := p.presence(ctx, deviceID, w)
	return present, err
}

// presence runs the one query over w widened back to the start of its first hour, and also reports the minutes of
// that widening that are empty (nil when any holds a point, or when w starts on the hour).
func (p *Planner) presence(ctx context.Context, deviceID string, w Window) ([]bool, []Range, error) {
	n := w.Minutes()
	if n <= 0 || n > MaxChunkMinutes {
		return nil, nil, fmt.Errorf("backfill: window of %d minutes", n)
	}
	start := w.From.Truncate(time.Hour)
	present := make([]bool, n)
	leadPresent := false
	rc, err := p.Influx.QueryRaw(ctx, presentMinutesFlux, influx.Extern{
		"bucket": p.Bucket, "start": start, "stop": w.To, "deviceId": deviceID,
	})
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	base := w.From.Unix()
	err = eachTime(rc, func(t time.Time) error {
		i := floorDiv(t.Unix()-base, 60)
		switch {
		case i < 0 && !t.Before(start):
			leadPresent = true
		case i < 0 || i >= n:
			return fmt.Errorf("backfill: query returned %s outside the window", t)
		default:
			present[i] = true
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	var lead []Range
	if !leadPresent && start.Before(w.From) {
		lead = []Range{{start.Unix() / 60, w.From.Unix() / 60}}
	}
	return present, lead, nil
}

// Missing returns the gaps of the device in w and how many minutes they hold, and the empty minutes of the first
// hour before w (see presence).
func (p *Planner) Missing(ctx context.Context, deviceID string, w Window) ([]Range, int64, []Range, error) {
	present, lead, err := p.presence(ctx, deviceID, w)
	if err != nil {
		return nil, 0, nil, err
	}
	gaps, missing := gapsOf(w, present)
	return gaps, missing, lead, nil
}

// Chunks plans one device: its gaps in w split into chunks, the first one told which minutes before the window
// are empty when its hour starts before the window.
func (p *Planner) Chunks(ctx context.Context, deviceID string, w Window, chunkMinutes int) ([]Chunk, int64, error) {
	gaps, missing, lead, err := p.Missing(ctx, deviceID, w)
	if err != nil {
		return nil, 0, err
	}
	chunks := Split(deviceID, gaps, chunkMinutes)
	if len(chunks) > 0 && len(lead) > 0 && chunks[0].Ranges[0][0] == lead[0][1] {
		chunks[0].Clean = lead
	}
	return chunks, missing, nil
}

// eachTime streams the _time column of an annotated-CSV query answer.
func eachTime(r io.Reader, fn func(time.Time) error) error {
	return influx.EachRow(r, []string{"_time"}, func(row []string) error {
		t, err := time.Parse(time.RFC3339Nano, row[0])
		if err != nil {
			return fmt.Errorf("backfill: bad time in query answer: %w", err)
		}
		return fn(t)
	})
}
