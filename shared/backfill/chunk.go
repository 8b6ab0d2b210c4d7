// Package backfill is the write-missing feature: a planner that finds the minutes a device has no data for (one
// Flux query), splits them into chunks and fans them out to a worker through asynchronous Lambda invokes; the worker
// that generates and writes a chunk; and the coverage read that tells a client how far a backfill got.
package backfill

import (
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
)

// Range is a half-open run of whole minutes [start, end), in Unix minutes. Two integers keep the Lambda payload
// small whatever the gap pattern.
type Range [2]int64

// Minutes is the number of minutes in the range.
func (r Range) Minutes() int64 { return r[1] - r[0] }

// Chunk is one worker invocation: the missing minutes of one device, as ranges.
type Chunk struct {
	DeviceID string  `json:"deviceId"`
	Ranges   []Range `json:"ranges"`
	// Clean lists minutes outside Ranges that held no point of the device when the chunk was planned (the part of
	// the window's first hour before the window): an hour made of Ranges and Clean minutes holds only the chunk's
	// own points, so the worker computes its hourly aggregates itself.
	Clean []Range `json:"clean,omitempty"`
}

// Minutes is the number of minutes the chunk writes.
func (c Chunk) Minutes() int64 {
	var n int64
	for _, r := range c.Ranges {
		n += r.Minutes()
	}
	return n
}

// Limits on what a worker accepts: a chunk is never larger than the widest window (30 days).
const (
	MaxDays         = 30
	MaxChunkMinutes = MaxDays * 1440
	// minuteMin/minuteMax bound timestamps to what InfluxDB stores (1970..2200).
	minuteMin = 0
	minuteMax = 7258118400 / 60
)

// Validate checks a chunk received from the network (the async invoke payload).
func (c Chunk) Validate() error {
	if err := api.CheckDeviceID(c.DeviceID); err != nil {
		return err
	}
	if len(c.Ranges) == 0 {
		return api.InvalidParam("ranges", "chunk has no ranges")
	}
	var total, prevEnd int64 = 0, minuteMin
	for i, r := range c.Ranges {
		if r[0] < prevEnd || r[1] <= r[0] || r[1] > minuteMax {
			return api.InvalidParam("ranges", "range %d is not an ascending, non-empty, non-overlapping [start,end) in Unix minutes", i)
		}
		total += r.Minutes()
		prevEnd = r[1]
	}
	if total > MaxChunkMinutes {
		return api.InvalidParam("ranges", "chunk holds %d minutes, more than %d", total, MaxChunkMinutes)
	}
	if len(c.Clean) > 1 {
		return api.InvalidParam("clean", "at most one clean range")
	}
	for _, r := range c.Clean {
		if r[0] < minuteMin || r[1] <= r[0] || r[1] > minuteMax || r.Minutes() >= 60 {
			return api.InvalidParam("clean", "clean must be a non-empty [start,end) of less than an hour")
		}
	}
	return nil
}

// Window is a half-open interval of whole minutes. A job, its tasks' reference to it and a coverage answer embed
// it: their JSON holds it as "from" and "to".
type Window struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Minutes is the number of minutes in the window.
func (w Window) Minutes() int64 { return int64(w.To.Sub(w.From) / time.Minute) }

// LastDays is the window [T - days, T) with T = now truncated to the minute.
func LastDays(now time.Time, days int) Window {
	t := now.UTC().Truncate(time.Minute)
	return Window{From: t.Add(-time.Duration(days) * 24 * time.Hour), To: t}
}

