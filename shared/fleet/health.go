// Package fleet is the health of the registered devices: when each device was last seen (the write gateway's
// presence digest in gateway mode; otherwise pushed-down queries over the data bucket, as many whatever the fleet
// size), its status judged against the measurement interval, the paged device list (GET /api/devices) and the
// scheduled silent-devices metric.
package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/presence"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/schema"
)

// Statuses of a device.
const (
	Online = registry.StatusOnline // wrote within 2 measurement intervals
	Late   = registry.StatusLate   // wrote within 10 intervals, not within 2
	Silent = registry.StatusSilent // nothing for 10 intervals or more, or never (within the lookback)
)

// Multiples of the measurement interval that bound the statuses.
const (
	lateAfter   = 2
	silentAfter = 10
)

// Lookback bounds how far back lastSeen is looked for (the data bucket's default retention).
const Lookback = 30 * 24 * time.Hour

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

// Health reads devices' last points.
type Health struct {
	Influx   *influx.Client
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

// Seen is what the run reads of a device: its last real point and its last position.
type Seen struct {
	At       time.Time
	Lat, Lon float64 // NaN: no position read
}

// recentFlux reads every Temperature point of the window as one table (filter |> group() is pushed down: no table per
// series, whose per-table cost dominates at a fleet's size), about lateAfter rows per device writing on schedule.
var recentFlux = schema.RealPresenceFlux(`!= ""`) + `
  |> group()
  |> keep(columns: ["clientId", "_time"])`

// window is how far back a run looks for the devices that wrote: lateAfter intervals (the online ones), or with wide
// silentAfter intervals (the online and late ones).
func (h *Health) window(wide bool) time.Duration {
	if wide {
		return silentAfter * h.interval()
	}
	return lateAfter * h.interval()
}

// Recent returns the devices that wrote (themselves: generated points never count) within the last lateAfter
// intervals (the online ones; with wide, within silentAfter intervals: the online and late ones), with their last
// point, and the fleet's points per minute over that window.
func (h *Health) Recent(ctx context.Context, now time.Time, wide bool) (map[string]time.Time, float64, error) {
	window := h.window(wide)
	rc, err := h.Influx.QueryRaw(ctx, recentFlux, influx.Extern{"bucket": h.Bucket, "start": now.Add(-window),
		"stop": now.Add(time.Minute)})
	if err != nil {
		return nil, 0, err
	}
	defer rc.Close()
	out := map[string]time.Time{}
	points := 0
	err = influx.EachRow(rc, []string{"clientId", "_time"}, func(row []string) error {
		t, err := time.Parse(time.RFC3339Nano, row[1])
		if err != nil {
			return fmt.Errorf("fleet: bad time in query answer: %w", err)
		}
		if !t.After(now) {
			points++
		}
		if t.After(out[row[0]]) {
			out[row[0]] = t
		}
		return nil
	})
	return out, float64(points) / window.Minutes(), err
}

// RecentDigest is Recent (and the devices' last positions) read from the write gateway's presence digest: a few
// points whatever the fleet's size, where Recent reads one series per device. The points per minute are the
// digest's counts over the window.
func (h *Health) RecentDigest(ctx context.Context, now time.Time, wide bool) (map[string]*Seen, float64, error) {
	window := h.window(wide)
	got, skipped, err := presence.Read(ctx, h.Influx, h.Bucket, now.Add(-window), now.Add(time.Minute))
	if err != nil {
		return nil, 0, api.Wrap(api.Unavailable, err, "reading the presence digest")
	}
	if skipped > 0 {
		api.Logger(ctx).WarnContext(ctx, "presence digest: malformed entries skipped", slog.Int("skipped", skipped))
	}
	out := make(map[string]*Seen, len(got))
	var points int64
	for id, e := range got {
		out[id] = &Seen{At: e.At, Lat: e.Lat, Lon: e.Lon}
		points += e.Points
	}
	return out, float64(points) / window.Minutes(), nil
}

// positionsFlux reads the Lat and Lon points of the window as one table, of the devices whose id matches `devices`.
var positionsFlux = `from(bucket: bucket)
  |> range(start: start, stop: stop)
  |> filter(fn: (r) => r._measurement == "` + schema.Measurement + `" and (r._field == "` + schema.Lat + `" or r._field == "` +
	schema.Lon + `") and r.` + schema.TagClientID + ` =~ devices and ` + schema.RealFilter + `)
  |> group()
  |> keep(columns: ["clientId", "_field", "_time", "_value"])`

// positionSlices is how many runs it takes to read every online device's position once.
const positionSlices = 6

// idAlphabet is every character a device id may end with, in order.
const idAlphabet = "-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"

// sliceOf is the regular expression of the ids in position slice k: those whose last character's place in
// idAlphabet is k modulo positionSlices (an id suffix is matched in the index, no point is read).
func sliceOf(k int) *regexp.Regexp {
	var b strings.Builder
	for i, c := range idAlphabet {
		if i%positionSlices == k {
			b.WriteRune(c)
		}
	}
	return regexp.MustCompile("[" + regexp.QuoteMeta(b.String()) + "]$")
}

// Positions returns the last position within the last interval of the devices of slice k (0..positionSlices-1):
// each run reads one slice, so a moving fleet's positions are read in positionSlices runs at a sixth of the cost.
func (h *Health) Positions(ctx context.Context, now time.Time, k int) (map[string]*Seen, error) {
	return h.positions(ctx, influx.Extern{"bucket": h.Bucket, "start": now.Add(-h.interval()),
		"stop": now.Add(time.Minute), "devices": sliceOf(k)})
}

// PositionsOf returns the last position within Lookback of the devices of ids (the ones coming online), LookupMax
// ids a query.
func (h *Health) PositionsOf(ctx context.Context, now time.Time, ids []string) (map[string]*Seen, error) {
	out := map[string]*Seen{}
	for len(ids) > 0 {
		n := min(len(ids), h.lookupMax())
		got, err := h.positions(ctx, influx.Extern{"bucket": h.Bucket, "start": now.Add(-Lookback),
			"stop": now.Add(time.Minute), "devices": influx.OneOf(ids[:n])}, "last")
		if err != nil {
			return nil, err
		}
		for id, s := range got {
			out[id] = s
		}
		ids = ids[n:]
	}
	return out, nil
}

func (h *Health) positions(ctx context.Context, ext influx.Extern, last ...string) (map[string]*Seen, error) {
	flux := positionsFlux
	if len(last) > 0 {
		// over Lookback, only each series' last point (pushed down) before the table is formed
		flux = strings.Replace(flux, "  |> group()", "  |> last()\n  |> group()", 1)
	}
	rc, err := h.Influx.QueryRaw(ctx, flux, ext)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	out := map[string]*Seen{}
	at := map[string]time.Time{}
	err = influx.EachRow(rc, []string{"clientId", "_field", "_time", "_value"}, func(row []string) error {
		t, err := time.Parse(time.RFC3339Nano, row[2])
		if err != nil {
			return fmt.Errorf("fleet: bad time in query answer: %w", err)
		}
		v, err := strconv.ParseFloat(row[3], 64)
		if err != nil {
			return fmt.Errorf("fleet: bad position in query answer: %w", err)
		}
		s := out[row[0]]
		if s == nil {
			s = &Seen{Lat: math.NaN(), Lon: math.NaN()}
			out[row[0]] = s
		}
		key := row[0] + "/" + row[1]
		if t.Before(at[key]) {
			return nil
		}
		at[key] = t
		if t.After(s.At) {
			s.At = t
		}
		if row[1] == schema.Lat {
			s.Lat = v
		} else {
			s.Lon = v
		}
		return nil
	})
	return out, err
}

// LastSeenAny returns the last real point of any field of each device of ids within Lookback, LookupMax ids a query:
// the devices about to be judged late or silent, whose last point may be of a field the window does not read.
func (h *Health) LastSeenAny(ctx context.Context, now time.Time, ids []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	for len(ids) > 0 {
		n := min(len(ids), h.lookupMax())
		got, err := h.read(ctx, anyFieldFlux, influx.Extern{"bucket": h.Bucket, "start": now.Add(-Lookback),
			"stop": now.Add(time.Minute), "devices": influx.OneOf(ids[:n])})
		if err != nil {
			return nil, err
		}
		for id, t := range got {
			out[id] = t
		}
		ids = ids[n:]
	}
	return out, nil
}

// sliceIndex is the position slice of id (see sliceOf).
func sliceIndex(id string) int {
	return strings.IndexByte(idAlphabet, id[len(id)-1]) % positionSlices
}
