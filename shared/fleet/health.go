// Package fleet is the health of the registered devices: when each device was last seen (pushed-down queries over
// the data bucket, as many whatever the fleet size), its status judged against the measurement interval, the paged device
// list (GET /api/devices) and the scheduled silent-devices metric.
package fleet

import (
	"context"
	"fmt"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/schema"
)

// Statuses of a device.
const (
	Online = "online" // wrote within 2 measurement intervals
	Late   = "late"   // wrote within 10 intervals, not within 2
	Silent = "silent" // nothing for 10 intervals or more, or never (within the lookback)
)

// Multiples of the measurement interval that bound the statuses.
const (
	lateAfter   = 2
	silentAfter = 10
)

// Lookback bounds how far back lastSeen is looked for (the data bucket's default retention).
const Lookback = 30 * 24 * time.Hour

// Lister is the part of the registry the fleet needs.
type Lister interface {
	List(ctx context.Context) ([]registry.Device, error)
	// Page is up to limit devices after the id after, sorted, and whether more follow.
	Page(ctx context.Context, after string, limit int) ([]registry.Device, bool, error)
}

var (
	_ Lister = (*registry.Registry)(nil)
)

// lastSeenFlux reads each series' latest Temperature point written by the device itself (never a generated one): a bare last() after the filter is pushed down to the
// storage engine (it reads the newest block of each series), so the answer is one row per series. The devices
// filter (`=~` a set of ids, pushed down to the index) is there only when a page of devices is looked up.
func lastSeenFlux(some bool) string {
	devices := `!= ""`
	if some {
		devices = "=~ devices"
	}
	return schema.RealPresenceFlux(devices) + `
  |> last()
  |> keep(columns: ["clientId", "_time"])`
}

// anyFieldFlux is lastSeenFlux over every measurement and field of the devices given: the few devices with no
// Temperature point (a device writing only CO2 and TVOC). A device that never wrote has no series, so the index
// answers for it without reading data.
var anyFieldFlux = `from(bucket: bucket)
  |> range(start: start, stop: stop)
  |> filter(fn: (r) => r.` + schema.TagClientID + ` =~ devices and ` + schema.RealFilter + `)
  |> last()
  |> keep(columns: ["clientId", "_time"])`

// recentFlux reads every Temperature point of the recent window as one table (filter |> group() is pushed down:
// no per-series table), about lateAfter rows per device writing on schedule; the newest of a device's rows is its
// last point.
var recentFlux = schema.RealPresenceFlux(`!= ""`) + `
  |> group()
  |> keep(columns: ["clientId", "_time"])`

// Health reads devices' last points.
type Health struct {
	Influx   influx.Querier
	Bucket   string
	Interval time.Duration // the devices' measurement interval
	// LookupMax is the most device ids one last-point query filters by (MaxLimit when 0); past it the query reads
	// every device's series.
	LookupMax int
}

func (h *Health) lookupMax() int {
	if h.LookupMax <= 0 {
		return MaxLimit
	}
	return h.LookupMax
}

func (h *Health) interval() time.Duration {
	if h.Interval <= 0 {
		return time.Minute
	}
	return h.Interval
}

// LastSeen returns each device's latest point time within Lookback (devices without one are absent): of every
// device when ids is nil, else of those devices only (the cost follows the number of series read).
func (h *Health) LastSeen(ctx context.Context, now time.Time, ids []string) (map[string]time.Time, error) {
	if ids != nil && len(ids) == 0 {
		return map[string]time.Time{}, nil
	}
	ext := influx.Extern{"bucket": h.Bucket, "start": now.Add(-Lookback), "stop": now.Add(time.Minute)}
	if ids != nil {
		ext["devices"] = influx.OneOf(ids)
	}
	return h.read(ctx, lastSeenFlux(ids != nil), ext)
}

// Recent returns the latest point time of each device that wrote within the last lateAfter intervals (an online
// device): one table of a few rows per device, far cheaper than a last() per series of the fleet.
func (h *Health) Recent(ctx context.Context, now time.Time) (map[string]time.Time, error) {
	return h.read(ctx, recentFlux, influx.Extern{"bucket": h.Bucket, "start": now.Add(-lateAfter * h.interval()),
		"stop": now.Add(time.Minute)})
}

