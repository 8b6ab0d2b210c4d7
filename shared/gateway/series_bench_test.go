package gateway

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/schema"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
)

// BenchmarkSeriesBudgetCost is what the series budget adds to a write once the device's tag sets are known (the
// steady state; a new tag set costs a few table calls once). CPU: the checker's thread CPU time on a 5,000-line
// batch without and with tag-set hashing. End to end: one-point writes and 5,000-line gzip batches through two in-process gateways on
// the real InfluxDB, one without budgets and one with them (moto's DynamoDB as the table's stand-in), alternated,
// medians compared. Goal: at most 5% of the write's time.
func BenchmarkSeriesBudgetCost(b *testing.B) {
	bt := benchBatches(1)[0]
	rs, err := compile(schema.Default())
	if err != nil {
		b.Fatal(err)
	}
	plain := readPlain(b, bt.body)
	now := time.Now()
	// the checker's CPU time on this thread (other processes' load does not count), off and on alternated;
	// medians of each
	cpu := func() (off, on time.Duration) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var ds [2][]time.Duration
		for range 25 {
			for i, count := range []bool{false, true} {
				c := checker{rules: rs, maxPoints: DefaultMaxPoints, countSeries: count,
					b: batch{device: bt.device, now: now, newest: now.Add(maxFuture)}}
				t0 := threadCPU(b)
				if _, n, err := c.check(plain); err != nil || n != 5000 {
					b.Fatalf("check: %d points, %v", n, err)
				}
				ds[i] = append(ds[i], threadCPU(b)-t0)
			}
		}
		return median(ds[0]), median(ds[1])
	}

	srv := influxtest.Shared(b)
	admin := srv.Client(b)
	d := testenv.StartDynamo(b)
	bucket := srv.NewBucket(b, "budgetbench")
	creds := &staticCredentials{ids: map[string]string{credA: devA}}
	mk := func(o Options) *Service {
		o.Org, o.Bucket, o.Rate, o.PointRate = srv.Org, bucket, -1, -1
		g, err := NewService(creds, nil, admin, o)
		if err != nil {
			b.Fatal(err)
		}
		return g
	}
	without, with := mk(Options{}), mk(Options{Series: d.Table})
	gen := sensors.Generator{Lat: 50.0873254, Lon: 14.4071543}
	line := sensors.NewLine(gen, devA)
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Minute).UnixMilli()
	minute := int64(0)
	one := func() []byte { minute++; return line.Append(nil, start-minute*60_000) }
	many := func() []byte {
		var lp []byte
		for range 5000 {
			minute++
			lp = line.Append(lp, start-minute*60_000)
		}
		return influx.Gzip(lp)
	}
	post := func(g *Service, body []byte, gz bool) time.Duration {
		r := httptest.NewRequest("POST", "/api/v2/write?org="+srv.Org+"&bucket="+bucket+"&precision=ns", bytes.NewReader(body))
		r.Header.Set("Authorization", "Token "+credA)
		if gz {
			r.Header.Set("Content-Encoding", "gzip")
		}
		rec := httptest.NewRecorder()
		t0 := time.Now()
		g.ServeHTTP(rec, r)
		el := time.Since(t0)
		if rec.Code != 204 {
			b.Fatalf("write: %d %s", rec.Code, rec.Body.String())
		}
		return el
	}
	measure := func(n int, mk func() []byte, gz bool) (off, on time.Duration) {
		var a, c []time.Duration
		for i := range n { // which goes first alternates (the second of a pair finds InfluxDB warmer)
			if i%2 == 0 {
				a = append(a, post(without, mk(), gz))
				c = append(c, post(with, mk(), gz))
			} else {
				c = append(c, post(with, mk(), gz))
				a = append(a, post(without, mk(), gz))
			}
		}
		return median(a), median(c)
	}
	measure(3, one, false) // warm: the device's tag set recorded and cached, connections open
	b.ResetTimer()
	for range b.N {
		lineNs, hashNs := addedPerLine(b, rs, bt.device)
		cpuOff, cpuOn := cpu()
		p0, p1 := measure(60, one, false)
		g0, g1 := measure(10, many, true)
		b.ReportMetric(ms(cpuOn-cpuOff), "check_added_ms/5000_batch")
		b.ReportMetric(pct(cpuOn, cpuOff), "check_added_%")
		b.ReportMetric(ms(p0), "write_ms/point_median")
		b.ReportMetric(pct(p1, p0), "budget_added_%/point")
		b.ReportMetric(ms(g0), "write_ms/5000_batch_median")
		b.ReportMetric(pct(g1, g0), "budget_added_%/5000_batch")
		b.ReportMetric(lineNs*5000/1e6, "budget_added_ms/5000_batch_known")
		b.ReportMetric(100*lineNs*5000/float64(g0.Nanoseconds()), "budget_added_%/5000_batch_known")
		b.ReportMetric(hashNs, "hash_ns/new_tagset")
		b.ReportMetric(5, "budget_goal_%")
	}
}

func pct(on, off time.Duration) float64 { return 100 * float64(on-off) / float64(off) }

func readPlain(b *testing.B, gz []byte) []byte {
	b.Helper()
	r := httptest.NewRequest("POST", "/", bytes.NewReader(gz))
	r.Header.Set("Content-Encoding", "gzip")
	body, err := readBody(r, MaxBody, MaxDecodedBody)
	if err != nil {
		b.Fatal(fmt.Errorf("gunzip: %w", err))
	}
	return body
}

// threadCPU is the calling OS thread's CPU time (user and system).
func threadCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rusageThread is Linux's RUSAGE_THREAD.
const rusageThread = 1

// addedPerLine is the budget's work per line in isolation, the best of 20 rounds of 5,000: a line repeating the
// previous line's tag set (compared), and hashing a tag set (a line with a new one).
func addedPerLine(b *testing.B, rs rules, device string) (repeatNs, hashNs float64) {
	now := time.Now()
	c := checker{rules: rs, maxPoints: DefaultMaxPoints, countSeries: true, b: batch{device: device, now: now, newest: now.Add(maxFuture)}}
	line := sensors.NewLine(sensors.Generator{Lat: 50.0873254, Lon: 14.4071543}, device).Append(nil, now.Add(-time.Hour).UnixMilli())
	if _, _, err := c.check(line); err != nil {
		b.Fatal(err)
	}
	mr := c.last.m
	best := func(f func()) float64 {
		lo := time.Duration(1 << 62)
		for range 20 {
			t0 := time.Now()
			for range 5000 {
				f()
			}
			lo = min(lo, time.Since(t0))
		}
		return float64(lo.Nanoseconds()) / 5000
	}
	var sink uint64
	repeatNs = best(func() { c.addSeries(mr) })
	hashNs = best(func() { sink += tagSetHash(c.tags) })
	if len(c.series) != 1 || sink == 0 {
		b.Fatalf("%d tag sets recorded, want 1", len(c.series))
	}
	return repeatNs, hashNs
}
