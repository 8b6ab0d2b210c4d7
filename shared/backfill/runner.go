package backfill

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/clock"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/metrics"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

// Runner is BackfillWorkerFunction's handler: it runs the tasks the chunk queue delivers (plan, batch, chunk).
type Runner struct {
	Worker       *Worker
	Planner      *Planner
	Jobs         *JobStore
	Queue        Queue
	Devices      *registry.Registry
	ChunkMinutes int
	// BatchDevices is how many devices one batch task plans (one query); sized to the job's window when 0
	// (BatchSize).
	BatchDevices int
	// TaskMinutes is how many minutes of chunks one chunk task carries (several devices' chunks, written one after
	// the other); DefaultTaskMinutes when 0. One chunk is never split across tasks.
	TaskMinutes int
	Clock       clock.Func
}

// DefaultBatchDevices is the smallest batch BatchSize chooses (a 30-day window).
const DefaultBatchDevices = 100

// batchDeviceHours bounds a batch's planning query: its devices × the window's hours is the most rows its answer
// has (one per device and hour). 100 devices over 30 days, 1,000 over 3 days or less: fewer, larger batches plan
// a short window's fleet with ten tasks instead of a hundred at 10,000 devices.
const batchDeviceHours = DefaultBatchDevices * 30 * 24

// BatchSize is how many devices one batch task plans for window w: configured when it is set, else as many as
// keep the planning query within batchDeviceHours, between DefaultBatchDevices and MaxBatchDevices.
func BatchSize(configured int, w Window) int {
	if configured > 0 {
		return configured
	}
	hours := max(int(w.To.Sub(w.From)/time.Hour), 1)
	return min(max(batchDeviceHours/hours, DefaultBatchDevices), MaxBatchDevices)
}

// DefaultTaskMinutes is ten device-days of points per chunk task: about a second of a worker's CPU, and a
// thousand-device day is a hundred messages and invocations.
const DefaultTaskMinutes = 10 * 1440

// retry delays of a task that failed on a transient error (InfluxDB overloaded or down): doubling from the base,
// capped, and never past the job's deadline (the attempt after it records the chunk as failed).
const (
	retryBase = 5 * time.Second
	retryMax  = 5 * time.Minute
)

