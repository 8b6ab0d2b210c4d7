package presence

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

// t0 is a whole millisecond (the digest's time resolution).
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 8_000_000, time.UTC)

func nan() float64 { return math.NaN() }

// same compares entries, NaN positions equal.
func same(a, b Entry) bool {
	eq := func(x, y float64) bool { return x == y || (math.IsNaN(x) && math.IsNaN(y)) }
	return a.At.Equal(b.At) && eq(a.Lat, b.Lat) && eq(a.Lon, b.Lon) && a.Points == b.Points
}

func sameMap(t *testing.T, got, want map[string]Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d entries %v, want %d %v", len(got), got, len(want), want)
	}
	for id, w := range want {
		if g, ok := got[id]; !ok || !same(g, w) {
			t.Errorf("entry %s: got %+v (present %v), want %+v", id, g, ok, w)
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		entries map[string]Entry
	}{
		{"one with a position", map[string]Entry{"dev-a": {At: t0, Lat: 50.0875, Lon: 14.4213, Points: 1}}},
		{"no position", map[string]Entry{"dev.b_1": {At: t0, Lat: nan(), Lon: nan(), Points: 5000}}},
		{"edges of the globe, tiny and negative values", map[string]Entry{
			"n": {At: t0, Lat: 90, Lon: -180, Points: 2}, "s": {At: t0.Add(time.Hour), Lat: -1.5e-7, Lon: 179.99999999999, Points: 3}}},
		{"longest id", map[string]Entry{strings.Repeat("x", 64): {At: t0, Lat: 0, Lon: 0, Points: 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ids []string
			for id := range tc.entries {
				ids = append(ids, id)
			}
			vals := Encode(ids, tc.entries, MaxFieldBytes)
			if len(vals) != 1 {
				t.Fatalf("Encode: %d values, want 1", len(vals))
			}
			got := map[string]Entry{}
			if skipped := Decode(vals[0], time.Time{}, time.Time{}, got); skipped != 0 {
				t.Errorf("Decode(%q) skipped %d, want 0", vals[0], skipped)
			}
			sameMap(t, got, tc.entries)
		})
	}
}

// TestDecodeHostile: garbage entries are skipped one by one, the valid ones among them kept.
func TestDecodeHostile(t *testing.T) {
	good := "dev-a:" + strconvMs(t0) + ":1:2:3"
	tests := []struct {
		name, value string
		skipped     int
		want        map[string]Entry
	}{
		{"empty", "", 0, map[string]Entry{}},
		{"valid", good, 0, map[string]Entry{"dev-a": {At: t0, Lat: 1, Lon: 2, Points: 3}}},
		{"too few parts", "dev-a:1:2", 1, map[string]Entry{}},
		{"too many parts", good + ":9", 1, map[string]Entry{}},
		{"bad id", "-dev:" + strconvMs(t0) + "::1;" + strings.Repeat("x", 65) + ":" + strconvMs(t0) + "::1;a\"b:" + strconvMs(t0) + "::1", 3, map[string]Entry{}},
		{"time not base 36", "dev-a:zz!:1:2:3", 1, map[string]Entry{}},
		{"time out of range", "dev-a:-1:1:2:3;dev-a:zzzzzzzzzzzz:1:2:3;dev-a:0::: 1", 3, map[string]Entry{}},
		{"latitude out of range", "dev-a:" + strconvMs(t0) + ":91:2:3", 1, map[string]Entry{}},
		{"NaN and Inf positions", "dev-a:" + strconvMs(t0) + ":NaN:2:3;dev-a:" + strconvMs(t0) + ":1:+Inf:3", 2, map[string]Entry{}},
		{"half a position", "dev-a:" + strconvMs(t0) + ":1::3", 1, map[string]Entry{}},
		{"negative or huge points", "dev-a:" + strconvMs(t0) + "::-1;dev-a:" + strconvMs(t0) + "::99999999999999999999", 2, map[string]Entry{}},
		{"empty entries and garbage around a valid one", ";;" + good + ";\x00\xff;", 3, map[string]Entry{"dev-a": {At: t0, Lat: 1, Lon: 2, Points: 3}}},
		{"a device twice: newest time, its position, points added", good + ";dev-a:" + strconvMs(t0.Add(time.Second)) + ":5:6:1;dev-a:" +
			strconvMs(t0.Add(2*time.Second)) + ":::1", 0, map[string]Entry{"dev-a": {At: t0.Add(2 * time.Second), Lat: 5, Lon: 6, Points: 5}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]Entry{}
			if skipped := Decode(tc.value, time.Time{}, time.Time{}, got); skipped != tc.skipped {
				t.Errorf("Decode(%q) skipped %d, want %d", tc.value, skipped, tc.skipped)
			}
			sameMap(t, got, tc.want)
		})
	}
}

