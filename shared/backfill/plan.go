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
var presentMinutesFlux = presentFlux("== deviceId")

// presentFlux is presentMinutesFlux with the device filter given (== one id, or =~ a set of them), answering the
// device id beside each minute.
func presentFlux(device string) string {
	return schema.PresenceFlux(device) + `
  |> aggregateWindow(every: 1m, fn: count, createEmpty: false, timeSrc: "_start")
  |> keep(columns: ["` + schema.TagClientID + `", "_time"])`
}

// Planner reads which minutes of a window a device has data for.
type Planner struct {
	Influx *influx.Client
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
	ps, err := p.presenceOf(ctx, []span{{deviceID, w}})
	if err != nil {
		return nil, nil, err
	}
	return ps[0].present, ps[0].lead, nil
}

// span is one device's window; spanPresence is what presence reports for it.
type span struct {
	id string
	w  Window
}

type spanPresence struct {
	present []bool
	lead    []Range
}

// presenceOf is presence for several spans with one query (a chunk task's chunks): one device with ==, several
// with a pushed-down =~ over the spans' common range; each row counts for the spans of its device holding it.
func (p *Planner) presenceOf(ctx context.Context, spans []span) ([]spanPresence, error) {
	out := make([]spanPresence, len(spans))
	starts := make([]time.Time, len(spans))
	leadPresent := make([]bool, len(spans))
	byDevice := map[string][]int{}
	var from, to time.Time
	for i, sp := range spans {
		n := sp.w.Minutes()
		if n <= 0 || n > MaxChunkMinutes {
			return nil, fmt.Errorf("backfill: window of %d minutes", n)
		}
		starts[i] = sp.w.From.Truncate(time.Hour)
		out[i].present = make([]bool, n)
		byDevice[sp.id] = append(byDevice[sp.id], i)
		if i == 0 || starts[i].Before(from) {
			from = starts[i]
		}
		if i == 0 || sp.w.To.After(to) {
			to = sp.w.To
		}
	}
	flux, ext := presentMinutesFlux, influx.Extern{"bucket": p.Bucket, "start": from, "stop": to}
	if len(byDevice) == 1 {
		ext["deviceId"] = spans[0].id
	} else {
		ids := make([]string, 0, len(byDevice))
		for id := range byDevice {
			ids = append(ids, id)
		}
		flux, ext["devices"] = presentManyFlux, influx.OneOf(ids)
	}
	rc, err := p.Influx.QueryRaw(ctx, flux, ext)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	err = influx.EachRow(rc, []string{schema.TagClientID, "_time"}, func(row []string) error {
		t, err := time.Parse(time.RFC3339Nano, row[1])
		if err != nil {
			return fmt.Errorf("backfill: bad time in query answer: %w", err)
		}
		for _, i := range byDevice[row[0]] {
			sp := spans[i]
			switch k := floorDiv(t.Unix()-sp.w.From.Unix(), 60); {
			case k < 0 && !t.Before(starts[i]):
				leadPresent[i] = true
			case k >= 0 && k < int64(len(out[i].present)):
				out[i].present[k] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, sp := range spans {
		if !leadPresent[i] && starts[i].Before(sp.w.From) {
			out[i].lead = []Range{{starts[i].Unix() / 60, sp.w.From.Unix() / 60}}
		}
	}
	return out, nil
}

// presentManyFlux is presentMinutesFlux for a set of devices (validated ids, as a regular expression through extern).
var presentManyFlux = presentFlux("=~ devices")

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
	cs, err := p.chunksOf(ctx, []span{{deviceID, w}}, chunkMinutes)
	if err != nil {
		return nil, 0, err
	}
	var missing int64
	for _, c := range cs[0] {
		missing += c.Minutes()
	}
	return cs[0], missing, nil
}

// chunksOf is Chunks for several spans (a chunk task's chunks) with one query.
func (p *Planner) chunksOf(ctx context.Context, spans []span, chunkMinutes int) ([][]Chunk, error) {
	ps, err := p.presenceOf(ctx, spans)
	if err != nil {
		return nil, err
	}
	out := make([][]Chunk, len(spans))
	for i, sp := range spans {
		gaps, _ := gapsOf(sp.w, ps[i].present)
		chunks := Split(sp.id, gaps, chunkMinutes)
		if lead := ps[i].lead; len(chunks) > 0 && len(lead) > 0 && chunks[0].Ranges[0][0] == lead[0][1] {
			chunks[0].Clean = lead
		}
		out[i] = chunks
	}
	return out, nil
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