// HandleSQS runs each message of the event (BatchSize 1 in the template) and reports the failed ones, which the
// event source mapping leaves on the queue: they come back after their visibility timeout (set here to a
// backoff), and after the redrive policy's maxReceiveCount go to the dead-letter queue.
func (r *Runner) HandleSQS(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, m := range ev.Records {
		if err := r.handleMessage(ctx, m); err != nil {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	// the invocation itself succeeds (Lambda's Errors metric stays 0): this metric is what BackfillFailuresAlarm sees
	r.emit(ctx, "TasksRetried", len(resp.BatchItemFailures))
	return resp, nil
}

// emit counts backfill work that did not succeed (TasksRetried, ChunksFailed), as EMF in the worker's metrics.
func (r *Runner) emit(ctx context.Context, name string, n int) {
	if n == 0 || r.Worker == nil || r.Worker.Metrics == nil {
		return
	}
	metrics.Emit(ctx, r.Worker.Metrics, name, float64(n), metrics.Count, metrics.Dim{Name: "Function", Value: "BackfillWorker"})
}

func (r *Runner) handleMessage(ctx context.Context, m events.SQSMessage) error {
	log := api.Logger(ctx)
	var t Task
	if err := json.Unmarshal([]byte(m.Body), &t); err != nil {
		log.ErrorContext(ctx, "task is not JSON: left for the dead-letter queue", slog.String("messageId", m.MessageId))
		return err
	}
	if err := t.Validate(); err != nil {
		log.ErrorContext(ctx, "invalid task: left for the dead-letter queue", slog.String("messageId", m.MessageId),
			slog.String("error", err.Error()))
		return err
	}
	err := r.Run(ctx, t)
	if err == nil {
		return nil
	}
	attrs := []any{slog.String("jobId", t.Job.ID), slog.String("kind", t.Kind), slog.String("error", err.Error())}
	if len(t.Chunks) > 0 {
		attrs = append(attrs, slog.String("deviceId", t.Chunks[0].DeviceID), slog.Int("chunks", len(t.Chunks)))
	}
	n, _ := strconv.Atoi(m.Attributes["ApproximateReceiveCount"])
	delay := retryBase << min(max(n-1, 0), 10)
	delay = min(delay, retryMax)
	if until := t.Job.Deadline.Sub(r.Clock.Now()) + time.Second; until > 0 && delay > until {
		delay = until
	}
	if m.ReceiptHandle != "" && r.Queue != nil {
		if verr := r.Queue.Retry(ctx, m.ReceiptHandle, delay); verr != nil {
			attrs = append(attrs, slog.String("visibilityError", verr.Error()))
		}
	}
	log.WarnContext(ctx, "task failed: retried after a backoff", append(attrs, slog.Duration("retryIn", delay))...)
	return err
}

// Run runs one task. A returned error leaves the task for another attempt; writes are idempotent, so a task run
// twice (SQS delivers at least once) changes nothing more than once.
func (r *Runner) Run(ctx context.Context, t Task) error {
	// a cancelled job's tasks do nothing (one read of the job's item per task; the points of tasks that ran stay)
	if j, err := r.Jobs.Get(ctx, t.Job.ID, r.Clock.Now()); err != nil && !api.IsCode(err, api.NotFound) {
		return err
	} else if j.CancelledAt != nil {
		api.Logger(ctx).InfoContext(ctx, "task of a cancelled job: skipped", slog.String("jobId", t.Job.ID), slog.String("kind", t.Kind))
		return nil
	}
	switch t.Kind {
	case KindPlan:
		return r.plan(ctx, t)
	case KindBatch:
		return r.batch(ctx, t)
	case KindChunk:
		return r.chunk(ctx, t)
	}
	return api.InvalidParam("kind", "unknown task kind")
}

// plan reads the job's device list once and fans it out in batch tasks.
func (r *Runner) plan(ctx context.Context, t Task) error {
	// every registered device, or those of the explicit list still registered (one deleted since the request is
	// skipped); the list's query reads only its devices' records
	var only []string
	if !t.All {
		only = append([]string{}, t.Devices...)
	}
	ids, err := deviceIDs(ctx, r.Devices, only)
	if err != nil {
		return err
	}
	size := BatchSize(r.BatchDevices, t.Job.Window)
	var tasks []Task
	for b := 0; b*size < len(ids); b++ {
		part := ids[b*size : min(len(ids), (b+1)*size)]
		tasks = append(tasks, Task{Kind: KindBatch, Job: t.Job, Devices: part, Batch: b, First: b * size})
	}
	if err := r.Jobs.recordPlan(ctx, t.Job, len(ids), len(tasks), r.Clock.Now()); err != nil {
		return err
	}
	if err := r.Queue.Send(ctx, tasks); err != nil {
		return err
	}
	api.Logger(ctx).InfoContext(ctx, "job planned", slog.String("jobId", t.Job.ID), slog.Int("devices", len(ids)),
		slog.Int("batches", len(tasks)))
	return nil
}

// batch plans its devices with one query, counts the plan, then fans the chunks out (counted first: a chunk never
// counts before the plan it belongs to). A device's chunks travel in one task, which counts the device once.
func (r *Runner) batch(ctx context.Context, t Task) error {
	if !r.Clock.Now().Before(t.Job.Deadline) {
		return nil // the job has failed: leave the batch uncounted
	}
	plans, err := r.Planner.PlanDevices(ctx, t.Devices, t.Job.Window, r.ChunkMinutes)
	if err != nil {
		return influx.Fail(ctx, err, "querying InfluxDB")
	}
	budget := int64(r.TaskMinutes)
	if budget <= 0 {
		budget = DefaultTaskMinutes
	}
	var tasks []Task
	var taskMinutes int64
	tl := tally{batch: int64(t.Batch), devices: map[int64]outcome{}}
	for i, p := range plans {
		dev := int64(t.First + i)
		tl.points += p.Missing
		tl.chunks += int64(len(p.Windows))
		if len(p.Windows) == 0 {
			tl.devices[dev] = outcome{} // nothing missing: done
			continue
		}
		if n := len(tasks); n == 0 || taskMinutes >= budget || len(tasks[n-1].Chunks)+len(p.Windows) > MaxBatchDevices {
			tasks, taskMinutes = append(tasks, Task{Kind: KindChunk, Job: t.Job}), 0
		}
		for c, w := range p.Windows {
			ref := ChunkRef{DeviceID: p.DeviceID, Window: w, Seq: dev*seqPerDevice + int64(c), Of: len(p.Windows)}
			if c == 0 {
				ref.Missing = p.Missing
			}
			tasks[len(tasks)-1].Chunks = append(tasks[len(tasks)-1].Chunks, ref)
			taskMinutes += w.Minutes()
		}
	}
	if err := r.Jobs.count(ctx, t.Job, tl, r.Clock.Now()); err != nil {
		return err
	}
	return r.Queue.Send(ctx, tasks)
}

// chunk writes its chunks' gaps (one query finds them all), or counts them failed past the job's deadline. A
// transient failure counts nothing, as the task runs again and writes are idempotent; an invalid one counts the
// chunks failed. A device written counts the points its plan found missing.
func (r *Runner) chunk(ctx context.Context, t Task) error {
	var err error = api.Errorf(api.Invalid, "past the job's deadline")
	if r.Clock.Now().Before(t.Job.Deadline) {
		err = r.writeChunks(ctx, t.Chunks)
	} else {
		api.Logger(ctx).WarnContext(ctx, "chunks past their job's deadline: counted failed", slog.String("jobId", t.Job.ID),
			slog.String("deviceId", t.Chunks[0].DeviceID))
	}
	if err != nil && !api.IsCode(err, api.Invalid) {
		return err
	}
	if err != nil {
		r.emit(ctx, "ChunksFailed", len(t.Chunks))
	}
	tl := tally{batch: -1, devices: map[int64]outcome{}}
	for _, ref := range t.Chunks {
		o := tl.devices[ref.device()]
		if err != nil {
			o.failed++
		} else {
			o.done, o.points = o.done+1, o.points+ref.Missing
		}
		tl.devices[ref.device()] = o
	}
	return r.Jobs.count(ctx, t.Job, tl, r.Clock.Now())
}

// writeChunks finds the exact gaps of the chunks' windows (one query) and writes them.
func (r *Runner) writeChunks(ctx context.Context, refs []ChunkRef) error {
	spans := make([]span, len(refs))
	for i, ref := range refs {
		spans[i] = span{ref.DeviceID, ref.window()}
	}
	planned, err := r.Planner.chunksOf(ctx, spans, r.ChunkMinutes)
	if err != nil {
		return influx.Fail(ctx, err, "querying InfluxDB")
	}
	var all []Chunk
	for _, cs := range planned {
		all = append(all, cs...)
	}
	return r.Worker.HandleAll(ctx, all)
}
