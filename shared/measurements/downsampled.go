package measurements

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// Windows of an hour or more come from the hourly aggregates where they are exact (their count equals the raw
// count), from the raw data elsewhere; README.md says how and what it cannot know.

// dsFlux reads the hourly aggregates count and {{AGG}} of the device's fields from the downsampled bucket, paired
// per series (grouping by every column but agg, _value and _time keeps the series apart, so each mean meets its
// own count even when the sensor tags changed inside an hour).
const dsFlux = `from(bucket: qBucket)
  |> range(start: qStart, stop: qStop)
  |> filter(fn: (r) => ` + dsFilter + `)
  |> filter(fn: (r) => r.agg == "count" or r.agg == "{{AGG}}")
  |> filter(fn: (r) => {{FIELDS}})
  |> group(columns: ["agg", "_value", "_time"], mode: "except")
  |> pivot(rowKey: ["_time"], columnKey: ["agg"], valueColumn: "_value")
  |> keep(columns: ["_time", "_field", "count", "{{AGG}}"])
`

// hourlyRawFlux aggregates raw points per hour into the same shape (lastByTime: see fnDefs), for the hours the downsampled bucket cannot
// answer (the partial hours at the range's edges, the hours after its latest one).
const hourlyRawFlux = `data = from(bucket: qBucket)
  |> range(start: qStart, stop: qStop)
  |> filter(fn: (r) => ` + sourceFilter + `)
  |> filter(fn: (r) => {{FIELDS}})
  |> keep(columns: ["_start", "_stop", "_time", "_field", "_value"])
  |> group(columns: ["_field"])
  |> toFloat()
c = data |> aggregateWindow(every: 1h, fn: count, createEmpty: false, timeSrc: "_start") |> toFloat() |> set(key: "agg", value: "count")
v = data |> aggregateWindow(every: 1h, fn: {{FN}}, createEmpty: false, timeSrc: "_start") |> set(key: "agg", value: "{{AGG}}")
union(tables: [c, v])
  |> group(columns: ["_field"])
  |> pivot(rowKey: ["_time"], columnKey: ["agg"], valueColumn: "_value")
  |> keep(columns: ["_time", "_field", "count", "{{AGG}}"])
`

// hourlyCountFlux counts the raw points per hour, series and field: range |> filter |> aggregateWindow(count) is
// pushed down to the storage engine, which answers one row per series and hour.
const hourlyCountFlux = `from(bucket: qBucket)
  |> range(start: qStart, stop: qStop)
  |> filter(fn: (r) => ` + sourceFilter + `)
  |> filter(fn: (r) => {{FIELDS}})
  |> aggregateWindow(every: 1h, fn: count, createEmpty: false, timeSrc: "_start")
  |> keep(columns: ["_time", "_field", "_value"])
`

// useDownsampled reports whether a request can be answered from hourly aggregates.
func (h *Service) useDownsampled(q Request) bool {
	return h.bucketDs != "" && !q.Raw() && q.Every >= time.Hour && q.Every%time.Hour == 0
}

// hourRow is one series' (or, from raw data, one field's) aggregates of one hour; NaN = absent.
type hourRow struct {
	t     time.Time
	field int // index in the request's fields
	count float64
	v     float64 // the request's fn
}

func renderFlux(text string, q Request) string {
	// {{AGG}} is the aggregate's name (the agg tag of the downsampled schema), {{FN}} its Flux function
	text = strings.ReplaceAll(text, "{{AGG}}", string(q.agg()))
	text = fnDefs + strings.ReplaceAll(text, "{{FN}}", q.fluxFn())
	return withOrigin(strings.Replace(text, "{{FIELDS}}", fieldPredicate(q.Fields), 1), q.Origin)
}

// readHourRows collects hourly rows (columns _time, _field, count, <fn>) from an annotated CSV.
func readHourRows(r io.Reader, q Request, rows []hourRow) ([]hourRow, error) {
	idx := map[string]int{}
	for i, f := range q.Fields {
		idx[string(f)] = i
	}
	err := influx.ReadTables(r, func(h *influx.Header) (func([]string) error, error) {
		ti, fi, ci, vi := h.Index("_time"), h.Index("_field"), h.Index("count"), h.Index(string(q.agg()))
		if ti < 0 || fi < 0 {
			return nil, fmt.Errorf("influx: hourly result without _time or _field")
		}
		return func(rec []string) error {
			f, ok := idx[h.Value(rec, fi)]
			if !ok {
				return nil
			}
			ts, err := time.Parse(time.RFC3339Nano, h.Value(rec, ti))
			if err != nil {
				return fmt.Errorf("influx: bad _time cell: %w", err)
			}
			row := hourRow{t: ts, field: f, count: math.NaN(), v: math.NaN()}
			if ci >= 0 {
				if row.count, err = parseValue(h.Value(rec, ci)); err != nil {
					return err
				}
			}
			if vi >= 0 {
				if row.v, err = parseValue(h.Value(rec, vi)); err != nil {
					return err
				}
			}
			if !math.IsNaN(row.v) {
				rows = append(rows, row)
			}
			return nil
		}, nil
	})
	return rows, err
}

