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

// lastSeenFlux reads each series' latest Temperature point: a bare last() after the filter is pushed down to the
// storage engine (it reads the newest block of each series), so the answer is one row per series. The devices
// filter (`=~` a set of ids, pushed down to the index) is there only when a page of devices is looked up.
func lastSeenFlux(some bool) string {
	devices := `!= ""`
	if some {
		devices = "=~ devices"
	}
	return schema.PresenceFlux(devices) + `
  |> last()
  |> keep(columns: ["clientId", "_time"])`
}

// recentFlux reads every Temperature point of the recent window as one table (filter |> group() is pushed down:
// no per-series table), about lateAfter rows per device writing on schedule; the newest of a device's rows is its
// last point.
var recentFlux = schema.PresenceFlux(`!= ""`) + `
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
