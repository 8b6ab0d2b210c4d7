package measurements_test

import (
	"context"
	"encoding/json"
	"github.com/iot-center/iot-center-serverless/internal/authztest"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/measurements"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
	"github.com/iot-center/iot-center-serverless/shared/setup"
)

// seedFlux is the seed dashboard's read: 30 days of raw points pivoted with v1.fieldsAsCols.
const seedFlux = `import "influxdata/influxdb/v1"
from(bucket: bucket)
  |> range(start: -30d)
  |> filter(fn: (r) => r._measurement == "environment" and r.clientId == deviceId)
  |> filter(fn: (r) => r._field == "Temperature" or r._field == "TVOC" or r._field == "Pressure" or r._field == "Humidity" or r._field == "CO2")
  |> v1.fieldsAsCols()`

const benchRounds = 7

// benchData writes 30 days of one-minute points (the seed's generator) for one registered device, downsamples
// them as the hourly task and the backfill do, and returns handlers over it: raw data only, and with the
// downsampled bucket (what the query function runs).
func benchData(b *testing.B, downsample bool) (c *influx.Client, bucket string, hRaw, hDs http.Handler) {
	b.Helper()
	srv := influxtest.Shared(b)
	c = srv.Client(b)
	bucket = srv.NewBucket(b, "bench")
	ds := srv.NewBucket(b, "bench1h")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	line := sensors.NewLine(sensors.Generator{Lat: config.DefaultLat, Lon: config.DefaultLon}, "bench")
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-30 * 24 * time.Hour)
	var buf []byte
	n := 0
	for t := start; t.Before(end); t = t.Add(time.Minute) {
		buf = line.Append(buf, t.UnixMilli())
		if n++; n%10000 == 0 {
			if err := c.WriteLines(ctx, bucket, buf); err != nil {
				b.Fatal(err)
			}
			buf = buf[:0]
		}
	}
	if err := c.WriteLines(ctx, bucket, buf); err != nil {
		b.Fatal(err)
	}
	// one day at a time, as the backfill downsamples its chunks
	t := time.Now()
	for day := start; downsample && day.Before(end); day = day.Add(24 * time.Hour) {
		if err := setup.Downsample(ctx, c, bucket, ds, day, day.Add(24*time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	if downsample {
		b.Logf("downsampled 30 days in %s", time.Since(t))
	}
	cfg := srv.Config(bucket)
	cfg.BucketDownsampled = ds
	reg := registry.New(c, cfg, influxtest.StateTable(b))
	if _, _, err := reg.Register(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	hRaw = authztest.Operator(measurements.NewService(c, reg, bucket, 30*time.Second).Routes())
	hDs = authztest.Operator(measurements.NewService(c, reg, bucket, 30*time.Second, measurements.WithDownsampled(ds)).Routes())
	return c, bucket, hRaw, hDs
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// get answers one request through h and returns the body size and the number of rows (time values).
func get(b *testing.B, h http.Handler, path string) (size int64, rows int) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		b.Fatalf("GET %s = %d %s", path, rec.Code, rec.Body.String())
	}
	var m struct{ Time []string }
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	return int64(rec.Body.Len()), len(m.Time)
}

// Goals of BenchmarkDashboard30d against the seed's raw read, and the limits of BenchmarkRawData30d.
const (
	goalFewerBytes   = 10
	goalFaster       = 5
	maxResponseBytes = 6 << 20 // Lambda's synchronous response limit
	functionMemoryMB = 256     // QueryFunction's MemorySize
)

// BenchmarkDashboard30d compares, in one run over the same data, the seed's raw fieldsAsCols read with this
// package's /measurements?start=-30d (auto window, 1h: read from the downsampled bucket as deployed, and from the
// raw points for comparison): response bytes and median latency of benchRounds requests each. The goals (10x fewer
// bytes, 5x faster) are reported beside the measured ratios.
func BenchmarkDashboard30d(b *testing.B) {
	c, bucket, hRaw, hDs := benchData(b, true)
	const path = "/api/devices/bench/measurements?start=-30d"
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var seedLat, autoLat, rawLat []time.Duration
		var seedBytes, autoBytes, rawBytes int64
		var autoRows, rawRows int
		for r := 0; r < benchRounds; r++ {
			t := time.Now()
			rc, err := c.QueryRaw(ctx, seedFlux, influx.Extern{"bucket": bucket, "deviceId": "bench"})
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				b.Fatal(err)
			}
			seedLat, seedBytes = append(seedLat, time.Since(t)), n

			t = time.Now()
			autoBytes, autoRows = get(b, hDs, path)
			autoLat = append(autoLat, time.Since(t))

			t = time.Now()
			rawBytes, rawRows = get(b, hRaw, path)
			rawLat = append(rawLat, time.Since(t))
		}
		// the two paths agree value for value (TestDownsampledAgreesWithRaw); sizes differ by float rounding
		if autoRows != rawRows || autoRows == 0 {
			b.Errorf("downsampled and raw paths answered %d and %d rows", autoRows, rawRows)
		}
		sm, am, rm := median(seedLat), median(autoLat), median(rawLat)
		b.ReportMetric(float64(seedBytes), "seed_bytes/resp")
		b.ReportMetric(float64(autoBytes), "auto_bytes/resp")
		b.ReportMetric(float64(seedBytes)/float64(autoBytes), "x_fewer_bytes")
		b.ReportMetric(ms(sm), "seed_ms/median")
		b.ReportMetric(ms(am), "auto_ms/median")
		b.ReportMetric(float64(sm)/float64(am), "x_faster")
		b.ReportMetric(goalFewerBytes, "x_fewer_bytes_goal")
		b.ReportMetric(goalFaster, "x_faster_goal")
		b.ReportMetric(float64(autoRows), "auto_rows/resp")
		b.ReportMetric(float64(rawBytes), "auto_rawpath_bytes/resp")
		b.ReportMetric(ms(rm), "auto_rawpath_ms/median")
		b.ReportMetric(float64(sm)/float64(rm), "x_faster_rawpath")
	}
}

