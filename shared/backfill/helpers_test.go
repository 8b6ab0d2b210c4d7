package backfill

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/iot-center/iot-center-serverless/internal/authztest"
	"github.com/iot-center/iot-center-serverless/internal/devstack"
	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/sqsesm"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

func TestMain(m *testing.M) {
	if os.Getenv(rssChildEnv) != "" {
		os.Exit(rssChild())
	}
	code := influxtest.Main(m)
	if moto.m != nil {
		moto.m.Stop()
	}
	testenv.StopStateTables()
	os.Exit(code)
}

var home = sensors.Generator{Lat: config.DefaultLat, Lon: config.DefaultLon}

// fixedNow is the planner's clock in tests: the window is then the same on every run.
var fixedNow = time.Date(2026, 11, 20, 12, 0, 30, 0, time.UTC)

// moto is one moto SQS server per test binary (a stand-in for SQS, which cannot run here); each fixture creates its
// own queues on it.
var moto struct {
	once sync.Once
	m    *devstack.Moto
	err  error
}

func motoURL(t testing.TB) string {
	t.Helper()
	moto.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		moto.m, moto.err = devstack.LaunchMoto(ctx, io.Discard)
	})
	if moto.err != nil {
		t.Fatalf("moto: %v", moto.err)
	}
	return moto.m.URL
}

// fixture is a data bucket and a registry bucket on a real InfluxDB, the real registry, the write-missing HTTP
// handler, a chunk queue and its dead-letter queue on moto's SQS, and a local event source mapping (the part of the
// Lambda service that cannot run here) running the real Runner in-process, at most `instances` at once.
type fixture struct {
	srv     *influxtest.Server
	cfg     config.Config
	admin   *influx.Client
	reg     *registry.Registry
	table   *store.Table
	queue   *SQSQueue
	dlq     sqsesm.Queue
	mapping *sqsesm.Mapping
	jobs    *JobStore
	svc     *Service
	h       http.Handler
	errs    syncErrs
	// before, when set, is called before each chunk task runs (fault injection).
	before func(n int64)
	chunks atomic.Int64
	// ran is signalled (without blocking) when no invocation is left running: waitEnd reads the job then, and
	// otherwise every poll (a job read is InfluxDB work, which the throughput benchmark must not inflate).
	ran      chan struct{}
	poll     time.Duration
	inFlight atomic.Int64
	// storeDown, while true, drops every connection to the state table (the DynamoDB endpoint stopped).
	storeDown atomic.Bool
}

type syncErrs struct {
	mu   sync.Mutex
	list []error
}

func (e *syncErrs) add(err error) {
	e.mu.Lock()
	e.list = append(e.list, err)
	e.mu.Unlock()
}

func (e *syncErrs) get() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]error(nil), e.list...)
}

type fixtureOpts struct {
	workerURL    string // InfluxDB URL the worker writes to (a fault-injecting proxy); srv.URL when empty
	instances    int    // the mapping's MaximumConcurrency
	chunkMinutes int
	downsample   bool // re-aggregate written hours into a downsampled bucket, as the function does
	now          func() time.Time
	jobTimeout   time.Duration
	maxReceives  int           // the redrive policy's maxReceiveCount (default 5)
	paused       bool          // no event source mapping: tasks stay queued
	poll         time.Duration // how often waitEnd reads the job besides after each invocation (default 100 ms)
	taskMinutes  int           // minutes of chunks per chunk task (default 1: one chunk per task)
	batchDevices int           // devices per planning batch task (default 3)
}

