package backfill

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/schema"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
)

// Hourly aggregates of backfilled hours: the hourly task looks back two hours only, so the worker aggregates the
// hours it wrote, in the task's shape, for the device's generated series only (README.md).

// aggNames are the aggregates, in line order.
var aggNames = [5]string{"count", "last", "max", "mean", "min"}

// fieldCount is the number of fields of a reading.
const fieldCount = 7

// values returns a reading's fields in line-protocol (sorted) order: CO2, Humidity, Lat, Lon, Pressure, TVOC,
// Temperature.
func values(r sensors.Reading) [fieldCount]float64 {
	return [fieldCount]float64{float64(r.CO2), r.Humidity, r.Lat, r.Lon, r.Pressure, float64(r.TVOC), r.Temperature}
}

var fieldNames = [fieldCount]string{schema.CO2, schema.Humidity, schema.Lat, schema.Lon, schema.Pressure, schema.TVOC, schema.Temperature}

// hourAgg accumulates one hour of one series.
type hourAgg struct {
	n                   int
	sum, min, max, last [fieldCount]float64
}

func (a *hourAgg) add(v [fieldCount]float64) {
	for i, x := range v {
		if a.n == 0 || x < a.min[i] {
			a.min[i] = x
		}
		if a.n == 0 || x > a.max[i] {
			a.max[i] = x
		}
		a.sum[i] += x
		a.last[i] = x
	}
	a.n++
}

// hourPart is the chunk's minutes in one hour it determines entirely.
type hourPart struct {
	hour  int64 // Unix hour
	parts []Range
}

// splitHours sorts the hours the ranges touch into hours the chunk determines entirely (every minute either written
// by it or known empty: clean) and spans of hours it writes only in part.
func splitHours(ranges, clean []Range) (full []hourPart, partial []Window) {
	type hourState struct {
		minutes [60]bool
		parts   []Range
	}
	hours := map[int64]*hourState{}
	var order []int64
	mark := func(r Range, own bool) {
		for m := r[0]; m < r[1]; {
			h := floorDiv(m, 60)
			end := min(r[1], (h+1)*60)
			st, ok := hours[h]
			if !ok {
				if !own {
					m = end
					continue // clean minutes only matter in hours the chunk writes
				}
				st = &hourState{}
				hours[h] = st
				order = append(order, h)
			}
			for x := m; x < end; x++ {
				st.minutes[x-h*60] = true
			}
			if own {
				st.parts = append(st.parts, Range{m, end})
			}
			m = end
		}
	}
	for _, r := range ranges {
		mark(r, true)
	}
	for _, r := range clean {
		mark(r, false)
	}
	for _, h := range order {
		st := hours[h]
		all := true
		for _, v := range st.minutes {
			all = all && v
		}
		if all {
			full = append(full, hourPart{hour: h, parts: st.parts})
			continue
		}
		from, to := time.Unix(h*3600, 0).UTC(), time.Unix((h+1)*3600, 0).UTC()
		if n := len(partial); n > 0 && partial[n-1].To.Equal(from) {
			partial[n-1].To = to
			continue
		}
		partial = append(partial, Window{From: from, To: to})
	}
	return full, partial
}

// appendHourly appends the five aggregate lines of one hour.
func appendHourly(buf []byte, prefix [5][]byte, hour int64, a *hourAgg) []byte {
	for k := range aggNames {
		buf = append(buf, prefix[k]...)
		for i := 0; i < fieldCount; i++ {
			var v float64
			switch aggNames[k] {
			case "count":
				v = float64(a.n)
			case "last":
				v = a.last[i]
			case "max":
				v = a.max[i]
			case "mean":
				v = a.sum[i] / float64(a.n)
			case "min":
				v = a.min[i]
			}
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, fieldNames[i]...)
			buf = append(buf, '=')
			buf = strconv.AppendFloat(buf, v, 'g', -1, 64)
		}
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, hour*3600, 10)
		buf = append(buf, "000000000\n"...)
	}
	return buf
}

