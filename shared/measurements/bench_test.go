package measurements_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/measurements"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
)

// seedFlux is the seed dashboard's read: 30 days of raw points pivoted with v1.fieldsAsCols.
const seedFlux = `import "influxdata/influxdb/v1"
from(bucket: bucket)
  |> range(start: -30d)
  |> filter(fn: (r) => r._measurement == "environment" and r.clientId == deviceId)
  |> filter(fn: (r) => r._field == "Temperature" or r._field == "TVOC" or r._field == "Pressure" or r._field == "Humidity" or r._field == "CO2")
  |> v1.fieldsAsCols()`

const benchRounds = 7

// benchData writes 30 days of one-minute points (the seed's generator) for one registered device and returns a
// handler over it.
func benchData(b *testing.B) (c *influx.Client, bucket string, h http.Handler) {
	b.Helper()
	srv := influxtest.Shared(b)
	c = srv.Client(b)
	bucket = srv.NewBucket(b, "bench")
	auth := srv.NewBucket(b, "benchauth")
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
	cfg := config.Config{InfluxURL: srv.URL, InfluxPublicURL: srv.URL, Org: srv.Org, Bucket: bucket, BucketAuth: auth,
		BucketDownsampled: bucket + "_1h", Token: config.Secret(srv.Token), MaxDevices: 10}
	reg := registry.New(c, cfg)
	if _, _, err := reg.Register(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	return c, bucket, measurements.New(c, reg, bucket, 30*time.Second).Routes()
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkDashboard30d compares, in one run over the same data, the seed's raw fieldsAsCols read with this
// package's /measurements?start=-30d (auto window): response bytes and median latency of benchRounds requests.
// Goal: >= 10x fewer bytes, >= 5x faster.
func BenchmarkDashboard30d(b *testing.B) {
	c, bucket, h := benchData(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var seedLat, autoLat []time.Duration
		var seedBytes, autoBytes int64
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
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/devices/bench/measurements?start=-30d", nil))
			if rec.Code != http.StatusOK {
				b.Fatalf("measurements = %d %s", rec.Code, rec.Body.String())
			}
			autoLat, autoBytes = append(autoLat, time.Since(t)), int64(rec.Body.Len())
		}
		sm, am := median(seedLat), median(autoLat)
		b.ReportMetric(float64(seedBytes), "seed_bytes/resp")
		b.ReportMetric(float64(autoBytes), "auto_bytes/resp")
		b.ReportMetric(float64(seedBytes)/float64(autoBytes), "x_fewer_bytes")
		b.ReportMetric(ms(sm), "seed_ms/median")
		b.ReportMetric(ms(am), "auto_ms/median")
		b.ReportMetric(float64(sm)/float64(am), "x_faster")
	}
}

// BenchmarkSummary30d measures the gauges over 30 days of one-minute data (all seven fields).
func BenchmarkSummary30d(b *testing.B) {
	_, _, h := benchData(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var lat []time.Duration
		var size int
		for r := 0; r < benchRounds; r++ {
			t := time.Now()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/devices/bench/summary?range=30d", nil))
			if rec.Code != http.StatusOK {
				b.Fatalf("summary = %d %s", rec.Code, rec.Body.String())
			}
			lat, size = append(lat, time.Since(t)), rec.Body.Len()
		}
		b.ReportMetric(ms(median(lat)), "ms/median")
		b.ReportMetric(float64(size), "bytes/resp")
	}
}
