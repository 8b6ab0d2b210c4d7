package backfill

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/fleettest"
	"github.com/iot-center/iot-center-serverless/internal/influxtest"
)

// taskSink is a Queue that keeps what is sent (the benchmark runs the tasks itself, without SQS).
type taskSink struct {
	mu    sync.Mutex
	tasks []Task
}

func (q *taskSink) Send(_ context.Context, tasks []Task) error {
	q.mu.Lock()
	q.tasks = append(q.tasks, tasks...)
	q.mu.Unlock()
	return nil
}

func (q *taskSink) Retry(context.Context, string, time.Duration) error { return nil }

func (q *taskSink) take() []Task {
	q.mu.Lock()
	defer q.mu.Unlock()
	t := q.tasks
	q.tasks = nil
	return t
}

// BenchmarkFleet10000 times the fleet paths in-process (the real handlers and the real InfluxDB, no emulator or
// SQS) at 10,000 registered devices (registry records written directly), each with the last 10 minutes of data:
// the registry's list, the fleet coverage poll (the device list has its own benchmark, shared/fleet), the
// write-missing answer (a new job, the same job again, and a job for 1,000 listed devices), and the planning of every device for one day (the plan
// task and its batch tasks run here at the template's 4 at a time; the chunk tasks are only counted).
func BenchmarkFleet10000(b *testing.B) {
	const n = 10000
	srv := influxtest.Shared(b)
	f := newFixture(b, srv, fixtureOpts{paused: true, now: time.Now})
	ids := fleettest.IDs("fl", n)
	fleettest.Register(b, f.table, ids)
	now := time.Now().Unix() / 60
	fleettest.WriteMinutes(b, f.admin, f.cfg.Bucket, home, ids, now-10, now)

	fetch := func(h http.Handler, path string, out any) time.Duration {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil).WithContext(ctx))
		el := time.Since(start)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d %.300s", path, rec.Code, rec.Body.String())
		}
		if out != nil {
			if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
				b.Fatalf("GET %s: %v", path, err)
			}
		}
		return el
	}
	get := func(h http.Handler, path string) time.Duration { return fetch(h, path, nil) }
	// the answer is right at this size: 10 minutes present for each device (the device list and the fleet's health
	// have their own benchmark: shared/fleet's BenchmarkFleet)
	var cov struct {
		Present int64
		Devices []Coverage
	}
	fetch(f.h, "/api/write-missing", &cov)
	if len(cov.Devices) != n || cov.Present != 10*n {
		b.Fatalf("coverage: %d devices, %d minutes present; want %d and %d", len(cov.Devices), cov.Present, n, 10*n)
	}
	sink := &taskSink{}
	runner := &Runner{Planner: f.svc.Planner, Jobs: f.jobs, Queue: sink, Devices: f.svc.Devices, ChunkMinutes: 1440}
	report := func(name string, d time.Duration) {
		b.ReportMetric(float64(d.Microseconds())/1000, fmt.Sprintf("%s_%d_ms", name, n))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		report("registry_list", median(b, 5, func() time.Duration {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			start := time.Now()
			list, err := f.reg.List(ctx)
			if err != nil || len(list) != n {
				b.Fatalf("registry list: %d devices, %v; want %d", len(list), err, n)
			}
			return time.Since(start)
		}))
		report("coverage_poll", median(b, 5, func() time.Duration { return get(f.h, "/api/write-missing") }))

		start := time.Now()
		status, job, _ := f.post(b, "/api/write-missing", `{"days": 1}`)
		report("write_missing_answer", time.Since(start))
		if status != http.StatusAccepted {
			b.Fatalf("write-missing %d %+v, want 202", status, job)
		}
		report("write_missing_repeat_answer", median(b, 5, func() time.Duration {
			t0 := time.Now()
			if status, again, _ := f.post(b, "/api/write-missing", `{"days": 1}`); status != http.StatusOK || again.ID != job.ID {
				b.Fatalf("repeat write-missing %d %+v, want 200 and job %s", status, again, job.ID)
			}
			return time.Since(t0)
		}))

		list, _ := json.Marshal(map[string]any{"devices": ids[:MaxBatchDevices], "days": 1})
		start = time.Now()
		if status, listed, _ := f.post(b, "/api/write-missing", string(list)); status != http.StatusAccepted || listed.Devices != MaxBatchDevices {
			b.Fatalf("write-missing for %d listed devices: %d %+v, want 202", MaxBatchDevices, status, listed)
		}
		report("write_missing_1000_listed_answer", time.Since(start))

		start = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		if err := runner.Run(ctx, Task{Kind: KindPlan, Job: job.ref(), All: true}); err != nil {
			b.Fatalf("plan task: %v", err)
		}
		batches := sink.take()
		if err := forEach(ctx, len(batches), 4, func(ctx context.Context, k int) error { return runner.Run(ctx, batches[k]) }); err != nil {
			b.Fatalf("batch tasks: %v", err)
		}
		report("plan_all_devices", time.Since(start))
		chunks := 0
		for _, t := range sink.take() {
			chunks += len(t.Chunks)
		}
		planned, err := f.jobs.Get(ctx, job.ID, time.Now())
		cancel()
		if err != nil || planned.State != StateRunning || planned.Devices != n || chunks < n || planned.Chunks != chunks {
			b.Fatalf("planned job %+v (%v), %d chunks queued; want running, %d devices, a chunk or two each", planned, err, chunks, n)
		}
		b.Logf("%d batch tasks, %d chunks", len(batches), chunks)
	}
}
