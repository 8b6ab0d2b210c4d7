package backfill

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/routetest"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
)

// BenchmarkBackfillVsIngestCeiling backfills 20 devices × 7 days (201,600 points) through the write-missing HTTP
// handler and the product's task path (the real Runner and Worker, run in-process by the local event source mapping
// over moto's SQS at the worker's default task sizes, writing the hourly aggregates too, as the function does), and
// compares it with the raw ingest ceiling of the same server: the same line protocol pre-generated and POSTed gzip in
// batches of BatchLines (the worker's batch size). Both run at 2, 4, 8 and 16 writers (instances), interleaved, twice
// each: the best of each side is compared, so a burst of load from elsewhere on the machine lowers one pair, not
// the ratio. Each run writes into a fresh bucket.
func BenchmarkBackfillVsIngestCeiling(b *testing.B) {
	const devices = 20
	srv := influxtest.Shared(b)
	admin := srv.Client(b)
	win := LastDays(time.Now(), 7)
	minutes := minutesOf(win)
	total := float64(devices * len(minutes))

	// (a) the ceiling: pre-generated, pre-compressed batches
	batches := ceilingBatches(devices, minutes, BatchLines)
	// (b) the backfill: plan over HTTP, chunks fanned out to conc worker instances (the worker's reserved
	// concurrency), all devices registered in a fresh registry and written into a fresh bucket.
	// influxd's CPU time per point, summed over the runs: the InfluxDB work a point costs each way, which load from
	// elsewhere on the machine hardly changes (unlike the wall time). In AWS the workers do not share InfluxDB's
	// cores, so there this ratio is the throughput ratio once InfluxDB is the bottleneck.
	var cpuCeiling, cpuFill time.Duration
	influxCPU := func() time.Duration {
		b.Helper()
		d, err := srv.CPUTime()
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	ceilingRun := func(conc int) time.Duration {
		b.Helper()
		c0 := influxCPU()
		el := postAll(b, admin, srv.NewBucket(b, "ceiling"), batches, conc)
		cpuCeiling += influxCPU() - c0
		return el
	}
	backfill := func(conc int) time.Duration {
		b.Helper()
		// the product's task sizes (the worker function's defaults), not the tests' small ones
		f := newFixture(b, srv, fixtureOpts{instances: conc, downsample: true, now: time.Now,
			taskMinutes: DefaultTaskMinutes, batchDevices: DefaultBatchDevices, poll: 2 * time.Second})
		for d := 0; d < devices; d++ {
			f.register(b, fmt.Sprintf("bench%02d", d))
		}
		start, c0 := time.Now(), influxCPU()
		status, job, _ := f.post(b, "/api/write-missing", "")
		if status != http.StatusAccepted {
			b.Fatalf("plan %d %+v, want 202", status, job)
		}
		if job = f.wait(b, job.ID); float64(job.PointsWritten) != total {
			b.Fatalf("job %+v, want %v points written", job, total)
		}
		el := time.Since(start)
		cpuFill += influxCPU() - c0
		status, cov := f.do(b, "GET", fmt.Sprintf("/api/write-missing?from=%s&to=%s", job.From.Format(time.RFC3339), job.To.Format(time.RFC3339)), "")
		if status != 200 || num(b, cov["percent"]) != 100 {
			b.Fatalf("coverage after the backfill %d %v, want 100%%", status, cov)
		}
		return el
	}

	// the two are interleaved at each concurrency, so load from anything else on the machine hits both alike
	const rounds = 2
	concurrencies := []int{2, 4, 8, 16}
	var ceiling, fill [17]float64
	best, bestConc, bestFill, bestFillConc := 0.0, 0, 0.0, 0
	b.ResetTimer()
	for i := 0; i < b.N*rounds; i++ {
		for _, conc := range concurrencies {
			ceiling[conc] = max(ceiling[conc], total/ceilingRun(conc).Seconds())
			fill[conc] = max(fill[conc], total/backfill(conc).Seconds())
			if ceiling[conc] > best {
				best, bestConc = ceiling[conc], conc
			}
			if fill[conc] > bestFill {
				bestFill, bestFillConc = fill[conc], conc
			}
		}
	}
	b.ReportMetric(best, "ceiling_points/s")
	b.ReportMetric(float64(bestConc), "ceiling_best_concurrency")
	b.ReportMetric(bestFill, "backfill_points/s")
	b.ReportMetric(float64(bestFillConc), "backfill_best_instances")
	b.ReportMetric(bestFill/best, "x_of_ceiling")
	b.ReportMetric(fill[bestConc]/best, "x_of_ceiling_same_concurrency")
	b.ReportMetric(total/bestFill*1000, "ms/backfill_201600_points")
	runs := total * float64(b.N*rounds*len(concurrencies))
	b.ReportMetric(cpuCeiling.Seconds()*1e6/runs, "influxd_cpu_ms/1000_points_ceiling")
	b.ReportMetric(cpuFill.Seconds()*1e6/runs, "influxd_cpu_ms/1000_points_backfill")
	b.ReportMetric(cpuCeiling.Seconds()/cpuFill.Seconds(), "x_of_ceiling_by_influxd_cpu")
}

// ceilingBatches pre-generates the devices' line protocol for the minutes, gzip-compressed in batches of n lines.
func ceilingBatches(devices int, minutes []int64, n int) [][]byte {
	var batches [][]byte
	var lp []byte
	lines := 0
	for d := 0; d < devices; d++ {
		line := sensors.NewLine(home, fmt.Sprintf("ceiling-%02d", d))
		for _, m := range minutes {
			lp = line.Append(lp, m*60_000)
			if lines++; lines == n {
				batches = append(batches, influx.Gzip(lp))
				lp, lines = lp[:0], 0
			}
		}
	}
	if len(lp) > 0 {
		batches = append(batches, influx.Gzip(lp))
	}
	return batches
}

// postAll writes every batch with conc concurrent writers and returns the elapsed time.
func postAll(b testing.TB, c *influx.Client, bucket string, batches [][]byte, conc int) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	next := make(chan []byte, len(batches))
	for _, bt := range batches {
		next <- bt
	}
	close(next)
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	start := time.Now()
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for bt := range next {
				if err := c.WriteGzip(ctx, bucket, bt); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	return el
}

// BenchmarkPlannerQuery times the planner's one gap query for a device with 10% of its 7 days missing (random
// runs), and for a 30-day window.
func BenchmarkPlannerQuery(b *testing.B) {
	srv := influxtest.Shared(b)
	f := newFixture(b, srv, fixtureOpts{})
	id := "plan-" + influxtest.RandomID(3)
	win := LastDays(fixedNow, 7)
	f.writeMinutes(b, id, home, minutesOf(win))
	f.deleteRandom(b, id, win, 0.10, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	median := func(w Window, want int64) float64 {
		var ds []time.Duration
		for i := 0; i < 21; i++ {
			start := time.Now()
			_, missing, _, err := f.svc.Planner.Missing(ctx, id, w)
			ds = append(ds, time.Since(start))
			if err != nil || (want >= 0 && missing != want) {
				b.Fatalf("Missing = %d, %v; want %d", missing, err, want)
			}
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return float64(ds[len(ds)/2].Microseconds()) / 1000
	}
	b.ResetTimer()
	var m7, m30 float64
	for i := 0; i < b.N; i++ {
		m7 = median(win, 1008)
		m30 = median(LastDays(fixedNow, 30), 23*1440+1008)
	}
	b.ReportMetric(m7, "ms/median_7d_10pct_gaps")
	b.ReportMetric(m30, "ms/median_30d")
}

type discard struct{}

func (discard) WriteGzip(context.Context, string, []byte) error { return nil }

func (discard) QueryRows(context.Context, string, influx.Extern, func(map[string]any) error) error {
	return nil
}

const rssChildEnv = "BACKFILL_RSS_CHILD"

// rssChild runs one worker invocation on a 1-day chunk in a fresh process (the test binary re-executed) and
// prints the process's peak RSS, so the figure is the worker's, not the benchmark harness's.
func rssChild() int {
	env := func(k string) string { return os.Getenv("BACKFILL_RSS_" + k) }
	minutes, _ := strconv.ParseInt(env("MINUTES"), 10, 64)
	c := influx.New(env("URL"), env("TOKEN"), env("ORG"), influx.Options{})
	w := &Worker{Influx: c, Bucket: env("BUCKET"), Gen: home}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base := fixedNow.Unix() / 60
	before := vmHWM()
	if err := w.Handle(ctx, Chunk{DeviceID: "rss-child", Ranges: []Range{{base - minutes, base}}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("VmHWM_before_kB=%d VmHWM_kB=%d\n", before, vmHWM())
	return 0
}

// vmHWM is the process's peak resident set in kB.
func vmHWM() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			n, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return n
		}
	}
	return -1
}

// BenchmarkWorkerPeakRSS reports the peak RSS of a process that runs the worker on a 1-day chunk and on a 7-day
// chunk (memory does not grow with the chunk), beside the goal (workerRSSGoalMB); over the function's memory fails.
func BenchmarkWorkerPeakRSS(b *testing.B) {
	srv := influxtest.Shared(b)
	bucket := srv.NewBucket(b, "rss")
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	run := func(minutes int) (peak, before float64) {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), rssChildEnv+"=1", "BACKFILL_RSS_URL="+srv.URL, "BACKFILL_RSS_TOKEN="+srv.Token,
			"BACKFILL_RSS_ORG="+srv.Org, "BACKFILL_RSS_BUCKET="+bucket, "BACKFILL_RSS_MINUTES="+strconv.Itoa(minutes))
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			b.Fatalf("worker process: %v: %s", err, errb.String())
		}
		var bk, hk int64
		lines := strings.Split(strings.TrimSpace(out.String()), "\n") // log lines come first
		if _, err := fmt.Sscanf(lines[len(lines)-1], "VmHWM_before_kB=%d VmHWM_kB=%d", &bk, &hk); err != nil {
			b.Fatalf("worker process printed %q: %v", out.String(), err)
		}
		// VmHWM, not the child's rusage: ru_maxrss keeps the parent's RSS from before exec
		return float64(hk) / 1024, float64(bk) / 1024
	}
	var day, week, base float64
	for i := 0; i < b.N; i++ {
		day, base = run(1440)
		week, _ = run(7 * 1440)
	}
	b.ReportMetric(day, "MB_peak_rss_1day_chunk")
	b.ReportMetric(week, "MB_peak_rss_7day_chunk")
	b.ReportMetric(base, "MB_rss_before_work")
	b.ReportMetric(workerRSSGoalMB, "MB_peak_rss_goal")
	if mem := float64(routetest.MemoryMB(b, "BackfillWorkerFunction")); week >= mem || day >= mem {
		b.Errorf("peak RSS %.1f / %.1f MB reaches the worker's %.0f MB", day, week, mem)
	}
}

// workerRSSGoalMB is the peak RSS the worker aims at.
const workerRSSGoalMB = 40