func newFixture(t testing.TB, srv *influxtest.Server, o fixtureOpts) *fixture {
	t.Helper()
	o.instances, o.chunkMinutes, o.workerURL = cmp.Or(o.instances, 4), cmp.Or(o.chunkMinutes, 1440), cmp.Or(o.workerURL, srv.URL)
	o.maxReceives, o.taskMinutes, o.batchDevices = cmp.Or(o.maxReceives, 5), cmp.Or(o.taskMinutes, 1), cmp.Or(o.batchDevices, 3)
	o.poll = cmp.Or(o.poll, 100*time.Millisecond)
	if o.now == nil {
		o.now = func() time.Time { return fixedNow }
	}
	cfg := srv.Config(srv.NewBucket(t, "bfdata"))
	cfg.MaxDevices = 10000
	if o.downsample {
		cfg.BucketDownsampled = srv.NewBucket(t, "bfdown")
	}
	f := &fixture{srv: srv, cfg: cfg, admin: srv.Client(t), ran: make(chan struct{}, 1), poll: o.poll}
	f.table = testenv.StateTable(t, nil) // the registry's; the job store's own table can be taken down
	f.reg = registry.New(f.admin, cfg, f.table)
	f.jobs = &JobStore{Table: testenv.StateTable(t, &f.storeDown)}

	ctx, cancel := context.WithCancel(context.Background())
	sqsClient := sqsesm.NewSQSClient(motoURL(t))
	name := "chunks-" + influxtest.RandomID(6)
	qctx, qcancel := context.WithTimeout(ctx, time.Minute)
	defer qcancel()
	queues, err := sqsesm.CreateQueues(qctx, sqsClient, map[string]sqsesm.QueueSpec{
		name:          {VisibilityTimeout: 30, RetentionPeriod: 3600, DeadLetter: name + "-dlq", MaxReceiveCount: o.maxReceives},
		name + "-dlq": {VisibilityTimeout: 30, RetentionPeriod: 3600},
	})
	if err != nil {
		cancel()
		t.Fatalf("creating queues: %v", err)
	}
	f.queue = &SQSQueue{Client: sqsClient, URL: queues[name].URL}
	f.dlq = queues[name+"-dlq"]
	devices := f.reg
	planner := &Planner{Influx: f.admin, Bucket: cfg.Bucket}
	runners := make(chan *Runner, o.instances)
	for i := 0; i < o.instances; i++ {
		c := influx.New(o.workerURL, srv.Token, srv.Org, influx.Options{})
		t.Cleanup(c.Close)
		w := &Worker{Influx: c, Bucket: cfg.Bucket, Gen: home}
		if o.downsample {
			w.DownsampledBucket = cfg.BucketDownsampled
		}
		runners <- &Runner{Worker: w, Planner: planner, Jobs: f.jobs, Queue: f.queue, Devices: devices,
			ChunkMinutes: o.chunkMinutes, BatchDevices: o.batchDevices, TaskMinutes: o.taskMinutes, Clock: o.now}
	}
	f.mapping = &sqsesm.Mapping{Function: "BackfillWorker", Queue: queues[name], Client: sqsClient, Idle: 50 * time.Millisecond,
		Event: sqsesm.Event{BatchSize: 1, MaximumConcurrency: o.instances, ReportItemFailures: true},
		Invoke: func(ctx context.Context, event []byte) ([]byte, bool, error) {
			var ev events.SQSEvent
			if err := json.Unmarshal(event, &ev); err != nil {
				return nil, false, err
			}
			for _, rec := range ev.Records {
				if strings.Contains(rec.Body, `"kind":"chunk"`) && f.before != nil {
					f.before(f.chunks.Add(1))
				}
			}
			f.inFlight.Add(1)
			r := <-runners
			resp, err := r.HandleSQS(ctx, ev)
			runners <- r
			if f.inFlight.Add(-1) == 0 {
				select {
				case f.ran <- struct{}{}:
				default:
				}
			}
			if len(resp.BatchItemFailures) > 0 {
				f.errs.add(fmt.Errorf("%d tasks failed", len(resp.BatchItemFailures)))
			}
			b, _ := json.Marshal(resp)
			return b, err != nil, nil
		}}
	done := make(chan struct{})
	if o.paused {
		close(done)
	} else {
		go func() { defer close(done); f.mapping.Run(ctx) }()
	}
	t.Cleanup(func() { cancel(); <-done })

	f.svc = &Service{
		Devices:    devices,
		Planner:    planner,
		Jobs:       f.jobs,
		Queue:      f.queue,
		MaxDevices: cfg.MaxDevices,
		JobTimeout: o.jobTimeout,
		Clock:      o.now,
	}
	f.h = api.Handler(authztest.Operator(f.svc.Routes())) // every write-missing route is the operator's
	return f
}

// wait polls the job (bounded) until it ends and returns it; it fails the test when the job failed or tasks
// reached the dead-letter queue.
func (f *fixture) wait(t testing.TB, jobID string) Job {
	t.Helper()
	j := f.waitEnd(t, jobID)
	if j.State != StateDone {
		t.Fatalf("job ended %s: %+v; task errors: %v", j.State, j, f.errs.get())
	}
	if n := f.dlqDepth(t); n != 0 {
		t.Fatalf("%d tasks in the dead-letter queue", n)
	}
	return j
}

// waitEnd polls the job until it is done or failed (bounded: 4 minutes).
func (f *fixture) waitEnd(t testing.TB, jobID string) Job {
	t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		j, err := f.jobs.Get(ctx, jobID, f.svc.Clock.Now())
		cancel()
		if err == nil && !j.active() {
			return j
		}
		if err != nil && !api.IsCode(err, api.Unavailable) && !api.IsCode(err, api.StoreUnavailable) {
			t.Fatalf("reading job %s: %v", jobID, err) // a store down (a test stops it) is waited out
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s did not end within 4 minutes: %+v; task errors: %v", jobID, j, f.errs.get())
		}
		select {
		case <-f.ran:
		case <-time.After(f.poll):
		}
	}
}

