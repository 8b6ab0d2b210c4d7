// Package measurements answers the dashboard's reads of one device's data: plot-ready windowed series
// (GET /api/devices/{deviceId}/measurements) and per-field gauges (GET /api/devices/{deviceId}/summary).
// Every caller value is validated here and reaches Flux only through influx.Extern or as text taken from this
// package's own allow-lists; a request that fails validation never reaches InfluxDB.
package measurements

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/schema"
)

// Field is one of the fields the backfill and the devices write to the `environment` measurement.
type Field string

// The allow-list of fields. Only these constants are ever rendered into Flux text.
const (
	Temperature Field = schema.Temperature
	Humidity    Field = schema.Humidity
	Pressure    Field = schema.Pressure
	CO2         Field = schema.CO2
	TVOC        Field = schema.TVOC
	Lat         Field = schema.Lat
	Lon         Field = schema.Lon
)

// AllFields lists the allow-list in a stable order: the schema's numeric fields of its measurement.
var AllFields = func() []Field {
	var out []Field
	for _, f := range schema.Default().Fields(schema.Measurement) {
		if f.Type.Numeric() {
			out = append(out, Field(f.Name))
		}
	}
	return out
}()

// DefaultFields are the seed dashboard's five series.
var DefaultFields = []Field{Temperature, TVOC, Pressure, Humidity, CO2}

// Fn is an aggregate the caller may ask for; fluxFn maps it to the Flux identifier rendered into the query.
type Fn string

// last is lastByTime (defined in fnDefs): Flux's last() takes a table's last row, and a field's table merged
// from several series (a sensor tag changed) is not in time order.
var fluxFn = map[Fn]string{"mean": "mean", "min": "min", "max": "max", "last": "lastByTime"}

// Limits of the measurements route.
const (
	DefaultMaxPoints = 1000
	MaxMaxPoints     = 10000
	// MaxRows caps raw and explicit-window queries: rows are estimated from the range at one point per minute
	// (the device and backfill rate), before any query runs.
	MaxRows = 50000
	// MaxRange bounds any range: the downsampled retention default (400d) is the oldest data that can exist.
	MaxRange = 400 * 24 * time.Hour
	// MinEvery and MaxEvery bound an explicit window.
	MinEvery = time.Second
	MaxEvery = 7 * 24 * time.Hour
	// MinSummaryRange and MaxSummaryRange bound the summary's range.
	MinSummaryRange     = time.Hour
	MaxSummaryRange     = 30 * 24 * time.Hour
	DefaultSummaryRange = 30 * 24 * time.Hour
	maxParamLen         = 64
)

// niceWindows are the windows `every=auto` chooses from, smallest first.
var niceWindows = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// Request is a validated measurements request.
type Request struct {
	DeviceID  string
	Start     time.Time
	Stop      time.Time
	Fields    []Field
	Every     time.Duration // 0 means raw
	Auto      bool          // Every was chosen by auto
	Fn        Fn
	MaxPoints int
	Origin    Origin // whose points: the device's, generated ones, or all (the default)
}

// Raw reports whether the request reads the points unaggregated.
func (q Request) Raw() bool { return q.Every == 0 }

// single returns the one value of a query parameter, "" when absent; a repeated parameter is a 400.
func single(v url.Values, name string) (string, error) {
	vals := v[name]
	switch {
	case len(vals) == 0:
		return "", nil
	case len(vals) > 1:
		return "", api.InvalidParam(name, "%s must be given at most once", name)
	case len(vals[0]) > maxParamLen:
		return "", api.InvalidParam(name, "%s is longer than %d characters", name, maxParamLen)
	}
	return vals[0], nil
}

// checkKnown refuses parameters the route does not define, so a typo is not silently ignored (and `key`: keys
// travel only in the Authorization header).
func checkKnown(v url.Values, known ...string) error {
	for name := range v {
		ok := false
		for _, k := range known {
			if name == k {
				ok = true
				break
			}
		}
		if !ok {
			return api.InvalidParam(safeName(name), "unknown parameter; allowed: %s", strings.Join(known, ", "))
		}
	}
	return nil
}

