package measurements_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/iot-center/iot-center-serverless/internal/authztest"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/measurements"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/setup"
)

// dsFixture: six hours of one-minute data for four devices, downsampled by the setup package's own aggregation.
// "mid" changes its sensor tag at minute 150 (inside hour 2), the others at minute 180 (an hour boundary). "lag"'s
// points from hour 2 on are written after the aggregation, so its aggregates stop at hour 1 (a task running
// late); "stale"'s last half hour is written after it, so its hour 5 aggregate is partial (an hour a backfill
// downsampled while it was still running).
type dsFixture struct {
	c         *influx.Client
	reg       *registry.Registry
	raw, ds   string
	rawH, dsH http.Handler
}

// newDSHandlerAt is f's downsampled-reading handler with its clock at now.
func newDSHandlerAt(t *testing.T, f *dsFixture, now time.Time) http.Handler {
	t.Helper()
	return authztest.Operator(measurements.NewService(f.c, f.reg, f.raw, 10*time.Second, measurements.WithClock(func() time.Time { return now }),
		measurements.WithDownsampled(f.ds)).Routes())
}

func newDSFixture(t *testing.T) *dsFixture {
	t.Helper()
	srv := influxtest.Shared(t)
	f := &dsFixture{c: srv.Client(t)}
	f.raw, f.ds = srv.NewBucket(t, "dsraw"), srv.NewBucket(t, "ds1h")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var b, late bytes.Buffer
	for m := 0; m < 360; m++ {
		ts := t0.Add(time.Duration(m) * time.Minute).UnixNano()
		for _, d := range []struct {
			id     string
			change int
		}{{"mid", 150}, {"edge", 180}, {"lag", 180}, {"stale", 180}} {
			sensor := "A"
			if m >= d.change {
				sensor = "B"
			}
			w := &b
			if d.id == "lag" && m >= 120 || d.id == "stale" && m >= 330 {
				w = &late
			}
			// irregular but exact values: eighths keep sums exact in float64
			fmt.Fprintf(w, "environment,clientId=%s,TemperatureSensor=%s Temperature=%g,CO2=%di %d\n",
				d.id, sensor, float64((m*37)%101)/8, 400+(m*13)%250, ts)
		}
	}
	if err := f.c.WriteLines(ctx, f.raw, b.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := setup.Downsample(ctx, f.c, f.raw, f.ds, t0, t0.Add(6*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := f.c.WriteLines(ctx, f.raw, late.Bytes()); err != nil {
		t.Fatal(err)
	}
	cfg := srv.Config(f.raw)
	cfg.BucketDownsampled = f.ds
	reg := registry.New(f.c, cfg, influxtest.StateTable(t))
	f.reg = reg
	for _, id := range []string{"mid", "edge", "lag", "stale"} {
		if _, _, err := reg.Register(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	clock := measurements.WithClock(func() time.Time { return t0.Add(6 * time.Hour) })
	f.rawH = authztest.Operator(measurements.NewService(f.c, reg, f.raw, 10*time.Second, clock).Routes())
	f.dsH = authztest.Operator(measurements.NewService(f.c, reg, f.raw, 10*time.Second, clock, measurements.WithDownsampled(f.ds)).Routes())
	return f
}

func fetch(t *testing.T, h http.Handler, path string) measResp {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, rec.Code, rec.Body.String())
	}
	var m measResp
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func sameTable(t *testing.T, what string, got, want measResp) {
	t.Helper()
	if got.Every != want.Every || got.Start != want.Start || got.Stop != want.Stop || len(got.Time) != len(want.Time) {
		t.Fatalf("%s: every %s %s..%s rows %d; want every %s %s..%s rows %d (%v vs %v)", what, got.Every, got.Start, got.Stop,
			len(got.Time), want.Every, want.Start, want.Stop, len(want.Time), got.Time, want.Time)
	}
	for i := range want.Time {
		if got.Time[i] != want.Time[i] {
			t.Fatalf("%s: time[%d] = %s, want %s", what, i, got.Time[i], want.Time[i])
		}
		for _, fld := range want.Fields {
			g, w := got.Values[fld][i], want.Values[fld][i]
			if (g == nil) != (w == nil) || (g != nil && math.Abs(*g-*w) > 1e-9*math.Max(1, math.Abs(*w))) {
				t.Fatalf("%s: %s[%d] = %v, want %v", what, fld, i, deref(g), deref(w))
			}
		}
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestDownsampledAgreesWithRaw: windows of whole hours read from the hourly aggregates (completed with raw data
// for partial and not-yet-downsampled hours) equal the windows computed from the raw points.
func TestDownsampledAgreesWithRaw(t *testing.T) {
	f := newDSFixture(t)
	ranges := []struct{ name, start, stop string }{
		{"aligned", t0.Format(time.RFC3339), t0.Add(6 * time.Hour).Format(time.RFC3339)},
		{"partial edges", t0.Add(20 * time.Minute).Format(time.RFC3339), t0.Add(5*time.Hour + 40*time.Minute).Format(time.RFC3339)},
		{"inside one hour", t0.Add(70 * time.Minute).Format(time.RFC3339), t0.Add(110 * time.Minute).Format(time.RFC3339)},
		{"relative", "-6h", ""},
	}
	for _, dev := range []string{"mid", "edge", "lag", "stale"} {
		for _, rg := range ranges {
			for _, every := range []string{"1h", "2h", "3h", "1d"} {
				for _, fn := range []string{"mean", "min", "max", "last"} {
					if dev == "mid" && fn == "last" {
						continue // the schema cannot order two series' `last` inside one hour (see downsampled.go)
					}
					q := url.Values{"start": {rg.start}, "every": {every}, "fn": {fn}, "fields": {"Temperature,CO2,Humidity"}}
					if rg.stop != "" {
						q.Set("stop", rg.stop)
					}
					path := "/api/devices/" + dev + "/measurements?" + q.Encode()
					name := fmt.Sprintf("%s/%s/every=%s/fn=%s", dev, rg.name, every, fn)
					want := fetch(t, f.rawH, path)
					if len(want.Time) == 0 {
						t.Fatalf("%s: the raw path found no data", name)
					}
					sameTable(t, name, fetch(t, f.dsH, path), want)
				}
			}
		}
	}
	// auto picks 5s for 6h at 1000 points: the raw path, identical by construction
	sameTable(t, "auto", fetch(t, f.dsH, "/api/devices/edge/measurements?start=-6h"), fetch(t, f.rawH, "/api/devices/edge/measurements?start=-6h"))
}

// TestDownsampledIsRead: with the raw points of hours 0..2 deleted, 1h windows still come from the aggregates,
// while the three hours before now come from the raw points.
func TestDownsampledIsRead(t *testing.T) {
	f := newDSFixture(t)
	path := "/api/devices/edge/measurements?start=-6h&every=1h&fields=Temperature"
	before := fetch(t, f.dsH, path)
	if len(before.Time) != 6 {
		t.Fatalf("rows before delete = %d, want 6", len(before.Time))
	}
	pred, err := influx.Predicate("_measurement", "environment", "clientId", "edge")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// the delete API's stop is inclusive
	if err := f.c.Delete(ctx, f.raw, t0, t0.Add(3*time.Hour-time.Nanosecond), pred); err != nil {
		t.Fatal(err)
	}
	if raw := fetch(t, f.rawH, path); len(raw.Time) != 3 {
		t.Fatalf("raw path after delete: %d rows, want 3 (hours 3, 4, 5)", len(raw.Time))
	}
	sameTable(t, "after deleting raw hours 0..2", fetch(t, f.dsH, path), before)
	// the same hours read ten hours later: all from the aggregates
	later := newDSHandlerAt(t, f, t0.Add(16*time.Hour))
	got := fetch(t, later, "/api/devices/edge/measurements?start="+t0.Format(time.RFC3339)+"&stop="+t0.Add(6*time.Hour).Format(time.RFC3339)+"&every=1h&fields=Temperature")
	if len(got.Time) != 6 {
		t.Errorf("rows ten hours later = %d, want 6", len(got.Time))
	}
}

// TestDownsampledBucketMissing: before setup created the downsampled bucket, whole-hour windows come from the raw
// data alone.
func TestDownsampledBucketMissing(t *testing.T) {
	f := newDSFixture(t)
	clock := measurements.WithClock(func() time.Time { return t0.Add(6 * time.Hour) })
	h := authztest.Operator(measurements.NewService(f.c, f.reg, f.raw, 10*time.Second, clock, measurements.WithDownsampled("missing_"+influxtest.RandomID(4))).Routes())
	path := "/api/devices/edge/measurements?start=-6h&every=2h&fields=Temperature,CO2"
	sameTable(t, "no downsampled bucket", fetch(t, h, path), fetch(t, f.rawH, path))
}

// TestDownsampledLateAndOld: the 30-day view (hourly aggregates where exact) holds every hour that has raw data,
// with the raw path's exact values: hours before the task's first run (10 days ago), 2 h uploaded 72 h ago after the
// task had aggregated those hours (one of them held a few points then, the other none), next to hours the task
// aggregated in full. origin=device and origin=generated split the device's points from write-missing's, on both
// paths.
func TestDownsampledLateAndOld(t *testing.T) {
	srv := influxtest.Shared(t)
	c := srv.Client(t)
	raw, ds := srv.NewBucket(t, "lateraw"), srv.NewBucket(t, "late1h")
	now := time.Date(2026, 3, 20, 12, 30, 0, 0, time.UTC)
	hour := now.Truncate(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	line := func(w *bytes.Buffer, at time.Time, m int, generated bool) {
		tag := ""
		if generated {
			tag = ",generated=true"
		}
		fmt.Fprintf(w, "environment,clientId=late%s Temperature=%g,CO2=%di %d\n", tag, float64((m*37)%101)/8, 400+(m*13)%250, at.UnixNano())
	}
	minutes := func(w *bytes.Buffer, from time.Time, n int, generated bool) {
		for m := 0; m < n; m++ {
			line(w, from.Add(time.Duration(m)*time.Minute), m, generated)
		}
	}
	late := hour.Add(-72 * time.Hour)
	var before, after bytes.Buffer
	minutes(&before, hour.Add(-5*24*time.Hour), 180, false) // aggregated in full
	minutes(&before, hour.Add(-4*24*time.Hour), 120, true)  // write-missing's, aggregated in full
	minutes(&before, late, 10, false)                       // the first 10 minutes of the late hours
	if err := c.WriteLines(ctx, raw, before.Bytes()); err != nil {
		t.Fatal(err)
	}
	// the task's runs cover the last 7 days only (it started then): nothing older is aggregated
	if err := setup.Downsample(ctx, c, raw, ds, hour.Add(-7*24*time.Hour), hour.Add(-3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	minutes(&after, hour.Add(-10*24*time.Hour), 120, false) // older than the task's first run
	minutes(&after, late.Add(10*time.Minute), 110, false)   // uploaded late: the rest of 72 h ago and the hour after
	if err := c.WriteLines(ctx, raw, after.Bytes()); err != nil {
		t.Fatal(err)
	}
	cfg := srv.Config(raw)
	reg := registry.New(c, cfg, influxtest.StateTable(t))
	if _, _, err := reg.Register(ctx, "late"); err != nil {
		t.Fatal(err)
	}
	clock := measurements.WithClock(func() time.Time { return now })
	rawH := authztest.Operator(measurements.NewService(c, reg, raw, 10*time.Second, clock).Routes())
	dsH := authztest.Operator(measurements.NewService(c, reg, raw, 10*time.Second, clock, measurements.WithDownsampled(ds)).Routes())
	for _, origin := range []string{"", "device", "generated", "all"} {
		for _, fn := range []string{"mean", "min", "max", "last"} {
			q := url.Values{"start": {"-30d"}, "fields": {"Temperature,CO2"}, "fn": {fn}}
			if origin != "" {
				q.Set("origin", origin)
			}
			path := "/api/devices/late/measurements?" + q.Encode()
			want := fetch(t, rawH, path)
			got := fetch(t, dsH, path)
			sameTable(t, "origin="+origin+" fn="+fn, got, want)
			if got.Every != "1h" {
				t.Fatalf("%s: every %s, want 1h (the downsampled path)", path, got.Every)
			}
			hours := map[string]bool{}
			for _, ts := range got.Time {
				hours[ts] = true
			}
			wantHours := map[string][]time.Time{
				"device":    {hour.Add(-10 * 24 * time.Hour), hour.Add(-5 * 24 * time.Hour), late, late.Add(time.Hour)},
				"generated": {hour.Add(-4 * 24 * time.Hour), hour.Add(-4*24*time.Hour + time.Hour)},
			}
			for kind, hs := range wantHours {
				for _, h := range hs {
					present := hours[h.Format(time.RFC3339)]
					if want := origin != "device" && origin != "generated" || origin == kind; present != want {
						t.Errorf("%s: hour %s present %v, want %v", path, h.Format(time.RFC3339), present, want)
					}
				}
			}
		}
	}
	// the summary splits the points the same way: 420 of the device's own, 120 generated
	for origin, want := range map[string]int64{"device": 420, "generated": 120, "all": 540, "": 540} {
		rec := httptest.NewRecorder()
		dsH.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/devices/late/summary?range=30d&fields=Temperature&origin="+origin, nil))
		var sum measurements.Summary
		if err := json.Unmarshal(rec.Body.Bytes(), &sum); rec.Code != http.StatusOK || err != nil || sum.Fields["Temperature"] == nil {
			t.Fatalf("summary origin=%s: %d %s", origin, rec.Code, rec.Body.String())
		}
		if got := sum.Fields["Temperature"].Count; got != want {
			t.Errorf("summary origin=%s: %d Temperature points, want %d", origin, got, want)
		}
	}
	// the late hour's mean is of all its 60 points, not of the 10 aggregated before the rest arrived
	got := fetch(t, dsH, "/api/devices/late/measurements?start="+late.Format(time.RFC3339)+"&stop="+late.Add(time.Hour).Format(time.RFC3339)+"&every=1h&fields=Temperature&fn=mean&origin=device")
	var sum float64
	for m := 0; m < 60; m++ {
		k := m // the first 10 minutes are their batch's minutes 0..9, the rest the late batch's 0..49
		if m >= 10 {
			k = m - 10
		}
		sum += float64((k*37)%101) / 8
	}
	if len(got.Time) != 1 || got.Values["Temperature"][0] == nil || math.Abs(*got.Values["Temperature"][0]-sum/60) > 1e-9 {
		t.Errorf("the late hour: %v %v, want one mean %v", got.Time, deref(got.Values["Temperature"][0]), sum/60)
	}
}