// BenchmarkRawData30d runs over 30 days of one-minute data without aggregates: the summary (gauges, all seven
// fields), and the largest raw read the API allows (every=raw, all seven fields, 43,200 rows). Its answer must stay
// under Lambda's 6 MB response limit and the function's memory: both are asserted and reported as a share.
func BenchmarkRawData30d(b *testing.B) {
	_, _, h, _ := benchData(b, false)
	measure := func(b *testing.B, path string) {
		for i := 0; i < b.N; i++ {
			var lat []time.Duration
			var size int64
			var alloc uint64
			for r := 0; r < benchRounds; r++ {
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				t := time.Now()
				size, _ = get(b, h, path)
				lat = append(lat, time.Since(t))
				runtime.ReadMemStats(&after)
				alloc = after.TotalAlloc - before.TotalAlloc
			}
			b.ReportMetric(ms(median(lat)), "ms/median")
			b.ReportMetric(float64(size), "bytes/resp")
			// includes the test's own JSON decoding of the answer (get), so an upper bound
			b.ReportMetric(float64(alloc)/(1<<20), "alloc_MB/req")
			b.ReportMetric(100*float64(size)/maxResponseBytes, "pct_of_response_limit")
			b.ReportMetric(100*float64(alloc)/(functionMemoryMB<<20), "pct_of_function_memory")
			if size >= maxResponseBytes {
				b.Errorf("%s answered %d bytes, over Lambda's %d-byte response limit", path, size, maxResponseBytes)
			}
			// everything allocated for the request, so a bound on what it could hold at once
			if alloc >= functionMemoryMB<<20 {
				b.Errorf("%s allocated %d MB, more than the function's %d MB", path, alloc>>20, functionMemoryMB)
			}
		}
	}
	b.Run("summary", func(b *testing.B) { measure(b, "/api/devices/bench/summary?range=30d") })
	b.Run("raw_all_fields", func(b *testing.B) {
		measure(b, "/api/devices/bench/measurements?start=-30d&every=raw&fields=Temperature,Humidity,Pressure,CO2,TVOC,Lat,Lon")
	})
}