// strconvMs is t as an entry's time, big36 a time in milliseconds.
func strconvMs(t time.Time) string { return big36(t.UnixMilli()) }

func big36(ms int64) string { return strconv.FormatInt(ms, 36) }

// TestDecodeWindow: entries outside [start, stop) are left out, not counted as malformed.
func TestDecodeWindow(t *testing.T) {
	entries := map[string]Entry{
		"before": {At: t0.Add(-time.Millisecond), Lat: nan(), Lon: nan(), Points: 1},
		"first":  {At: t0, Lat: nan(), Lon: nan(), Points: 1},
		"last":   {At: t0.Add(time.Minute - time.Millisecond), Lat: nan(), Lon: nan(), Points: 1},
		"at-end": {At: t0.Add(time.Minute), Lat: nan(), Lon: nan(), Points: 1},
	}
	vals := Encode([]string{"at-end", "before", "first", "last"}, entries, MaxFieldBytes)
	got := map[string]Entry{}
	if skipped := Decode(vals[0], t0, t0.Add(time.Minute), got); skipped != 0 {
		t.Errorf("skipped %d, want 0", skipped)
	}
	sameMap(t, got, map[string]Entry{"first": entries["first"], "last": entries["last"]})
}

// TestEncodeFieldCap: many entries split into values of at most the cap, each decoding on its own, none lost.
func TestEncodeFieldCap(t *testing.T) {
	tests := []struct{ devices, maxBytes int }{{3000, MaxFieldBytes}, {200, 500}, {10, 1 << 20}}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.devices, "/", tc.maxBytes), func(t *testing.T) {
			entries := map[string]Entry{}
			ids := make([]string, tc.devices)
			for i := range ids {
				ids[i] = fmt.Sprintf("device-with-a-rather-long-id-%05d", i)
				entries[ids[i]] = Entry{At: t0.Add(time.Duration(i) * time.Millisecond), Lat: -33.868820123456, Lon: 151.209295987654, Points: int64(i)}
			}
			vals := Encode(ids, entries, tc.maxBytes)
			total := 0
			for _, v := range vals {
				total += len(v)
			}
			if minVals := total/tc.maxBytes + 1; len(vals) < minVals || len(vals) > minVals+1 {
				t.Errorf("%d values of %d bytes, want %d or %d", len(vals), total, minVals, minVals+1)
			}
			got := map[string]Entry{}
			for _, v := range vals {
				if len(v) > tc.maxBytes {
					t.Errorf("a value of %d bytes, want at most %d", len(v), tc.maxBytes)
				}
				if skipped := Decode(v, time.Time{}, time.Time{}, got); skipped != 0 {
					t.Errorf("skipped %d, want 0", skipped)
				}
			}
			sameMap(t, got, entries)
		})
	}
}

