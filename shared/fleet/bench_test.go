package fleet

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/iot-center/iot-center-serverless/internal/authztest"
	"github.com/iot-center/iot-center-serverless/internal/fleettest"
	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/storemeter"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/backfill"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/deviceapi"
	"github.com/iot-center/iot-center-serverless/shared/presence"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// benchSizes are the fleet sizes BenchmarkFleet runs: FLEET_BENCH_SIZES (comma-separated, e.g. "10000,100000"),
// 10,000 by default (the stand-in's status writes at 100,000 take most of an hour on a loaded 2-core machine).
func benchSizes(b *testing.B) []int {
	v := os.Getenv("FLEET_BENCH_SIZES")
	if v == "" {
		v = "10000"
	}
	var out []int
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 100 || n > 1_000_000 {
			b.Fatalf("FLEET_BENCH_SIZES: %q is not a size in [100, 1000000]", s)
		}
		out = append(out, n)
	}
	return out
}

// BenchmarkFleet is the 100,000-devices benchmark, in process over the DynamoDB stand-in and a real influxd: the
// fleet bulk-registered through the registry (1,000 ids a call), then the store requests, consumed capacity and
// items examined of the first device page, a status-filtered page, the counts and a job poll (which must not
// depend on the fleet's size), and of fleet-health runs with 1% and then all of the devices writing (influxd CPU,
// once influxd is idle after the points were written, and store writes of the steady run: the devices' statuses
// already known), in gateway mode (the runs read the write gateway's presence digest, written here beside the points).
func BenchmarkFleet(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				benchFleet(b, n)
			}
		})
	}
}

