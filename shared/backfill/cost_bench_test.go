package backfill

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/routetest"
)

// AWS Lambda's published arm64 prices (https://aws.amazon.com/lambda/pricing/, US East (N. Virginia), first
// 7.5 billion GB-s a month; the template's functions are arm64): duration per GB-second, and per request.
const (
	lambdaArmUSDPerGBs     = 0.0000133334
	lambdaUSDPerRequest    = 0.20 / 1e6
	lambdaMBPerVCPU        = 1769 // AWS: a function gets one vCPU at 1,769 MB, in proportion below
	workerCostRoundsCPU    = 10
	workerCostRoundsInflux = 3
)

// BenchmarkWorkerCPU is the worker's cost on its real path: Worker.HandleAll (what a chunk task runs) over a task of
// the default size (DefaultTaskMinutes: ten device-days of two devices, hourly aggregates included).
//   - CPU per 1,000 points: the process's CPU time (user + system) with InfluxDB's answers discarded: line
//     generation, hourly aggregates, gzip.
//   - Lambda GB-s and USD per million points at the template's MemorySize: the same task written to the real InfluxDB
//     by one worker (one Lambda instance); its wall time minus its CPU time is the wait for InfluxDB, which Lambda
//     bills as it is, while the CPU work runs lambdaMBPerVCPU/memory times longer there (a fraction of a vCPU). Plus
//     one request per task. The wait is this machine's (InfluxDB on the same shared 2 cores).
func BenchmarkWorkerCPU(b *testing.B) {
	mem := float64(routetest.MemoryMB(b, "BackfillWorkerFunction"))
	task := costTask()
	var points float64
	for _, c := range task {
		points += float64(c.Minutes())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := func(w *Worker, rounds int) (wall, cpu float64) {
		b.Helper()
		t0, c0 := time.Now(), cpuTime(b)
		for i := 0; i < rounds; i++ {
			if err := w.HandleAll(ctx, task); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(t0).Seconds() / (float64(rounds) * points), (cpuTime(b) - c0).Seconds() / (float64(rounds) * points)
	}
	srv := influxtest.Shared(b)
	real := &Worker{Influx: srv.Client(b), Bucket: srv.NewBucket(b, "cost"), DownsampledBucket: srv.NewBucket(b, "costdown"), Gen: home}
	b.ResetTimer()
	var cpu, wall, cpuReal float64
	for i := 0; i < b.N; i++ {
		_, cpu = run(&Worker{Influx: discard{}, Bucket: "b", DownsampledBucket: "d", Gen: home}, workerCostRoundsCPU)
		wall, cpuReal = run(real, workerCostRoundsInflux)
	}
	wait := max(wall-cpuReal, 0)
	billed := wait + cpu*max(lambdaMBPerVCPU/mem, 1) // seconds per point at the template's memory
	gbs := billed * 1e6 * mem / 1024
	b.ReportMetric(cpu*1e6, "cpu_ms/1000_points")
	b.ReportMetric(1/cpu, "points/s_one_core")
	b.ReportMetric(wait*1e6, "influx_wait_ms/1000_points")
	b.ReportMetric(mem, "MB_worker_memory")
	b.ReportMetric(gbs, "lambda_GB-s/million_points")
	b.ReportMetric(gbs*lambdaArmUSDPerGBs+1e6/points*lambdaUSDPerRequest, "lambda_USD/million_points")
}

// costTask is a chunk task of the default size as the batch task builds it: whole UTC days of two devices.
func costTask() []Chunk {
	day := fixedNow.Truncate(24*time.Hour).Unix() / 60
	var out []Chunk
	for n := int64(0); n*1440 < DefaultTaskMinutes; n++ {
		id := "cost-a"
		if n >= DefaultTaskMinutes/1440/2 {
			id = "cost-b"
		}
		from := day - (n+1)*1440
		out = append(out, Chunk{DeviceID: id, Ranges: []Range{{from, from + 1440}}})
	}
	return out
}

// cpuTime is the process's CPU time so far (user + system, every thread).
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