// safeName keeps an unknown parameter's name printable and short before it is echoed back.
func safeName(s string) string {
	if len(s) > 32 {
		s = s[:32]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// ParseRequest validates the measurements query string. now is the request time (stop's default).
func ParseRequest(deviceID string, v url.Values, now time.Time) (Request, error) {
	if err := checkKnown(v, "start", "stop", "fields", "every", "fn", "maxPoints", "origin"); err != nil {
		return Request{}, err
	}
	q := Request{DeviceID: deviceID, Fn: "mean", MaxPoints: DefaultMaxPoints}
	var err error
	if q.Origin, err = parseOrigin(v); err != nil {
		return q, err
	}
	now = now.UTC().Truncate(time.Second)

	s, err := single(v, "stop")
	if err != nil {
		return q, err
	}
	q.Stop = now
	if s != "" {
		if q.Stop, err = parseTime("stop", s, now); err != nil {
			return q, err
		}
	}
	if s, err = single(v, "start"); err != nil {
		return q, err
	}
	if s == "" {
		s = "-1d"
	}
	if q.Start, err = parseTime("start", s, now); err != nil {
		return q, err
	}
	if !q.Start.Before(q.Stop) {
		return q, api.InvalidParam("start", "start must be before stop")
	}
	if q.Stop.Sub(q.Start) > MaxRange {
		return q, api.InvalidParam("start", "the range from start to stop may not exceed %s", formatDuration(MaxRange))
	}

	if s, err = single(v, "fields"); err != nil {
		return q, err
	}
	if q.Fields, err = parseFields("fields", s, DefaultFields); err != nil {
		return q, err
	}

	if s, err = single(v, "fn"); err != nil {
		return q, err
	}
	if s != "" {
		if _, ok := fluxFn[Fn(s)]; !ok {
			return q, api.InvalidParam("fn", "fn must be one of mean, min, max, last")
		}
		q.Fn = Fn(s)
	}

	if s, err = single(v, "maxPoints"); err != nil {
		return q, err
	}
	if s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxMaxPoints {
			return q, api.InvalidParam("maxPoints", "maxPoints must be an integer in [1, %d]", MaxMaxPoints)
		}
		q.MaxPoints = n
	}

	if s, err = single(v, "every"); err != nil {
		return q, err
	}
	rng := q.Stop.Sub(q.Start)
	switch s {
	case "", "auto":
		q.Auto = true
		for _, w := range niceWindows {
			if windows(q.Start, q.Stop, w) <= int64(q.MaxPoints) {
				q.Every = w
				break
			}
		}
		if q.Every == 0 {
			largest := niceWindows[len(niceWindows)-1]
			return q, api.InvalidParam("maxPoints", "a range of %s needs at least %d points with the largest window (%s)",
				formatDuration(rng), windows(q.Start, q.Stop, largest), formatDuration(largest))
		}
	case "raw":
		if rows := estimatedRows(rng); rows > MaxRows {
			return q, api.InvalidParam("every", "every=raw is limited to ranges of %d minutes (one point per minute); this range is about %d minutes: use a window (e.g. every=auto)", MaxRows, rows)
		}
	default:
		d, ok := parseDuration(s)
		if !ok || d < MinEvery || d > MaxEvery {
			return q, api.InvalidParam("every", "every must be auto, raw or a duration in [%s, %s] like 10m", formatDuration(MinEvery), formatDuration(MaxEvery))
		}
		if rows := min(windows(q.Start, q.Stop, d), estimatedRows(rng)); rows > MaxRows {
			return q, api.InvalidParam("every", "every=%s over this range gives about %d rows, more than %d: use a longer window", formatDuration(d), rows, MaxRows)
		}
		q.Every = d
	}
	return q, nil
}

// parseOrigin reads origin: device, generated or all (the default).
func parseOrigin(v url.Values) (Origin, error) {
	s, err := single(v, "origin")
	if err != nil || s == "" {
		return OriginAll, err
	}
	for o := range originFilter {
		if string(o) == s {
			return o, nil
		}
	}
	return "", api.InvalidParam("origin", "origin must be device, generated or all")
}

// estimatedRows is the number of rows a range holds at one point per minute.
func estimatedRows(rng time.Duration) int64 { return int64((rng + time.Minute - 1) / time.Minute) }

// windows counts the epoch-aligned windows of width w that overlap [start, stop): the most rows aggregateWindow
// (which aligns windows to the Unix epoch) can return.
func windows(start, stop time.Time, w time.Duration) int64 {
	s, e := start.UnixNano(), stop.UnixNano()-1
	return floorDiv(e, int64(w)) - floorDiv(s, int64(w)) + 1
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// parseFields reads a comma list of allow-listed fields; empty means def. Duplicates and unknown names are 400s.
func parseFields(param, s string, def []Field) ([]Field, error) {
	if s == "" {
		return def, nil
	}
	parts := strings.Split(s, ",")
	out := make([]Field, 0, len(parts))
	seen := map[Field]bool{}
	for _, p := range parts {
		f, ok := lookupField(strings.TrimSpace(p))
		if !ok {
			return nil, api.InvalidParam(param, "%s must be a comma list of %s", param, fieldList())
		}
		if seen[f] {
			return nil, api.InvalidParam(param, "%s lists %s twice", param, f)
		}
		seen[f] = true
		out = append(out, f)
	}
	return out, nil
}

// lookupField returns the allow-list constant equal to s: the constant, not s, travels on.
func lookupField(s string) (Field, bool) {
	for _, f := range AllFields {
		if string(f) == s {
			return f, true
		}
	}
	return "", false
}

func fieldList() string {
	names := make([]string, len(AllFields))
	for i, f := range AllFields {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}

// SummaryRequest is a validated summary request.
type SummaryRequest struct {
	DeviceID string
	Range    time.Duration
	Start    time.Time
	Stop     time.Time
	Fields   []Field
	Origin   Origin
}

// ParseSummaryRequest validates the summary query string: range (1h..30d, default 30d) and fields (default all).
func ParseSummaryRequest(deviceID string, v url.Values, now time.Time) (SummaryRequest, error) {
	if err := checkKnown(v, "range", "fields", "origin"); err != nil {
		return SummaryRequest{}, err
	}
	q := SummaryRequest{DeviceID: deviceID, Range: DefaultSummaryRange, Stop: now.UTC().Truncate(time.Second)}
	var err error
	if q.Origin, err = parseOrigin(v); err != nil {
		return q, err
	}
	s, err := single(v, "range")
	if err != nil {
		return q, err
	}
	if s != "" {
		d, ok := parseDuration(strings.TrimPrefix(s, "-"))
		if !ok || d < MinSummaryRange || d > MaxSummaryRange {
			return q, api.InvalidParam("range", "range must be a duration in [%s, %s] like 24h, 7d or 30d",
				formatDuration(MinSummaryRange), formatDuration(MaxSummaryRange))
		}
		q.Range = d
	}
	q.Start = q.Stop.Add(-q.Range)
	if s, err = single(v, "fields"); err != nil {
		return q, err
	}
	if q.Fields, err = parseFields("fields", s, AllFields); err != nil {
		return q, err
	}
	return q, nil
}
