package gateway

import (
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/localapitest"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
)

// BenchmarkGatewayLatencyLocalAPI is the latency the gateway adds per request through `make run` (local API, the
// function's real bootstrap under the emulator, the registry lookup cached after the first write): sequential
// writes of one seed point, and of 5,000-point gzip batches, through the API and straight to InfluxDB, alternated,
// medians compared.
func BenchmarkGatewayLatencyLocalAPI(b *testing.B) {
	srv := influxtest.Shared(b)
	l := localapitest.Start(b, srv, localapitest.Options{Params: "DeviceWrites=gateway WritePointRate=-1"})
	id := "gwlat-" + influxtest.RandomID(4)
	env := register(b, l, id)
	gen := sensors.Generator{Lat: 50.0873254, Lon: 14.4071543}
	line := sensors.NewLine(gen, id)
	start := time.Now().Add(-time.Hour).Truncate(time.Minute).UnixMilli()
	one := func(i int) benchBatch { return benchBatch{device: id, body: line.Append(nil, start+int64(i)*60_000)} }
	batch := func(i int) benchBatch {
		var lp []byte
		for m := 0; m < 5000; m++ {
			lp = line.Append(lp, start-int64((i+1)*5000+m)*60_000)
		}
		return benchBatch{device: id, body: influx.Gzip(lp)}
	}
	measure := func(n int, mk func(int) benchBatch, gzip bool) (gw, direct time.Duration) {
		var g, d []time.Duration
		for i := 0; i < n; i++ {
			bt := mk(i)
			g = append(g, postOne(b, l.URL, env.InfluxOrg, env.InfluxBucket, bt, env.InfluxToken, gzip))
			d = append(d, postOne(b, srv.URL, srv.Org, env.InfluxBucket, bt, srv.Token, gzip))
		}
		return median(g), median(d)
	}
	measure(3, one, false) // warm: cold start, registry lookup
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g1, d1 := measure(40, one, false)
		g5, d5 := measure(5, batch, true) // 25,000 minutes: inside the 30-day retention
		b.ReportMetric(ms(g1), "gateway_ms/point_median")
		b.ReportMetric(ms(d1), "direct_ms/point_median")
		b.ReportMetric(ms(g1-d1), "added_ms/point")
		b.ReportMetric(ms(g5), "gateway_ms/5000_batch_median")
		b.ReportMetric(ms(d5), "direct_ms/5000_batch_median")
		b.ReportMetric(ms(g5-d5), "added_ms/5000_batch")
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// postOne writes one body with postBatches' request shape and returns its latency.
func postOne(b *testing.B, url, org, bucket string, bt benchBatch, token string, gzip bool) time.Duration {
	b.Helper()
	_, lat := postBatches(b, url, org, bucket, []benchBatch{bt}, 1, func(string) string { return token }, gzip)
	return lat[0]
}