func (h *Service) hourRows(ctx context.Context, text string, bucket string, q Request, start, stop time.Time, rows []hourRow) ([]hourRow, error) {
	if !start.Before(stop) {
		return rows, nil
	}
	ext := influx.Extern{"qBucket": bucket, "qDevice": q.DeviceID, "qStart": start, "qStop": stop}
	rc, err := h.q.QueryRaw(ctx, renderFlux(text, q), ext)
	if err != nil {
		if bucket == h.bucketDs && influx.StatusOf(err) == 404 {
			return rows, nil // no downsampled bucket (yet): the raw data answers every hour
		}
		return nil, err
	}
	defer rc.Close()
	return readHourRows(rc, q, rows)
}

// downsampledTable answers a window of >= 1h from the downsampled bucket where its aggregates are exact, and from
// hourly aggregates of the raw data everywhere else (see the comment at the top of the file).
func (h *Service) downsampledTable(ctx context.Context, q Request) (*Table, error) {
	// whole hours inside the range
	dsStart := q.Start.Truncate(time.Hour)
	if dsStart.Before(q.Start) {
		dsStart = dsStart.Add(time.Hour)
	}
	dsStop := q.Stop.Truncate(time.Hour)
	if !dsStart.Before(dsStop) {
		// the range holds no whole hour: the raw data answers it all
		rows, err := h.hourRows(ctx, hourlyRawFlux, h.bucket, q, q.Start, q.Stop, nil)
		if err != nil {
			return nil, err
		}
		return mergeWindows(q, rows), nil
	}
	// The most recent hours always come from the raw data: the task may not have reached them, and an hour a
	// backfill downsampled while it was still running holds a partial aggregate until the task's next run. The
	// aggregates (older hours) with the raw counts of their hours, the partial first hour and those recent hours
	// are read at once.
	tailFrom := h.now().UTC().Truncate(time.Hour).Add(-rawTail)
	if tailFrom.After(dsStop) {
		tailFrom = dsStop
	}
	if tailFrom.Before(dsStart) {
		tailFrom = dsStart
	}
	var counts map[hourField]float64
	parts := []func() ([]hourRow, error){
		func() ([]hourRow, error) { return h.hourRows(ctx, dsFlux, h.bucketDs, q, dsStart, tailFrom, nil) },
		func() ([]hourRow, error) {
			var err error
			counts, err = h.rawCounts(ctx, q, dsStart, tailFrom)
			return nil, err
		},
		func() ([]hourRow, error) { return h.hourRows(ctx, hourlyRawFlux, h.bucket, q, q.Start, dsStart, nil) },
		func() ([]hourRow, error) { return h.hourRows(ctx, hourlyRawFlux, h.bucket, q, tailFrom, q.Stop, nil) },
	}
	results, err := h.parallel(parts)
	if err != nil {
		return nil, err
	}
	// an hour is exact when, for every field the raw data holds, the aggregates count as many points; an hour
	// without raw points keeps its aggregates (the raw bucket's retention is shorter than the downsampled one's)
	aggCounts := map[hourField]float64{}
	for _, r := range results[0] {
		if !math.IsNaN(r.count) {
			aggCounts[hourField{r.t.Unix(), r.field}] += r.count
		}
	}
	stale := map[int64]bool{}
	for k, n := range counts {
		if aggCounts[k] != n {
			stale[k.hour] = true
		}
	}
	spans := staleSpans(stale, maxRawSpans)
	rows := append(results[2], results[3]...)
	for _, r := range results[0] {
		if !inSpans(r.t, spans) {
			rows = append(rows, r)
		}
	}
	recompute := make([]func() ([]hourRow, error), len(spans))
	for i, sp := range spans {
		recompute[i] = func() ([]hourRow, error) { return h.hourRows(ctx, hourlyRawFlux, h.bucket, q, sp.From, sp.To, nil) }
	}
	more, err := h.parallel(recompute)
	if err != nil {
		return nil, err
	}
	for _, m := range more {
		rows = append(rows, m...)
	}
	return mergeWindows(q, rows), nil
}