// dlqDepth counts the messages in the dead-letter queue.
func (f *fixture) dlqDepth(t testing.TB) int {
	t.Helper()
	return f.depth(t, f.dlq.URL)
}

// queueDepth counts the messages in the chunk queue.
func (f *fixture) queueDepth(t testing.TB) int {
	t.Helper()
	return f.depth(t, f.queue.URL)
}

func (f *fixture) depth(t testing.TB, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := f.queue.Client.(*sqs.Client).GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatalf("reading queue %s: %v", url, err)
	}
	n := 0
	for _, v := range out.Attributes {
		k, _ := strconv.Atoi(v)
		n += k
	}
	return n
}

// post sends a plan request and returns its status, the job and the Location header.
func (f *fixture) post(t testing.TB, path, body string) (int, Job, string) {
	t.Helper()
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req.WithContext(ctx))
	var j Job
	if rec.Code < 300 {
		if err := json.Unmarshal(rec.Body.Bytes(), &j); err != nil {
			t.Fatalf("POST %s: %q is not a job: %v", path, rec.Body.String(), err)
		}
	}
	return rec.Code, j, rec.Header().Get("Location")
}

// register registers a device with a unique id and revokes its authorization at the end of the test.
func (f *fixture) register(t testing.TB, prefix string) string {
	t.Helper()
	id := prefix + "-" + influxtest.RandomID(3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := f.reg.Register(ctx, id); err != nil {
		t.Fatalf("registering %s: %v", id, err)
	}
	f.srv.RevokeAtCleanup(t, registry.Description(id))
	return id
}

// do sends a request through the handler and decodes the JSON answer.
func (f *fixture) do(t testing.TB, method, path, body string) (int, map[string]any) {
	t.Helper()
	var rd *bytes.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
	} else {
		rd = bytes.NewReader(nil)
	}
	req := httptest.NewRequest(method, path, rd)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req.WithContext(ctx))
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: answer %q is not a JSON object: %v", method, path, rec.Body.String(), err)
	}
	return rec.Code, out
}

// writeMinutes writes the device's points for the given Unix minutes with generator g.
func (f *fixture) writeMinutes(t testing.TB, id string, g sensors.Generator, minutes []int64) {
	t.Helper()
	line := sensors.NewLine(g, id)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var lp []byte
	for i, m := range minutes {
		lp = line.Append(lp, m*60_000)
		if (i+1)%BatchLines == 0 || i == len(minutes)-1 {
			if err := f.admin.WriteLines(ctx, f.cfg.Bucket, lp); err != nil {
				t.Fatalf("writing: %v", err)
			}
			lp = lp[:0]
		}
	}
}

// wantFilled checks that the device's week w is complete: its coverage route answers 100% of 10,080 minutes, and
// every field has exactly 10,080 points in it.
func (f *fixture) wantFilled(t *testing.T, id string, w Window) {
	t.Helper()
	status, cov := f.do(t, "GET", fmt.Sprintf("/api/devices/%s/write-missing?from=%s&to=%s", id,
		w.From.Format(time.RFC3339), w.To.Format(time.RFC3339)), "")
	if status != http.StatusOK || num(t, cov["percent"]) != 100 || num(t, cov["present"]) != 10080 ||
		num(t, cov["expected"]) != 10080 || num(t, cov["missing"]) != 0 {
		t.Errorf("coverage %d %v, want 100%% of 10,080", status, cov)
	}
	counts := f.countFields(t, id, w)
	for _, name := range fields {
		if counts[name] != 10080 {
			t.Errorf("%s: %d points in the window, want exactly 10,080", name, counts[name])
		}
	}
}

// countFields counts the device's points per field in w.
func (f *fixture) countFields(t testing.TB, id string, w Window) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := map[string]int64{}
	err := f.admin.QueryRows(ctx, `from(bucket: bucket) |> range(start: start, stop: stop)
  |> filter(fn: (r) => r._measurement == "environment" and r.clientId == deviceId)
  |> group(columns: ["_field"]) |> count()`,
		influx.Extern{"bucket": f.cfg.Bucket, "start": w.From, "stop": w.To, "deviceId": id},
		func(v map[string]any) error {
			got[fmt.Sprint(v["_field"])] += v["_value"].(int64)
			return nil
		})
	if err != nil {
		t.Fatalf("counting: %v", err)
	}
	return got
}

// minutesOf lists the Unix minutes of w.
func minutesOf(w Window) []int64 {
	out := make([]int64, 0, w.Minutes())
	for m := w.From.Unix() / 60; m < w.To.Unix()/60; m++ {
		out = append(out, m)
	}
	return out
}

func num(t testing.TB, v any) float64 {
	t.Helper()
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("%v (%T) is not a JSON number", v, v)
	}
	return f
}
