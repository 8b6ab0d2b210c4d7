package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/presence"
	"github.com/iot-center/iot-center-serverless/shared/schema"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
)

// benchBatch is one device's request body: line protocol with clientId set and ns timestamps, gzip-compressed or
// not (postBatches' gzip says which).
type benchBatch struct {
	device string
	body   []byte
}

// benchBatches renders devices × 5,000 consecutive minutes ending an hour ago.
func benchBatches(devices int) []benchBatch {
	const lines = 5000
	end := time.Now().Add(-time.Hour).Truncate(time.Minute).UnixMilli()
	gen := sensors.Generator{Lat: 50.0873254, Lon: 14.4071543}
	out := make([]benchBatch, devices)
	for d := range out {
		id := fmt.Sprintf("bench-%02d", d)
		l := sensors.NewLine(gen, id)
		var lp []byte
		for m := 0; m < lines; m++ {
			lp = l.Append(lp, end-int64(lines-m)*60_000)
		}
		out[d] = benchBatch{device: id, body: influx.Gzip(lp)}
	}
	return out
}

// postBatches sends every batch to url+"/api/v2/write" with conc concurrent writers, each with its device's
// token (token(device)), and returns the elapsed time and each request's latency.
func postBatches(tb testing.TB, url, org, bucket string, batches []benchBatch, conc int, token func(string) string, gzip bool) (time.Duration, []time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	lat := make([]time.Duration, len(batches))
	el, failed := testenv.Pool(len(batches), conc, func(i int) error {
		b := batches[i]
		req, _ := http.NewRequestWithContext(ctx, "POST", url+"/api/v2/write?org="+org+"&bucket="+bucket+"&precision=ns", bytes.NewReader(b.body))
		req.Header.Set("Authorization", "Token "+token(b.device))
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		if gzip {
			req.Header.Set("Content-Encoding", "gzip")
		}
		t0 := time.Now()
		resp, err := client.Do(req)
		lat[i] = time.Since(t0)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		return nil
	})
	if failed != nil {
		tb.Fatalf("write: %v", failed)
	}
	return el, lat
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// BenchmarkGatewayVsDirect writes the same 5,000-line gzip batches (20 devices, 100,000 points) once straight to
// InfluxDB with the admin token and once through the gateway (in-process HTTP server, each batch with its device's
// credential), into fresh buckets, interleaved at 1, 2 and 4 concurrent writers; the best of each is compared.
// Then influxd's CPU time per device write: 1,000 devices registered in the state table (DynamoDB stand-in), one
// single-point write each through a new gateway instance (no credential cached: each write checks its credential
// with the registry) and straight to InfluxDB, in interleaved rounds at 4 writers. influxd spends more CPU per write
// when writes arrive spaced out, and the stand-in's reads space the gateway's out, so the direct writes run twice:
// back to back, and paced to the gateway round's rate (as in production, where the devices set the rate).
func BenchmarkGatewayVsDirect(b *testing.B) {
	const devices = 20
	srv := influxtest.Shared(b)
	admin := srv.Client(b)
	batches := benchBatches(devices)
	creds := &staticCredentials{ids: map[string]string{}}
	for _, bt := range batches {
		creds.ids["cred-"+bt.device] = bt.device
	}
	total := float64(devices * 5000)
	var best [2]float64
	var lat [2][]time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, conc := range []int{1, 2, 4} {
			// direct
			bucket := srv.NewBucket(b, "direct")
			el, l := postBatches(b, srv.URL, srv.Org, bucket, batches, conc, func(string) string { return srv.Token }, true)
			if r := total / el.Seconds(); r > best[0] {
				best[0], lat[0] = r, l
			}
			// through the gateway
			bucket = srv.NewBucket(b, "gateway")
			g, err := NewService(creds, nil, admin, Options{Org: srv.Org, Bucket: bucket, Rate: -1, PointRate: -1})
			if err != nil {
				b.Fatal(err)
			}
			hs := httptest.NewServer(api.Handler(g.Routes()))
			el, l = postBatches(b, hs.URL, srv.Org, bucket, batches, conc, func(d string) string { return "cred-" + d }, true)
			hs.Close()
			if r := total / el.Seconds(); r > best[1] {
				best[1], lat[1] = r, l
			}
		}
	}
	fl := newFleet(b, srv, 1000, nil)
	points := onePointEach(fl.ids)
	var cpu [3]time.Duration // direct back to back, gateway, direct at the gateway's pace
	const cpuRounds, cpuWriters = 3, 4
	direct := func(string) string { return srv.Token }
	for r := 0; r < cpuRounds; r++ {
		d, _ := cpuPerWrite(b, srv, srv.URL, srv.Org, srv.NewBucket(b, "cpudirect"), points, cpuWriters, 0, direct)
		bucket := srv.NewBucket(b, "cpugw")
		// as deployed in gateway mode: with the presence digest
		g, err := NewService(fl.reg, fl.table, admin, Options{Org: srv.Org, Bucket: bucket, Rate: -1, PointRate: -1,
			Presence: presence.NewRecorder(0, 0)})
		if err != nil {
			b.Fatal(err)
		}
		hs := httptest.NewServer(api.Handler(g.Routes()))
		gw, wall := cpuPerWrite(b, srv, hs.URL, srv.Org, bucket, points, cpuWriters, 0, func(d string) string { return fl.creds[d] })
		hs.Close()
		paced, _ := cpuPerWrite(b, srv, srv.URL, srv.Org, srv.NewBucket(b, "cpupaced"), points, cpuWriters,
			wall/time.Duration(len(points)), direct)
		cpu[0], cpu[1], cpu[2] = cpu[0]+d, cpu[1]+gw, cpu[2]+paced
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / cpuRounds }
	b.ReportMetric(ms(cpu[0]), "direct_influxd_cpu_ms/write")
	b.ReportMetric(ms(cpu[1]), "gateway_influxd_cpu_ms/write")
	b.ReportMetric(ms(cpu[2]), "direct_at_gateway_pace_influxd_cpu_ms/write")
	b.ReportMetric(float64(cpu[1])/float64(cpu[2]), "x_influxd_cpu_of_direct_same_pace")
	b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "x_influxd_cpu_of_direct_back_to_back")
	b.ReportMetric(best[0], "direct_points/s")
	b.ReportMetric(best[1], "gateway_points/s")
	b.ReportMetric(best[1]/best[0], "x_of_direct")
	b.ReportMetric(float64(median(lat[0]).Microseconds())/1000, "direct_ms/batch_median")
	b.ReportMetric(float64(median(lat[1]).Microseconds())/1000, "gateway_ms/batch_median")
}

// BenchmarkCheck is the gateway's own work on one 5,000-line batch: gunzip, parse, check, re-encode (no InfluxDB).
func BenchmarkCheck(b *testing.B) {
	bt := benchBatches(1)[0]
	rs, err := compile(schema.Default())
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := httptest.NewRequest("POST", "/", bytes.NewReader(bt.body))
		r.Header.Set("Content-Encoding", "gzip")
		body, err := readBody(r, MaxBody, MaxDecodedBody)
		if err != nil {
			b.Fatal(err)
		}
		c := checker{rules: rs, maxPoints: DefaultMaxPoints, b: batch{device: bt.device, precision: 0, now: now, newest: now.Add(maxFuture)}}
		if _, n, err := c.check(body); err != nil || n != 5000 {
			b.Fatalf("check: %d points, %v", n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/batch")
}