// Rest completes recent (Recent's answer) into every registered device's LastSeen: the devices not seen recently
// are looked up by id when they are at most LookupMax, else with every device's series. A fleet writing on schedule
// then costs Recent's one table; a silent one about a whole-fleet LastSeen.
func (h *Health) Rest(ctx context.Context, now time.Time, recent map[string]time.Time, registered []string) (map[string]time.Time, error) {
	var missing []string
	for _, id := range registered {
		if _, ok := recent[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return recent, nil
	}
	if len(missing) > h.lookupMax() {
		missing = nil // every device
	}
	seen, err := h.LastSeen(ctx, now, missing)
	if err != nil {
		return nil, err
	}
	for id, t := range recent {
		if t.After(seen[id]) {
			seen[id] = t
		}
	}
	return seen, nil
}

// Others completes seen (the devices' last Temperature points) with the last point of any other field, for the
// devices of registered that seen lacks: by id, LookupMax ids a query. Temperature stands for a point in every
// other query (one series per device instead of one per field); a device without it is found here. A device that
// sent Temperature within Lookback and since then only other fields is judged by its last Temperature point.
func (h *Health) Others(ctx context.Context, now time.Time, seen map[string]time.Time, registered []string) error {
	var missing []string
	for _, id := range registered {
		if _, ok := seen[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > othersDirect {
		// many, as in a fleet that mostly never wrote: only the devices with a series in the bucket can have a point
		have, err := h.withSeries(ctx, now)
		if err != nil {
			return err
		}
		kept := missing[:0]
		for _, id := range missing {
			if have[id] {
				kept = append(kept, id)
			}
		}
		missing = kept
	}
	for len(missing) > 0 {
		n := min(len(missing), h.lookupMax())
		ext := influx.Extern{"bucket": h.Bucket, "start": now.Add(-Lookback), "stop": now.Add(time.Minute),
			"devices": influx.OneOf(missing[:n])}
		got, err := h.read(ctx, anyFieldFlux, ext)
		if err != nil {
			return err
		}
		for id, t := range got {
			seen[id] = t
		}
		missing = missing[n:]
	}
	return nil
}

// othersDirect is how many devices Others looks up by id without asking the index first which have series (a
// variable for the tests).
var othersDirect = 50

// seriesFlux lists the device ids with a series in the bucket within the window: the index answers (no point is
// read), so its cost follows the number of devices, not of points.
const seriesFlux = `import "influxdata/influxdb/schema"

schema.tagValues(bucket: bucket, tag: "` + schema.TagClientID + `", start: start, stop: stop)`

// withSeries returns the ids seriesFlux lists.
func (h *Health) withSeries(ctx context.Context, now time.Time) (map[string]bool, error) {
	rc, err := h.Influx.QueryRaw(ctx, seriesFlux, influx.Extern{"bucket": h.Bucket, "start": now.Add(-Lookback), "stop": now.Add(time.Minute)})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	out := map[string]bool{}
	err = influx.EachRow(rc, []string{"_value"}, func(row []string) error {
		out[row[0]] = true
		return nil
	})
	return out, err
}

// read runs a last-point query and keeps each device's newest time.
func (h *Health) read(ctx context.Context, flux string, ext influx.Extern) (map[string]time.Time, error) {
	rc, err := h.Influx.QueryRaw(ctx, flux, ext)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	out := map[string]time.Time{}
	err = influx.EachRow(rc, []string{"clientId", "_time"}, func(row []string) error {
		id := row[0]
		t, err := time.Parse(time.RFC3339Nano, row[1])
		if err != nil {
			return fmt.Errorf("fleet: bad time in query answer: %w", err)
		}
		if t.After(out[id]) {
			out[id] = t
		}
		return nil
	})
	return out, err
}

// Status judges a device last seen at seen (zero: never) at now.
func (h *Health) Status(seen, now time.Time) string {
	interval := h.interval()
	age := now.Sub(seen)
	switch {
	case seen.IsZero():
		return Silent
	case age <= lateAfter*interval:
		return Online
	case age <= silentAfter*interval:
		return Late
	default:
		return Silent
	}
}
