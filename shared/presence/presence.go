// Package presence is the digest of the devices' writes that the write gateway keeps: per device, the newest point
// time, the last position and the number of points written since the last flush. Each gateway instance flushes it
// to the data bucket as a few points of the internal measurement Measurement, so the fleet-health run reads a few
// string fields instead of one series per device.
//
// A point's string field holds many entries, "id:time:lat:lon:points" separated by ";": time is the point time in
// Unix milliseconds, base 36; lat and lon are empty when unknown; points is decimal. Nothing in it is trusted when
// read back (Decode skips any entry that does not parse or is out of range).
package presence

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/schema"
)

// Names of the digest's points. Measurement is reserved: no schema may define it, so no device writes it.
const (
	Measurement = schema.DigestMeasurement
	TagSlot     = "slot"
	Field       = "entries"
	// Slots bounds the digest's series: an instance writes under one slot of its random id.
	Slots = 64
	// MaxFieldBytes keeps each field value below InfluxDB's string field limit (64 KiB).
	MaxFieldBytes = 60_000
	// maxPoints bounds one entry's point count as read back.
	maxPoints = 1 << 40
)

// Entry is what the digest knows of one device.
type Entry struct {
	At       time.Time // the newest point time
	Lat, Lon float64   // the last position; NaN: none
	Points   int64     // points written
}

// HasPos reports whether the entry carries a position.
func (e Entry) HasPos() bool { return !math.IsNaN(e.Lat) && !math.IsNaN(e.Lon) }

// merge folds o into e: the newest time wins, a position replaces e's only when o is not older, points add up.
func (e *Entry) merge(o Entry) {
	if !math.IsNaN(o.Lat) && !math.IsNaN(o.Lon) && (!e.HasPos() || !o.At.Before(e.At)) {
		e.Lat, e.Lon = o.Lat, o.Lon
	}
	if o.At.After(e.At) {
		e.At = o.At
	}
	e.Points = min(e.Points+o.Points, maxPoints)
}

// validLat and validLon keep only coordinates on the globe (a device may write anything in a float field).
func validLat(v float64) bool { return v >= -90 && v <= 90 }
func validLon(v float64) bool { return v >= -180 && v <= 180 }

// appendEntry appends id's entry in the digest's text form.
func appendEntry(b []byte, id string, e Entry) []byte {
	b = append(b, id...)
	b = append(b, ':')
	b = strconv.AppendInt(b, e.At.UnixMilli(), 36)
	b = append(b, ':')
	if e.HasPos() {
		b = strconv.AppendFloat(b, e.Lat, 'g', -1, 64)
	}
	b = append(b, ':')
	if e.HasPos() {
		b = strconv.AppendFloat(b, e.Lon, 'g', -1, 64)
	}
	b = append(b, ':')
	return strconv.AppendInt(b, e.Points, 10)
}

// Encode returns the entries of ids (in that order) as field values of at most maxBytes each. An id that is not a
// valid device id is left out (the gateway only records authenticated ids; this keeps the text parseable).
func Encode(ids []string, entries map[string]Entry, maxBytes int) []string {
	var out []string
	var cur, one []byte
	for _, id := range ids {
		e, ok := entries[id]
		if !ok || !api.ValidDeviceID(id) {
			continue
		}
		one = appendEntry(one[:0], id, e)
		if len(one) > maxBytes {
			continue // cannot happen for a valid id (entries are far shorter than MaxFieldBytes)
		}
		if len(cur) > 0 && len(cur)+1+len(one) > maxBytes {
			out = append(out, string(cur))
			cur = cur[:0]
		}
		if len(cur) > 0 {
			cur = append(cur, ';')
		}
		cur = append(cur, one...)
	}
	if len(cur) > 0 {
		out = append(out, string(cur))
	}
	return out
}

// Earliest and latest entry times Decode accepts (anything else is garbage).
var (
	minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
)

// Decode parses one field value into into (merging entries of the same device), keeping the entries whose time is
// in [start, stop) (a zero bound is no bound), and returns how many entries it skipped as malformed.
func Decode(value string, start, stop time.Time, into map[string]Entry) (skipped int) {
	for rest := value; rest != ""; {
		var one string
		one, rest, _ = strings.Cut(rest, ";")
		id, e, ok := decodeEntry(one)
		if !ok {
			skipped++
			continue
		}
		if (!start.IsZero() && e.At.Before(start)) || (!stop.IsZero() && !e.At.Before(stop)) {
			continue
		}
		if have, ok := into[id]; ok {
			have.merge(e)
			e = have
		}
		into[id] = e
	}
	return skipped
}

func decodeEntry(s string) (string, Entry, bool) {
	var p [5]string
	for i := range 4 {
		var ok bool
		if p[i], s, ok = strings.Cut(s, ":"); !ok {
			return "", Entry{}, false
		}
	}
	p[4] = s
	if !api.ValidDeviceID(p[0]) {
		return "", Entry{}, false
	}
	ms, err := strconv.ParseInt(p[1], 36, 64)
	if err != nil || ms < minTime || ms > maxTime {
		return "", Entry{}, false
	}
	e := Entry{At: time.UnixMilli(ms).UTC(), Lat: math.NaN(), Lon: math.NaN()}
	if p[2] != "" || p[3] != "" {
		lat, err1 := strconv.ParseFloat(p[2], 64)
		lon, err2 := strconv.ParseFloat(p[3], 64)
		if err1 != nil || err2 != nil || !validLat(lat) || !validLon(lon) {
			return "", Entry{}, false
		}
		e.Lat, e.Lon = lat, lon
	}
	n, err := strconv.ParseInt(p[4], 10, 64)
	if err != nil || n < 0 || n > maxPoints {
		return "", Entry{}, false
	}
	e.Points = n
	return p[0], e, true
}
