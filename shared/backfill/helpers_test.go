package backfill

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
)

func TestMain(m *testing.M) {
	if os.Getenv(rssChildEnv) != "" {
		os.Exit(rssChild())
	}
	os.Exit(influxtest.Main(m))
}

var home = sensors.Generator{Lat: config.DefaultLat, Lon: config.DefaultLon}

// fixedNow is the planner's clock in tests: the window is then the same on every run.
var fixedNow = time.Date(2026, 11, 20, 12, 0, 30, 0, time.UTC)

// fakeLambdaService stands in for the AWS Lambda service's asynchronous invoke (it cannot run here): every event is
// JSON round-tripped like the real payload, queued, and run by the worker code in-process on one of `instances`
// workers; a failing event is retried up to `retries` times (the template's MaximumRetryAttempts: 2) and then kept
// as dead-lettered, as the on-failure destination would.
type fakeLambdaService struct {
	t         testing.TB
	ctx       context.Context
	retries   int
	workers   chan *Worker
	before    func(n int) // called before the n-th invocation (1-based), for fault injection
	wg        sync.WaitGroup
	mu        sync.Mutex
	invokes   int
	errs      []error
	dlq       []Chunk
	dispatchd int
}

var _ Dispatcher = (*fakeLambdaService)(nil)

func newFakeLambda(t testing.TB, instances int, newWorker func() *Worker) *fakeLambdaService {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	f := &fakeLambdaService{t: t, ctx: ctx, retries: 2, workers: make(chan *Worker, instances)}
	for i := 0; i < instances; i++ {
		f.workers <- newWorker()
	}
	return f
}

func (f *fakeLambdaService) Dispatch(ctx context.Context, c Chunk) error {
	payload, err := json.Marshal(c)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.dispatchd++
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for attempt := 0; attempt <= f.retries; attempt++ {
			var ev Chunk
			if err := json.Unmarshal(payload, &ev); err != nil {
				f.fail(err)
				return
			}
			w := <-f.workers
			f.mu.Lock()
			f.invokes++
			n := f.invokes
			f.mu.Unlock()
			if f.before != nil {
				f.before(n)
			}
			err := w.Handle(f.ctx, ev)
			f.workers <- w
			if err == nil {
				return
			}
			f.fail(err)
		}
		f.mu.Lock()
		f.dlq = append(f.dlq, c)
		f.mu.Unlock()
	}()
	return nil
}

func (f *fakeLambdaService) fail(err error) {
	f.mu.Lock()
	f.errs = append(f.errs, err)
	f.mu.Unlock()
}

// wait blocks until every queued event finished (bounded) and fails the test on dead-lettered chunks.
func (f *fakeLambdaService) wait(t testing.TB) {
	t.Helper()
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(4 * time.Minute):
		t.Fatal("backfill did not finish within 4 minutes")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.dlq) > 0 {
		t.Fatalf("%d chunks dead-lettered; errors: %v", len(f.dlq), f.errs)
	}
}

func (f *fakeLambdaService) dispatched() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dispatchd
}

// fixture is a data bucket and a registry bucket on a real InfluxDB, the real registry, the planner's HTTP handler
// and a fake Lambda service running the real worker.
type fixture struct {
	srv    *influxtest.Server
	cfg    config.Config
	admin  *influx.Client
	reg    *registry.Registry
	lambda *fakeLambdaService
	svc    *Service
	h      http.Handler
}

type fixtureOpts struct {
	workerURL    string // InfluxDB URL the worker writes to (a fault-injecting proxy); srv.URL when empty
	instances    int
	chunkMinutes int
	downsample   bool // re-aggregate written hours into a downsampled bucket, as the function does
}

func newFixture(t testing.TB, srv *influxtest.Server, o fixtureOpts) *fixture {
	t.Helper()
	if o.instances == 0 {
		o.instances = 4
	}
	if o.chunkMinutes == 0 {
		o.chunkMinutes = 1440
	}
	if o.workerURL == "" {
		o.workerURL = srv.URL
	}
	cfg := config.Config{
		InfluxURL: srv.URL, InfluxPublicURL: srv.URL, Org: srv.Org, Token: config.Secret(srv.Token),
		Bucket: srv.NewBucket(t, "bfdata"), BucketAuth: srv.NewBucket(t, "bfreg"),
		DefaultLat: config.DefaultLat, DefaultLon: config.DefaultLon, MeasurementInterval: 60,
		ConfigurationRefresh: 3600, MaxDevices: 1000,
	}
	if o.downsample {
		cfg.BucketDownsampled = srv.NewBucket(t, "bfdown")
	}
	f := &fixture{srv: srv, cfg: cfg, admin: srv.Client(t)}
	f.reg = registry.New(f.admin, cfg)
	f.lambda = newFakeLambda(t, o.instances, func() *Worker {
		c := influx.New(o.workerURL, srv.Token, srv.Org, influx.Options{})
		t.Cleanup(c.Close)
		w := &Worker{Influx: c, Bucket: cfg.Bucket, Gen: home}
		if o.downsample {
			w.DownsampledBucket = cfg.BucketDownsampled
		}
		return w
	})
	f.svc = &Service{
		Devices:      RegistryDevices{R: f.reg},
		Planner:      &Planner{Influx: f.admin, Bucket: cfg.Bucket},
		Dispatcher:   f.lambda,
		ChunkMinutes: o.chunkMinutes,
		MaxDevices:   cfg.MaxDevices,
		Now:          func() time.Time { return fixedNow },
	}
	f.h = api.Handler(f.svc.Handler())
	return f
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
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		as, _ := f.admin.FindAuthorizations(ctx, registry.Description(id))
		for _, a := range as {
			_ = f.admin.DeleteAuthorization(ctx, a.ID)
		}
	})
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