// hourly tracks the aggregates of the hours a chunk determines entirely while its points are generated.
type hourly struct {
	full    []int64 // Unix hours, ascending
	aggs    map[int64]*hourAgg
	partial []Window
	// the hour of the last point, cached: points arrive in order
	curHour int64
	cur     *hourAgg
}

func newHourly(c Chunk) *hourly {
	full, partial := splitHours(c.Ranges, c.Clean)
	h := &hourly{aggs: make(map[int64]*hourAgg, len(full)), partial: partial, curHour: -1}
	for _, hp := range full {
		h.full = append(h.full, hp.hour)
		h.aggs[hp.hour] = &hourAgg{}
	}
	return h
}

// add counts the reading of minute m when its hour is one the chunk determines.
func (h *hourly) add(m int64, r sensors.Reading) {
	if hour := floorDiv(m, 60); hour != h.curHour {
		h.curHour, h.cur = hour, h.aggs[hour]
	}
	if h.cur != nil {
		h.cur.add(values(r))
	}
}

// hourlyPrefixes renders the measurement and tags of each aggregate's line (tags sorted: agg before clientId).
func hourlyPrefixes(deviceID string) [5][]byte {
	var out [5][]byte
	for k, name := range aggNames {
		out[k] = sensors.GeneratedLinePrefix(schema.DownsampledMeasurement, name, deviceID)
	}
	return out
}

// ownHourlyFlux aggregates the device's generated series (the virtual sensors' tags, generated=true) per hour, as the setup package's
// task does (each aggregate read by its own pushed-down range |> filter |> aggregateWindow, every value a float),
// after the chunk's points are written: for an hour the chunk wrote in part, the result covers both its points and
// the older ones. Other series of the device are untouched by the chunk, so their aggregates need no refresh.
var ownHourlyFlux = func() string {
	filter := `r._measurement == "` + schema.Measurement + `" and r.` + schema.TagClientID + ` == deviceId and ` + schema.GeneratedFilter
	for _, t := range schema.SensorTags {
		filter += ` and r.` + t[0] + ` == "` + t[1] + `"`
	}
	branches := ""
	for _, name := range aggNames {
		branches += "\n    hourly(fn: " + name + `, name: "` + name + `"),`
	}
	return `hourly = (fn, name) => from(bucket: bucket)
    |> range(start: start, stop: stop)
    |> filter(fn: (r) => ` + filter + `)
    |> aggregateWindow(every: 1h, fn: fn, createEmpty: false, timeSrc: "_start")
    |> toFloat()
    |> set(key: "agg", value: name)

union(tables: [` + branches + `
])
    |> keep(columns: ["_time", "_field", "_value", "agg"])`
}()

// readHourly reads the device's own hourly aggregates for the partial hours and appends them as lines.
func (w *Worker) readHourly(ctx context.Context, buf []byte, prefix [5][]byte, deviceID string, partial []Window) ([]byte, error) {
	want := map[int64]bool{}
	for _, p := range partial {
		for h := p.From.Unix() / 3600; h < p.To.Unix()/3600; h++ {
			want[h] = true
		}
	}
	type key struct {
		hour int64
		agg  int
	}
	vals := map[key]*[fieldCount]float64{}
	has := map[key]*[fieldCount]bool{}
	var order []key
	aggIndex := map[string]int{}
	for k, name := range aggNames {
		aggIndex[name] = k
	}
	fieldIndex := map[string]int{}
	for i, name := range fieldNames {
		fieldIndex[name] = i
	}
	ext := influx.Extern{"bucket": w.Bucket, "deviceId": deviceID, "start": partial[0].From, "stop": partial[len(partial)-1].To}
	err := w.Influx.QueryRows(ctx, ownHourlyFlux, ext, func(v map[string]any) error {
		t, _ := v["_time"].(time.Time)
		h := t.Unix() / 3600
		k, okA := aggIndex[fmt.Sprint(v["agg"])]
		i, okF := fieldIndex[fmt.Sprint(v["_field"])]
		x, okV := v["_value"].(float64)
		if !want[h] || !okA || !okF || !okV {
			return nil // a full hour in between (already computed), or a field this project does not aggregate
		}
		kk := key{h, k}
		if vals[kk] == nil {
			vals[kk], has[kk] = &[fieldCount]float64{}, &[fieldCount]bool{}
			order = append(order, kk)
		}
		vals[kk][i], has[kk][i] = x, true
		return nil
	})
	if err != nil {
		return buf, fmt.Errorf("reading the hourly aggregates of partly written hours: %w", err)
	}
	for _, kk := range order {
		buf = append(buf, prefix[kk.agg]...)
		first := true
		for i := 0; i < fieldCount; i++ {
			if !has[kk][i] {
				continue
			}
			if !first {
				buf = append(buf, ',')
			}
			first = false
			buf = append(buf, fieldNames[i]...)
			buf = append(buf, '=')
			buf = strconv.AppendFloat(buf, vals[kk][i], 'g', -1, 64)
		}
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, kk.hour*3600, 10)
		buf = append(buf, "000000000\n"...)
	}
	return buf, nil
}