// ParseWindow reads from/to (RFC 3339, whole minutes, at most MaxDays apart); both empty means def.
func ParseWindow(from, to string, def Window) (Window, error) {
	if from == "" && to == "" {
		return def, nil
	}
	if from == "" || to == "" {
		return Window{}, api.InvalidParam("from", "give both from and to, or neither")
	}
	var w Window
	for _, p := range []struct {
		name, v string
		dst     *time.Time
	}{{"from", from, &w.From}, {"to", to, &w.To}} {
		if len(p.v) > 40 {
			return Window{}, api.InvalidParam(p.name, "%s is too long", p.name)
		}
		t, err := time.Parse(time.RFC3339Nano, p.v)
		if err != nil {
			return Window{}, api.InvalidParam(p.name, "%s must be an RFC 3339 time", p.name)
		}
		if !t.Equal(t.Truncate(time.Minute)) {
			return Window{}, api.InvalidParam(p.name, "%s must be on a whole minute", p.name)
		}
		if t.Unix() < minuteMin || t.Unix() > minuteMax*60 {
			return Window{}, api.InvalidParam(p.name, "%s is out of range", p.name)
		}
		*p.dst = t.UTC()
	}
	if !w.From.Before(w.To) {
		return Window{}, api.InvalidParam("to", "to must be after from")
	}
	if w.Minutes() > MaxChunkMinutes {
		return Window{}, api.InvalidParam("to", "the window spans more than %d days", MaxDays)
	}
	return w, nil
}

// Split cuts a device's gaps (ascending ranges) into chunks of at most chunkMinutes minutes each, so every worker
// gets about the same amount of work whatever the gap pattern. With chunks of an hour or more, chunk borders fall
// on whole hours: each hour is then written by exactly one chunk, which can compute its hourly aggregates alone.
func Split(deviceID string, gaps []Range, chunkMinutes int) []Chunk {
	limit := int64(max(chunkMinutes, 1)) // config validates it; never loop forever on a bad value
	var out []Chunk
	var cur Chunk
	var n int64
	flush := func() {
		if n > 0 {
			cur.DeviceID = deviceID
			out = append(out, cur)
			cur, n = Chunk{}, 0
		}
	}
	add := func(r Range) {
		if k := len(cur.Ranges); k > 0 && cur.Ranges[k-1][1] == r[0] {
			cur.Ranges[k-1][1] = r[1]
		} else {
			cur.Ranges = append(cur.Ranges, r)
		}
		n += r.Minutes()
	}
	if limit < 60 {
		for _, g := range gaps {
			for g.Minutes() > 0 {
				take := min(g.Minutes(), limit-n)
				add(Range{g[0], g[0] + take})
				g[0] += take
				if n == limit {
					flush()
				}
			}
		}
		flush()
		return out
	}
	// whole hours: collect the pieces of one hour, then add them to the current chunk if they fit
	var hour []Range
	var hourN, hourOf int64 = 0, -1
	endHour := func() {
		if hourN == 0 {
			return
		}
		if n+hourN > limit {
			flush()
		}
		for _, r := range hour {
			add(r)
		}
		hour, hourN = hour[:0], 0
	}
	for _, g := range gaps {
		for m := g[0]; m < g[1]; {
			h := floorDiv(m, 60)
			end := min(g[1], (h+1)*60)
			if h != hourOf {
				endHour()
				hourOf = h
			}
			hour = append(hour, Range{m, end})
			hourN += end - m
			m = end
		}
	}
	endHour()
	flush()
	return out
}

// floorDiv divides rounding toward minus infinity (minutes before 1970 are refused earlier, this is for safety).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// gapsOf turns a presence bitmap of the window's minutes into the ascending ranges of absent minutes.
func gapsOf(w Window, present []bool) (gaps []Range, missing int64) {
	base := w.From.Unix() / 60
	start := -1
	for i, p := range present {
		switch {
		case !p && start < 0:
			start = i
		case p && start >= 0:
			gaps = append(gaps, Range{base + int64(start), base + int64(i)})
			missing += int64(i - start)
			start = -1
		}
	}
	if start >= 0 {
		gaps = append(gaps, Range{base + int64(start), base + int64(len(present))})
		missing += int64(len(present) - start)
	}
	return gaps, missing
}