func benchFleet(b *testing.B, n int) {
	srv := influxtest.Shared(b)
	admin := srv.Client(b)
	cfg := srv.Config(srv.NewBucket(b, "fleetbench"))
	cfg.MaxDevices, cfg.DeviceWrites = n, config.WritesGateway
	plain := influxtest.StateTable(b)
	meter := &storemeter.Meter{}
	table := &store.Table{DB: dynamodb.New(plain.DB.Options(), meter.Option), Name: plain.Name}
	reg := registry.New(admin, cfg, table)
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()

	// bulk registration, 1,000 ids a call, 4 calls at once (as the cmd/bulkregister tool's requests would run)
	ids := fleettest.IDs("f", n)
	start := time.Now()
	var wg sync.WaitGroup
	batches := make(chan []string)
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range batches {
				res, err := reg.BulkRegister(ctx, batch)
				if err == nil {
					for _, r := range res {
						if r.Outcome != registry.BulkCreated {
							err = fmt.Errorf("%s: %s %s", r.DeviceID, r.Outcome, r.Error)
							break
						}
					}
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := 0; i < n; i += deviceapi.MaxBulk {
		batches <- ids[i:min(n, i+deviceapi.MaxBulk)]
	}
	close(batches)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatalf("bulk registration: %v", err)
	default:
	}
	reg1 := meter.Take()
	b.ReportMetric(time.Since(start).Seconds(), "register_s")
	b.ReportMetric(float64(reg1.Writes())/float64(n), "register_writes/device")
	b.Logf("%d devices bulk-registered in %v: %v", n, time.Since(start).Round(time.Millisecond), reg1)

	now := time.Now().UTC().Truncate(time.Minute)
	svc := NewService(table, admin, cfg)
	svc.Clock = func() time.Time { return now }
	svc.Digest = true // gateway mode: the runs read the presence digest
	gen := sensors.Generator{Lat: 50, Lon: 14}
	// writePoints writes the devices' points with the admin client, and the presence digest the write gateway's
	// instances would write for those writes, through the same presence.Recorder (one instance's, flushed at once).
	writePoints := func(devs []string, at time.Time) {
		b.Helper()
		var lp []byte
		rec := presence.NewRecorder(0, len(devs))
		lat, lon := gen.Position(at.UnixMilli())
		for i, id := range devs {
			lp = sensors.NewLine(gen, id).Append(lp, at.UnixMilli())
			var batch presence.Batch
			batch.Add(at.Truncate(time.Millisecond), lat, lon)
			rec.Note(id, batch, at)
			if len(lp) > 4<<20 || i == len(devs)-1 {
				if err := admin.WriteLines(ctx, cfg.Bucket, lp); err != nil {
					b.Fatal(err)
				}
				lp = lp[:0]
			}
		}
		f := rec.Take(at)
		if f == nil || f.Devices != len(devs) {
			b.Fatalf("presence digest: flush %v, want %d devices", f, len(devs))
		}
		err := admin.WriteLines(ctx, cfg.Bucket, f.Lines)
		f.Done(err)
		if err != nil {
			b.Fatalf("writing the presence digest: %v", err)
		}
	}
	// settle waits (at most 2 minutes) until influxd is idle: the background work of the points just written (its
	// cache and index) is not the run's, and would otherwise land in the run's CPU time.
	settle := func() {
		b.Helper()
		for range 240 {
			c0, _ := srv.CPUTime()
			time.Sleep(500 * time.Millisecond)
			if c1, _ := srv.CPUTime(); c1-c0 <= 10*time.Millisecond {
				return
			}
		}
		b.Logf("influxd still busy after 2 minutes; measuring anyway")
	}
	run := func(name string, measure bool) {
		b.Helper()
		if measure {
			settle()
		}
		meter.Take()
		cpu0, _ := srv.CPUTime()
		t0 := time.Now()
		c, err := svc.Check(ctx)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		wall := time.Since(t0)
		cpu1, _ := srv.CPUTime()
		f := meter.Take()
		b.Logf("%s: %v, influxd CPU %v, %d online, %d changed; store: %v", name, wall.Round(time.Millisecond),
			cpu1-cpu0, c.Online, c.Changed, f)
		if measure {
			b.ReportMetric((cpu1 - cpu0).Seconds(), name+"_influxd_cpu_s")
			b.ReportMetric(float64(f.Writes()), name+"_store_writes")
			b.ReportMetric(wall.Seconds(), name+"_s")
		}
	}
	// 1% of the fleet writing: the first run learns it, the next one (30 s later) is the steady state
	writePoints(ids[:n/100], now.Add(-30*time.Second))
	run("health_first", false)
	now = now.Add(30 * time.Second)
	writePoints(ids[:n/100], now.Add(-10*time.Second))
	run("health_1pct", true)
	// every device writing: the run that brings 99% online, then the steady one
	now = now.Add(time.Minute)
	writePoints(ids, now.Add(-20*time.Second))
	run("health_online", false)
	now = now.Add(30 * time.Second)
	writePoints(ids, now.Add(-5*time.Second))
	run("health_all", true)

	h := api.Handler(authztest.Operator(svc.Routes()))
	call := func(name, path string) {
		b.Helper()
		meter.Take()
		t0 := time.Now()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil).WithContext(ctx))
		wall := time.Since(t0)
		if rec.Code != 200 {
			b.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body.String())
		}
		f := meter.Take()
		b.Logf("%s (GET %s): %v; store: %v", name, path, wall.Round(time.Millisecond), f)
		b.ReportMetric(float64(f.Total()), name+"_store_requests")
		b.ReportMetric(f.Capacity, name+"_capacity")
		b.ReportMetric(float64(f.Examined), name+"_items")
	}
	call("page", "/api/devices?limit=100")
	call("online_page", "/api/devices?limit=100&status=online")
	call("lastseen_page", "/api/devices?limit=100&sort=lastSeen")
	call("counts", "/api/devices/counts")
	// a job poll reads the job's one item (polled here for an id no job has: the same single read)
	meter.Take()
	if _, err := (&backfill.JobStore{Table: table}).Get(ctx, "0000000000000000-000000000000", now); err != nil && !api.IsCode(err, api.NotFound) {
		b.Fatalf("job poll: %v", err)
	}
	f := meter.Take()
	b.Logf("job poll: store: %v", f)
	b.ReportMetric(float64(f.Total()), "job_poll_store_requests")
	b.ReportMetric(f.Capacity, "job_poll_capacity")
}
