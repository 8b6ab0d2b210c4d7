// Package fleet is the health of the registered devices: when each device was last seen (one grouped query over
// the data bucket, whatever the fleet size), its status judged against the measurement interval, the paged device
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

// Health reads devices' last points.
type Health struct {
	Influx   influx.Querier
	Bucket   string
	Interval time.Duration // the devices' measurement interval
}

// LastSeen returns each device's latest point time within Lookback (devices without one are absent): of every
// device when ids is nil, else of those devices only (the cost follows the number of series read).
func (h *Health) LastSeen(ctx context.Context, now time.Time, ids []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if ids != nil && len(ids) == 0 {
		return out, nil
	}
	ext := influx.Extern{"bucket": h.Bucket, "start": now.Add(-Lookback), "stop": now.Add(time.Minute)}
	if ids != nil {
		ext["devices"] = influx.OneOf(ids)
	}
	rc, err := h.Influx.QueryRaw(ctx, lastSeenFlux(ids != nil), ext)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
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
	interval := h.Interval
	if interval <= 0 {
		interval = time.Minute
	}
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
