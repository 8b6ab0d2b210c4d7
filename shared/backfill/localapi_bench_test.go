package backfill

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/localapitest"
	"github.com/iot-center/iot-center-serverless/internal/npmtest"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// BenchmarkLocalAPIFanOut is the benchmark: 20 devices × 7 days (201,600 points) backfilled through the
// local API — the write-missing function's bootstrap under the Lambda emulator, the chunk queue on moto's SQS, the
// local event source mapping running 4 worker emulators (the template's MaximumConcurrency) — against the raw ingest ceiling of the same InfluxDB measured in the same run (pre-generated line
// protocol, gzip, 5,000-line batches, best of 1/2/4/8 concurrent writers). Completion is detected by a cheap count
// query on InfluxDB (pushed down), polled every 200 ms (a poll costs InfluxDB work too).
func BenchmarkLocalAPIFanOut(b *testing.B) {
	const devices, workers = 20, 4
	srv := influxtest.Shared(b)
	api := localapitest.Start(b, srv, localapitest.Options{Params: fmt.Sprintf("WorkerMaxConcurrency=%d", workers)})
	admin := srv.Client(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	var ids []string
	for d := 0; d < devices; d++ {
		id := fmt.Sprintf("lapi%02d-%s", d, influxtest.RandomID(3))
		if status, body := api.Call(b, "POST", "/api/devices/"+id, ""); status != http.StatusCreated {
			b.Fatalf("registering %s: %d %v", id, status, body)
		}
		ids = append(ids, id)
	}

	win := LastDays(time.Now(), 7)
	total := float64(devices * win.Minutes())
	batches := ceilingBatches(devices, minutesOf(win), BatchLines)
	// the ceiling is measured before and after the backfill and the best figure kept: load from anything else on
	// the machine then lowers the ratio, never raises it
	ceiling, ceilingConc := 0.0, 0
	measureCeiling := func() {
		for _, conc := range []int{1, 2, 4, 8} {
			if r := total / postAll(b, admin, srv.NewBucket(b, "lceiling"), batches, conc).Seconds(); r > ceiling {
				ceiling, ceilingConc = r, conc
			}
		}
	}
	measureCeiling()

	seedRate := total / seedLoop(b, srv, srv.NewBucket(b, "seedloop"), devices, 7).Seconds()

	b.ResetTimer()
	var el time.Duration
	var plan map[string]any
	for i := 0; i < b.N; i++ {
		start := time.Now()
		var status int
		status, plan = api.Call(b, "POST", "/api/write-missing", "")
		if status != http.StatusAccepted || plan["jobId"] == nil {
			b.Fatalf("write-missing %d %v, want 202 and a job", status, plan)
		}
		from, _ := time.Parse(time.RFC3339, plan["from"].(string))
		to, _ := time.Parse(time.RFC3339, plan["to"].(string))
		for k := 0; ; k++ { // bounded: 1,500 × 200 ms = 5 minutes
			if k == 1500 {
				b.Fatal("backfill through the local API did not complete in 5 minutes")
			}
			if n := countAll(b, ctx, admin, from, to); n == int64(total) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		el = time.Since(start)
	}
	b.StopTimer()
	measureCeiling()
	q := fmt.Sprintf("/api/write-missing?from=%s&to=%s", plan["from"], plan["to"])
	if status, cov := api.Call(b, "GET", q, ""); status != 200 || cov["percent"] != float64(100) {
		b.Fatalf("coverage %d %v, want 100%%", status, cov)
	}
	// the job route tells the same story (its records may trail the points by the last chunk's record write)
	for k := 0; ; k++ {
		status, job := api.Call(b, "GET", "/api/write-missing/jobs/"+plan["jobId"].(string), "")
		if status == 200 && job["state"] == StateDone && job["pointsWritten"] == total {
			break
		}
		if k == 100 {
			b.Fatalf("job %d %v, want done with %v points written", status, job, total)
		}
		time.Sleep(200 * time.Millisecond)
	}
	rate := total / el.Seconds()
	b.ReportMetric(rate, "localapi_points/s")
	b.ReportMetric(ceiling, "ceiling_points/s")
	b.ReportMetric(float64(ceilingConc), "ceiling_best_concurrency")
	b.ReportMetric(rate/ceiling, "x_of_ceiling")
	b.ReportMetric(seedRate, "seed_node_loop_points/s")
	b.ReportMetric(rate/seedRate, "x_faster_than_seed_loop")
	b.ReportMetric(float64(el.Milliseconds()), "ms/backfill_201600_points")
}

// seedLoop runs the seed's JavaScript loop (seedloop/seedloop.mjs) in Node with the npm client it names (installed
// by npmtest, pinned by seedloop/package-lock.json), and returns how long it took to write devices × days of minutes.
func seedLoop(b *testing.B, srv *influxtest.Server, bucket string, devices, days int) time.Duration {
	b.Helper()
	dir := npmtest.Install(b, "seedloop", "seedloop", "seedloop.mjs")
	node := exec.Command("node", "seedloop.mjs", srv.URL, srv.Org, bucket, strconv.Itoa(devices), strconv.Itoa(days))
	node.Dir = dir
	node.Env = append(os.Environ(), "INFLUX_TOKEN="+srv.Token)
	start := time.Now()
	out, err := node.Output()
	el := time.Since(start)
	if err != nil {
		b.Fatalf("seed loop: %v", err)
	}
	if got, want := strings.TrimSpace(string(out)), strconv.Itoa(devices*days*1440); got != want {
		b.Fatalf("seed loop wrote %s points, want %s", got, want)
	}
	return el
}

// countAll counts the Temperature points in the data bucket's window (every device).
func countAll(b *testing.B, ctx context.Context, c *influx.Client, from, to time.Time) int64 {
	b.Helper()
	var n int64
	err := c.QueryRows(ctx, `from(bucket: "iot_center") |> range(start: start, stop: stop)
  |> filter(fn: (r) => r._measurement == "environment" and r._field == "Temperature") |> count()`,
		influx.Extern{"start": from, "stop": to}, func(v map[string]any) error {
			n += v["_value"].(int64)
			return nil
		})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