// aggregates collects the hourly aggregate lines of the chunks a worker call writes (see the comment at the top of
// the file): computed from the generated values for the hours a chunk wrote entirely, read back from InfluxDB for
// the others once every point is written, and written in as few requests as the lines allow.
type aggregates struct {
	w       *Worker
	lp      []byte
	lines   int
	partial []partialHours
}

// partialHours are a chunk's hours written in part, to be read back after the points are written.
type partialHours struct {
	deviceID string
	prefix   [5][]byte
	spans    []Window
}

func (w *Worker) newAggregates() *aggregates { return &aggregates{w: w, lp: w.agg[:0]} }

// add takes the aggregates of chunk c (hs: its generated values) for the hours it wrote.
func (a *aggregates) add(c Chunk, hs *hourly) {
	prefix := hourlyPrefixes(c.DeviceID)
	for _, h := range hs.full {
		a.lp = appendHourly(a.lp, prefix, h, hs.aggs[h])
		a.lines += len(aggNames)
	}
	// The hour in progress is left to the hourly task: its next run aggregates it (it looks back two hours), and
	// until then readers compute hours after the latest aggregated one from the raw points. That spares a query
	// per device in the common case (a window ending now).
	current := a.w.Clock.Now().UTC().Truncate(time.Hour)
	var partial []Window
	for _, p := range hs.partial {
		if p.To.After(current) {
			p.To = current
		}
		if p.From.Before(p.To) {
			partial = append(partial, p)
		}
	}
	if len(partial) > 0 {
		a.partial = append(a.partial, partialHours{deviceID: c.DeviceID, prefix: prefix, spans: partial})
	}
}

// write reads the partly written hours back (the chunks' points are written by now) and writes every line.
func (a *aggregates) write(ctx context.Context) error {
	for _, p := range a.partial {
		n := len(a.lp)
		var err error
		if a.lp, err = a.w.readHourly(ctx, a.lp, p.prefix, p.deviceID, p.spans); err != nil {
			return err
		}
		a.lines += bytes.Count(a.lp[n:], []byte{'\n'})
	}
	defer func() { a.w.agg = a.lp[:0] }()
	for rest := a.lp; len(rest) > 0; {
		// BatchLines lines a request, cut at a line's end
		cut := len(rest)
		if a.lines > BatchLines {
			cut = lineEnd(rest, BatchLines)
		}
		if err := a.w.writeTo(ctx, a.w.DownsampledBucket, rest[:cut]); err != nil {
			return fmt.Errorf("writing hourly aggregates: %w", err)
		}
		rest, a.lines = rest[cut:], max(a.lines-BatchLines, 0)
	}
	return nil
}

// lineEnd is the offset just past the n-th line of lp (len(lp) when it has fewer).
func lineEnd(lp []byte, n int) int {
	off := 0
	for ; n > 0; n-- {
		i := bytes.IndexByte(lp[off:], '\n')
		if i < 0 {
			return len(lp)
		}
		off += i + 1
	}
	return off
}