// TestBatch: a request's newest time (clamped to now), its newest position (only when both coordinates are known
// and on the globe) and its points.
func TestBatch(t *testing.T) {
	type pt struct {
		at       time.Time
		lat, lon float64
	}
	now := t0.Add(time.Minute)
	tests := []struct {
		name   string
		points []pt
		want   Entry
	}{
		{"one point", []pt{{t0, 1, 2}}, Entry{At: t0, Lat: 1, Lon: 2, Points: 1}},
		{"newest position wins whatever the order", []pt{{t0.Add(time.Second), 3, 4}, {t0, 1, 2}}, Entry{At: t0.Add(time.Second), Lat: 3, Lon: 4, Points: 2}},
		{"no position", []pt{{t0, nan(), nan()}, {t0, nan(), nan()}}, Entry{At: t0, Lat: nan(), Lon: nan(), Points: 2}},
		{"Lat and Lon on separate points", []pt{{t0, 5, nan()}, {t0.Add(time.Second), nan(), 6}}, Entry{At: t0.Add(time.Second), Lat: 5, Lon: 6, Points: 2}},
		{"only Lat", []pt{{t0, 5, nan()}}, Entry{At: t0, Lat: nan(), Lon: nan(), Points: 1}},
		{"off the globe ignored", []pt{{t0, 1, 2}, {t0.Add(time.Second), 500, -900}}, Entry{At: t0.Add(time.Second), Lat: 1, Lon: 2, Points: 2}},
		{"future clamped to now", []pt{{now.Add(5 * time.Minute), 1, 2}}, Entry{At: now, Lat: 1, Lon: 2, Points: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b Batch
			for _, p := range tc.points {
				b.Add(p.at, p.lat, p.lon)
			}
			if got := b.entry(now); !same(got, tc.want) {
				t.Errorf("entry %+v, want %+v", got, tc.want)
			}
		})
	}
}

func batch(at time.Time, lat, lon float64) Batch {
	var b Batch
	b.Add(at, lat, lon)
	return b
}

