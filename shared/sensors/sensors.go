// Package sensors generates the virtual device's `environment` measurements exactly as the seed's "Write Missing
// Data" button does (same formulas, tags and fields), except that the random term is derived from (deviceId, t), so
// writing a minute twice writes the same values: a backfill is idempotent and testable.
package sensors

import (
	"hash/fnv"
	"math"
	"strconv"

	"github.com/iot-center/iot-center-serverless/shared/schema"
)

// DayMillis is one day in milliseconds (the seed's DAY_MILLIS).
const DayMillis = 86_400_000

// gpsLapMillis is the duration of one lap of the GPS track.
const gpsLapMillis = 30 * DayMillis

// gpsRadius is the track's half-height in degrees of latitude (about 1.1 km).
const gpsRadius = 0.01

// Range is a field's (period in days, min, max) from the seed.
type Range struct {
	Period   float64
	Min, Max float64
	Integer  bool
}

// Ranges of the generated fields (the seed's generateValue arguments).
var (
	Temperature = Range{Period: 30, Min: 0, Max: 40}
	Humidity    = Range{Period: 90, Min: 0, Max: 99}
	Pressure    = Range{Period: 20, Min: 970, Max: 1050}
	CO2         = Range{Period: 1, Min: 400, Max: 3000, Integer: true}
	TVOC        = Range{Period: 1, Min: 250, Max: 2000, Integer: true}
)

// Reading is one point's fields.
type Reading struct {
	Temperature, Humidity, Pressure float64
	CO2, TVOC                       int64
	Lat, Lon                        float64
}

// Fields returns the reading as a field map (for clients that build points, such as influxdb-client-go).
func (r Reading) Fields() map[string]any {
	return map[string]any{
		schema.Temperature: r.Temperature, schema.Humidity: r.Humidity, schema.Pressure: r.Pressure,
		schema.CO2: r.CO2, schema.TVOC: r.TVOC, schema.Lat: r.Lat, schema.Lon: r.Lon,
	}
}

// TagMap returns the point's tags for deviceID.
func TagMap(deviceID string) map[string]string {
	m := make(map[string]string, len(schema.SensorTags)+1)
	for _, t := range schema.SensorTags {
		m[t[0]] = t[1]
	}
	m[schema.TagClientID] = deviceID
	return m
}

// Generator computes readings around a home position (DEFAULT_LAT/DEFAULT_LON).
type Generator struct {
	Lat, Lon float64
}

// Seed is the per-device part of the deterministic random term.
type Seed uint64

// SeedOf hashes a device id (FNV-1a) once, so generating a point costs no string hashing.
func SeedOf(deviceID string) Seed {
	h := fnv.New64a()
	_, _ = h.Write([]byte(deviceID))
	return Seed(h.Sum64())
}

// splitmix64 is a fast, well-mixed 64-bit hash (Steele et al.).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// R returns the deterministic random term in [0, 1) for one field (k) of the point at tMs.
func (s Seed) R(tMs int64, k uint64) float64 {
	x := splitmix64(uint64(s) ^ splitmix64(uint64(tMs)*8+k))
	return float64(x>>11) / (1 << 53)
}

// tenths is the seed's generateValue with r given, in tenths: trunc((...)*10). Keeping the integer lets the line
// renderer print it without float formatting; the field value is tenths/10, exactly the seed's trunc(...)/10.
func tenths(rg Range, tMs int64, sinDay, r float64) int64 {
	dif := rg.Max - rg.Min
	// (t/DAY) % period, with the remainder taken in integers (every period is whole days): math.Mod is slow and
	// this is the hot path of the worker
	span := int64(rg.Period) * DayMillis
	inPeriod := float64(((tMs%span)+span)%span) / DayMillis
	periodValue := (dif / 4) * math.Sin(inPeriod/rg.Period*2*math.Pi)
	dayValue := (dif / 4) * sinDay
	return int64(math.Trunc((rg.Min + dif/2 + periodValue + dayValue + r) * 10))
}

// fixed is a reading in integers: tenths for the three float fields, whole CO2/TVOC, 1e-7 degrees for Lat/Lon.
type fixed struct {
	temperature, humidity, pressure int64
	co2, tvoc                       int64
	lat, lon                        int64
}

func (g Generator) fixedAt(s Seed, tMs int64) fixed {
	t := tMs
	// the day term is shared by every field: sin(dayFraction*2π - π/2)
	sinDay := math.Sin(float64(tMs%DayMillis)/DayMillis*2*math.Pi - math.Pi/2)
	lat, lon := g.position(tMs)
	return fixed{
		temperature: tenths(Temperature, t, sinDay, s.R(tMs, 0)),
		humidity:    tenths(Humidity, t, sinDay, s.R(tMs, 1)),
		pressure:    tenths(Pressure, t, sinDay, s.R(tMs, 2)),
		// the seed writes these with intField, which truncates
		co2:  tenths(CO2, t, sinDay, s.R(tMs, 3)) / 10,
		tvoc: tenths(TVOC, t, sinDay, s.R(tMs, 4)) / 10,
		lat:  lat,
		lon:  lon,
	}
}

func (f fixed) reading() Reading {
	return Reading{
		Temperature: float64(f.temperature) / 10, Humidity: float64(f.humidity) / 10, Pressure: float64(f.pressure) / 10,
		CO2: f.co2, TVOC: f.tvoc, Lat: float64(f.lat) / 1e7, Lon: float64(f.lon) / 1e7,
	}
}