// hourField keys an hour (Unix seconds of its start) and a field (its index in the request).
type hourField struct {
	hour  int64
	field int
}

// rawCounts counts the raw points of [start, stop) per hour and field, summed over the device's series.
func (h *Service) rawCounts(ctx context.Context, q Request, start, stop time.Time) (map[hourField]float64, error) {
	out := map[hourField]float64{}
	if !start.Before(stop) {
		return out, nil
	}
	idx := map[string]int{}
	for i, f := range q.Fields {
		idx[string(f)] = i
	}
	text := withOrigin(strings.Replace(hourlyCountFlux, "{{FIELDS}}", fieldPredicate(q.Fields), 1), q.Origin)
	rc, err := h.q.QueryRaw(ctx, text, influx.Extern{"qBucket": h.bucket, "qDevice": q.DeviceID, "qStart": start, "qStop": stop})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	err = influx.ReadTables(rc, func(hd *influx.Header) (func([]string) error, error) {
		ti, fi, vi := hd.Index("_time"), hd.Index("_field"), hd.Index("_value")
		if ti < 0 || fi < 0 || vi < 0 {
			return nil, fmt.Errorf("influx: hourly count without _time, _field or _value")
		}
		return func(rec []string) error {
			f, ok := idx[hd.Value(rec, fi)]
			if !ok {
				return nil
			}
			ts, err := time.Parse(time.RFC3339Nano, hd.Value(rec, ti))
			if err != nil {
				return fmt.Errorf("influx: bad _time cell: %w", err)
			}
			n, err := parseValue(hd.Value(rec, vi))
			if err != nil {
				return err
			}
			if !math.IsNaN(n) {
				out[hourField{ts.Unix(), f}] += n
			}
			return nil
		}, nil
	})
	return out, err
}

// parallel runs fns at once and returns their rows in order, or the first error.
func (h *Service) parallel(fns []func() ([]hourRow, error)) ([][]hourRow, error) {
	results := make([][]hourRow, len(fns))
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer recoverTo(&errs[i])
			results[i], errs[i] = fn()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return results, nil
}

// rawTail is how many hours before now are always read from the raw data: more than the hourly task's normal
// lag (it runs at :05 over the previous two hours).
const rawTail = 3 * time.Hour

// windowAcc accumulates one field's hourly aggregates in one window.
type windowAcc struct {
	count  float64 // sum of the counts of the means (count-weighted mean)
	sum    float64 // sum of mean*count
	v      float64 // min, max or last so far
	lastT  time.Time
	hasVal bool
}

// mergeWindows folds hourly rows into epoch-aligned windows of q.Every with q.Fn. A window's time is its start,
// clipped to the range start, as aggregateWindow(timeSrc: "_start") does on the raw path.
func mergeWindows(q Request, rows []hourRow) *Table {
	every := int64(q.Every)
	acc := map[int64][]windowAcc{} // window start -> per field
	for _, r := range rows {
		w := floorDiv(r.t.UnixNano(), every) * every
		a := acc[w]
		if a == nil {
			a = make([]windowAcc, len(q.Fields))
			acc[w] = a
		}
		x := &a[r.field]
		switch {
		case q.Fn == "mean":
			if math.IsNaN(r.count) || r.count <= 0 {
				continue
			}
			x.count += r.count
			x.sum += r.v * r.count
			x.hasVal = true
		case !x.hasVal:
			x.v, x.lastT, x.hasVal = r.v, r.t, true
		case q.Fn == "min":
			x.v = math.Min(x.v, r.v)
		case q.Fn == "max":
			x.v = math.Max(x.v, r.v)
		case q.Fn == "last":
			if !r.t.Before(x.lastT) {
				x.v, x.lastT = r.v, r.t
			}
		}
	}
	starts := make([]int64, 0, len(acc))
	for w := range acc {
		starts = append(starts, w)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	t := &Table{Fields: q.Fields, Values: make([][]float64, len(q.Fields))}
	for _, w := range starts {
		a := acc[w]
		some := false
		for f := range a {
			some = some || a[f].hasVal
		}
		if !some {
			continue
		}
		ts := time.Unix(0, w).UTC()
		if ts.Before(q.Start) {
			ts = q.Start
		}
		t.Times = append(t.Times, ts)
		for f := range a {
			v := math.NaN()
			switch {
			case !a[f].hasVal:
			case q.Fn == "mean":
				v = a[f].sum / a[f].count
			default:
				v = a[f].v
			}
			t.Values[f] = append(t.Values[f], v)
		}
	}
	return t
}