// lines decodes a flush's line protocol into its field values, checking each point's shape.
func lines(t *testing.T, lp []byte) (values []string, slots map[string]bool, times map[int64]bool) {
	t.Helper()
	slots, times = map[string]bool{}, map[int64]bool{}
	dec := lineprotocol.NewDecoderWithBytes(lp)
	for i := 0; dec.Next(); i++ {
		if i > 1000 {
			t.Fatal("more than 1000 lines")
		}
		m, err := dec.Measurement()
		if err != nil || string(m) != Measurement {
			t.Fatalf("measurement %q, %v; want %s", m, err, Measurement)
		}
		k, v, err := dec.NextTag()
		if err != nil || string(k) != TagSlot {
			t.Fatalf("tag %q, %v; want %s", k, err, TagSlot)
		}
		slots[string(v)] = true
		if k, _, _ := dec.NextTag(); k != nil {
			t.Fatalf("a second tag %q", k)
		}
		fk, fv, err := dec.NextField()
		if err != nil || string(fk) != Field || fv.Kind() != lineprotocol.String {
			t.Fatalf("field %q %v, %v; want the string field %s", fk, fv, err, Field)
		}
		values = append(values, fv.StringV())
		ts, err := dec.Time(lineprotocol.Nanosecond, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if times[ts.UnixNano()] {
			t.Errorf("two points at %d", ts.UnixNano())
		}
		times[ts.UnixNano()] = true
	}
	return values, slots, times
}

// TestRecorderFlushes: the first write flushes at once, later ones wait for `every`; one slot per instance; a failed
// write keeps the entries (merged with newer ones) for the next flush.
func TestRecorderFlushes(t *testing.T) {
	r := NewRecorder(20*time.Second, 0)
	now := t0
	r.Note("dev-a", batch(t0, 1, 2), now)
	f := r.Take(now)
	if f == nil || f.Devices != 1 {
		t.Fatalf("first write: flush %+v, want one device flushed at once", f)
	}
	if again := r.Take(now); again != nil {
		t.Errorf("a second Take while one is in flight: %+v, want none", again)
	}
	f.Done(nil)
	vals, slots, _ := lines(t, f.Lines)
	if len(vals) != 1 || len(slots) != 1 {
		t.Fatalf("flush: %d values in %d slots, want 1 in 1", len(vals), len(slots))
	}
	for s := range slots {
		if n, err := fmt.Sscan(s, new(int)); n != 1 || err != nil {
			t.Errorf("slot %q is not a number", s)
		}
	}

	now = now.Add(10 * time.Second)
	r.Note("dev-b", batch(now, nan(), nan()), now)
	if f := r.Take(now); f != nil {
		t.Errorf("10 s after a flush: %+v, want none (every 20 s)", f)
	}
	now = now.Add(10 * time.Second)
	r.Note("dev-a", batch(now, 3, 4), now)
	f = r.Take(now)
	if f == nil || f.Devices != 2 {
		t.Fatalf("20 s after: flush %+v, want dev-a and dev-b", f)
	}
	f.Done(fmt.Errorf("InfluxDB down"))
	if got := r.Pending(); got != 2 {
		t.Errorf("after a failed flush %d pending, want 2 kept", got)
	}
	now = now.Add(5 * time.Second)
	r.Note("dev-a", batch(now, nan(), nan()), now)
	if f := r.Take(now); f != nil {
		t.Errorf("5 s after a failed flush: %+v, want none", f)
	}
	now = now.Add(20 * time.Second)
	f = r.Take(now)
	if f == nil {
		t.Fatal("20 s after a failed flush: none, want a retry")
	}
	f.Done(nil)
	vals, _, _ = lines(t, f.Lines)
	got := map[string]Entry{}
	for _, v := range vals {
		Decode(v, time.Time{}, time.Time{}, got)
	}
	sameMap(t, got, map[string]Entry{
		"dev-a": {At: t0.Add(25 * time.Second), Lat: 3, Lon: 4, Points: 2},
		"dev-b": {At: t0.Add(10 * time.Second), Lat: nan(), Lon: nan(), Points: 1},
	})
	if r.Pending() != 0 {
		t.Errorf("%d pending after a flush, want 0", r.Pending())
	}
}

// TestRecorderBounded: past maxPending devices new ones are left out (and counted), known ones still updated; a
// failed flush puts back no more than the cap.
func TestRecorderBounded(t *testing.T) {
	r := NewRecorder(time.Second, 100)
	r.Note("first", batch(t0, nan(), nan()), t0)
	r.Take(t0).Done(nil) // the first write flushes at once
	for i := range 150 {
		r.Note(fmt.Sprintf("d%03d", i), batch(t0, nan(), nan()), t0)
	}
	r.Note("d000", batch(t0.Add(time.Millisecond), nan(), nan()), t0.Add(time.Millisecond))
	if got := r.Pending(); got != 100 {
		t.Errorf("%d pending, want the cap 100", got)
	}
	now := t0.Add(time.Second)
	f := r.Take(now)
	if f == nil || f.Devices != 100 || f.Dropped != 50 {
		t.Fatalf("flush %+v, want 100 devices and 50 dropped", f)
	}
	for i := range 30 {
		r.Note(fmt.Sprintf("n%03d", i), batch(now, nan(), nan()), now)
	}
	f.Done(fmt.Errorf("down"))
	if got := r.Pending(); got != 100 {
		t.Errorf("after a failed flush %d pending, want the cap 100", got)
	}
	vals, _, _ := lines(t, f.Lines)
	got := map[string]Entry{}
	for _, v := range vals {
		Decode(v, time.Time{}, time.Time{}, got)
	}
	if e := got["d000"]; e.Points != 2 || !e.At.Equal(t0.Add(time.Millisecond)) {
		t.Errorf("d000: %+v, want 2 points, newest at %v", e, t0.Add(time.Millisecond))
	}
}

// TestReadWindow writes two instances' flushes and garbage points to a real InfluxDB and reads the window back.
func TestReadWindow(t *testing.T) {
	srv := influxtest.Shared(t)
	c := srv.Client(t)
	bucket := srv.NewBucket(t, "presence")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	a, b := NewRecorder(0, 0), NewRecorder(0, 0)
	a.Note("dev-a", batch(now.Add(-10*time.Minute), 1, 2), now.Add(-10*time.Minute)) // before the window
	a.Note("dev-old", batch(now.Add(-10*time.Minute), 1, 2), now.Add(-10*time.Minute))
	b.Note("dev-a", batch(now.Add(-30*time.Second), 3, 4), now.Add(-30*time.Second))
	b.Note("dev-b", batch(now.Add(-20*time.Second), nan(), nan()), now.Add(-20*time.Second))
	var lp []byte
	for _, f := range []*Flush{a.Take(now.Add(-10 * time.Minute)), b.Take(now.Add(-20 * time.Second))} {
		lp = append(lp, f.Lines...)
		f.Done(nil)
	}
	// an entry flushed late (its point in the window, its time before it) and garbage
	lp = append(lp, fmt.Sprintf("%s,%s=1 %s=\"dev-a:%s:9:9:1;junk;dev-c:%s:::5\" %d\n", Measurement, TagSlot, Field,
		big36(now.Add(-5*time.Minute).UnixMilli()), big36(now.Add(-time.Minute).UnixMilli()), now.Add(-time.Second).UnixNano())...)
	lp = append(lp, fmt.Sprintf("%s,%s=2 other=1i %d\n", Measurement, TagSlot, now.UnixNano())...)
	if err := c.WriteLines(ctx, bucket, lp); err != nil {
		t.Fatal(err)
	}
	got, skipped, err := Read(ctx, c, bucket, now.Add(-2*time.Minute), now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if skipped != 1 {
		t.Errorf("skipped %d, want 1 (junk)", skipped)
	}
	sameMap(t, got, map[string]Entry{
		"dev-a": {At: now.Add(-30 * time.Second), Lat: 3, Lon: 4, Points: 1},
		"dev-b": {At: now.Add(-20 * time.Second), Lat: nan(), Lon: nan(), Points: 1},
		"dev-c": {At: now.Add(-time.Minute), Lat: nan(), Lon: nan(), Points: 5},
	})
}

// TestReadFullFields: a flush of many devices (several values near MaxFieldBytes) is read back whole.
func TestReadFullFields(t *testing.T) {
	srv := influxtest.Shared(t)
	c := srv.Client(t)
	bucket := srv.NewBucket(t, "presencefull")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	const n = 5000
	r := NewRecorder(0, n)
	for i := range n {
		r.Note(fmt.Sprintf("a-long-device-identifier-%05d", i), batch(now.Add(-time.Duration(i)*time.Millisecond), -33.8688201, 151.2092955), now)
	}
	f := r.Take(now)
	values, _, _ := lines(t, f.Lines)
	if len(values) < 3 {
		t.Fatalf("%d values, want several", len(values))
	}
	for _, v := range values[:len(values)-1] {
		if len(v) < MaxFieldBytes-100 || len(v) > MaxFieldBytes {
			t.Errorf("a value of %d bytes, want just under %d", len(v), MaxFieldBytes)
		}
	}
	if err := c.WriteLines(ctx, bucket, f.Lines); err != nil {
		t.Fatal(err)
	}
	f.Done(nil)
	got, skipped, err := Read(ctx, c, bucket, now.Add(-time.Minute), now.Add(time.Minute))
	if err != nil || skipped != 0 || len(got) != n {
		t.Fatalf("Read: %d devices, %d skipped, %v; want %d, 0", len(got), skipped, err, n)
	}
	if e := got["a-long-device-identifier-00007"]; !e.At.Equal(now.Add(-7*time.Millisecond)) || e.Lat != -33.8688201 || e.Points != 1 {
		t.Errorf("entry 7: %+v", e)
	}
}