// At computes the reading of the device with seed s at tMs (Unix milliseconds).
func (g Generator) At(s Seed, tMs int64) Reading { return g.fixedAt(s, tMs).reading() }

// Position is the GPS track: a closed loop around the home position, one lap per 30 days, continuous in t. The
// longitude radius is widened by 1/cos(lat) so the loop is round on the ground.
func (g Generator) Position(tMs int64) (lat, lon float64) {
	la, lo := g.position(tMs)
	return float64(la) / 1e7, float64(lo) / 1e7
}

// position is Position in 1e-7 degrees (what a GPS reports: about 1 cm).
func (g Generator) position(tMs int64) (lat, lon int64) {
	phase := float64(((tMs%gpsLapMillis)+gpsLapMillis)%gpsLapMillis) / gpsLapMillis * 2 * math.Pi
	sin, cos := math.Sincos(phase)
	lonRadius := gpsRadius / math.Max(math.Cos(g.Lat*math.Pi/180), 0.1)
	// a second harmonic (sin 2φ = 2 sin φ cos φ) makes the loop a smooth, non-trivial shape while keeping it closed
	la := g.Lat + gpsRadius*(sin+0.5*sin*cos)
	lo := g.Lon + lonRadius*(cos-1)
	return int64(math.Round(la * 1e7)), int64(math.Round(lo * 1e7))
}

// LinePrefix renders "measurement,<sensor tags>[,agg=<agg>],clientId=<deviceID> " (tags in line-protocol order;
// agg is omitted when empty). deviceID is a validated id: the device-id alphabet needs no escaping.
func LinePrefix(measurement, agg, deviceID string) []byte {
	return linePrefix(measurement, agg, deviceID, false)
}

// GeneratedLinePrefix is LinePrefix with the generated tag (schema.TagGenerated, sorting after clientId): the
// prefix of write-missing's points and of their hourly aggregates.
func GeneratedLinePrefix(measurement, agg, deviceID string) []byte {
	return linePrefix(measurement, agg, deviceID, true)
}

func linePrefix(measurement, agg, deviceID string, generated bool) []byte {
	p := []byte(measurement)
	for _, t := range schema.SensorTags {
		p = append(p, ',')
		p = append(p, t[0]...)
		p = append(p, '=')
		p = append(p, t[1]...)
	}
	if agg != "" {
		p = append(p, ","+schema.TagAgg+"="...)
		p = append(p, agg...)
	}
	p = append(p, ","+schema.TagClientID+"="...)
	p = append(p, deviceID...)
	if generated {
		p = append(p, ","+schema.TagGenerated+"="+schema.GeneratedValue...)
	}
	return append(p, ' ')
}

// Line appends one device's points as line protocol. Build one per device and reuse it: the measurement and tag
// prefix are rendered once.
type Line struct {
	prefix []byte
	seed   Seed
	gen    Generator
}

// NewLine prepares line rendering for deviceID (a validated id: the device-id alphabet needs no escaping).
func NewLine(g Generator, deviceID string) *Line {
	return &Line{prefix: LinePrefix(schema.Measurement, "", deviceID), seed: SeedOf(deviceID), gen: g}
}

// NewGeneratedLine is NewLine for generated points (tagged schema.TagGenerated): write-missing's.
func NewGeneratedLine(g Generator, deviceID string) *Line {
	return &Line{prefix: GeneratedLinePrefix(schema.Measurement, "", deviceID), seed: SeedOf(deviceID), gen: g}
}

// Append renders the point at tMs (Unix milliseconds) with a nanosecond timestamp, without allocating or
// formatting floats (every value is a fixed-point integer).
func (l *Line) Append(buf []byte, tMs int64) []byte {
	buf, _ = l.AppendPoint(buf, tMs)
	return buf
}

// AppendPoint is Append that also returns the reading it rendered (the worker aggregates it hourly in the same pass).
func (l *Line) AppendPoint(buf []byte, tMs int64) ([]byte, Reading) {
	f := l.gen.fixedAt(l.seed, tMs)
	buf = append(buf, l.prefix...)
	buf = append(buf, "CO2="...)
	buf = strconv.AppendInt(buf, f.co2, 10)
	buf = append(buf, "i,Humidity="...)
	buf = appendFixed(buf, f.humidity, 1)
	buf = append(buf, ",Lat="...)
	buf = appendFixed(buf, f.lat, 7)
	buf = append(buf, ",Lon="...)
	buf = appendFixed(buf, f.lon, 7)
	buf = append(buf, ",Pressure="...)
	buf = appendFixed(buf, f.pressure, 1)
	buf = append(buf, ",TVOC="...)
	buf = strconv.AppendInt(buf, f.tvoc, 10)
	buf = append(buf, "i,Temperature="...)
	buf = appendFixed(buf, f.temperature, 1)
	buf = append(buf, ' ')
	buf = strconv.AppendInt(buf, tMs, 10)
	buf = append(buf, "000000\n"...)
	return buf, f.reading()
}

var pow10 = [...]int64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000}

// appendFixed prints units×10^-decimals as a decimal number ("23.4", "50.0873254"); it parses to the same float64
// as units/10^decimals.
func appendFixed(buf []byte, units int64, decimals int) []byte {
	if units < 0 {
		buf = append(buf, '-')
		units = -units
	}
	p := pow10[decimals]
	buf = strconv.AppendInt(buf, units/p, 10)
	buf = append(buf, '.')
	frac := units % p
	for d := decimals - 1; d > 0 && frac < pow10[d]; d-- {
		buf = append(buf, '0')
	}
	return strconv.AppendInt(buf, frac, 10)
}
