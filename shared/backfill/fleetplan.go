package backfill

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/schema"
)

// hourCountsFlux counts each listed device's Temperature points per hour of the window in one query. The device
// filter is a regular expression (from validated ids, through extern): InfluxDB pushes `=~` down to its index,
// where contains() over a set would scan every device. range |> filter |> aggregateWindow(count) is pushed down
// too, so the answer is one row per series and hour holding data.
var hourCountsFlux = schema.PresenceFlux("=~ devices") + `
  |> aggregateWindow(every: 1h, fn: count, createEmpty: false, timeSrc: "_start")
  |> keep(columns: ["clientId", "_time", "_value"])`

// DevicePlan is one device's part of a batch plan: the windows (Unix minutes) its chunk tasks cover and how many
// points are missing in them by the hourly counts.
type DevicePlan struct {
	DeviceID string
	Windows  []Range
	Missing  int64
}

// PlanDevices plans several devices with one query: their incomplete hours (fewer points than minutes) grouped
// into chunk windows on a grid of chunkMinutes, so each hour is written by one chunk (README.md, Planning).
func (p *Planner) PlanDevices(ctx context.Context, ids []string, w Window, chunkMinutes int) ([]DevicePlan, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	counts := make(map[string]map[int64]int64, len(ids))
	rc, err := p.Influx.QueryRaw(ctx, hourCountsFlux, influx.Extern{
		"bucket": p.Bucket, "start": w.From, "stop": w.To, "devices": influx.OneOf(ids),
	})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	err = influx.EachRow(rc, []string{"clientId", "_time", "_value"}, func(row []string) error {
		t, err := time.Parse(time.RFC3339Nano, row[1])
		if err != nil {
			return fmt.Errorf("backfill: bad time in query answer: %w", err)
		}
		n, err := strconv.ParseInt(row[2], 10, 64)
		if err != nil {
			return fmt.Errorf("backfill: bad count in query answer: %w", err)
		}
		m := counts[row[0]]
		if m == nil {
			m = map[int64]int64{}
			counts[row[0]] = m
		}
		m[floorDiv(t.Unix(), 3600)] += n
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]DevicePlan, len(ids))
	for i, id := range ids {
		out[i] = planFromCounts(id, w, counts[id], chunkMinutes)
	}
	return out, nil
}

// gridMinutes is the chunk grid: chunkMinutes, rounded down to whole hours when it is an hour or more.
func gridMinutes(chunkMinutes int) int64 {
	size := int64(max(chunkMinutes, 1))
	if size >= 60 {
		size = size / 60 * 60
	}
	return size
}

// planFromCounts turns one device's hourly counts into chunk windows.
func planFromCounts(id string, w Window, counts map[int64]int64, chunkMinutes int) DevicePlan {
	size := gridMinutes(chunkMinutes)
	from, to := w.From.Unix()/60, w.To.Unix()/60
	plan := DevicePlan{DeviceID: id}
	curPiece := int64(-1)
	for h := floorDiv(from, 60); h*60 < to; h++ {
		a, b := max(from, h*60), min(to, (h+1)*60)
		expected := b - a
		if counts[h] >= expected {
			continue
		}
		plan.Missing += expected - counts[h]
		for m := a; m < b; {
			piece := floorDiv(m, size)
			end := min(b, (piece+1)*size)
			if piece == curPiece {
				plan.Windows[len(plan.Windows)-1][1] = end
			} else {
				plan.Windows = append(plan.Windows, Range{m, end})
				curPiece = piece
			}
			m = end
		}
	}
	return plan
}
