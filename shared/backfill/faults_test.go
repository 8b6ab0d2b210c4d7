package backfill

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
)

// faultProxy is a reverse proxy in front of influxd that answers 503 with Retry-After to the first `fail` write
// requests, then passes everything through.
type faultProxy struct {
	fail     int64
	writes   atomic.Int64
	rejected atomic.Int64
	srv      *httptest.Server
}

func newFaultProxy(t *testing.T, target string, fail int64) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{fail: fail}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/api/v2/write") && p.writes.Add(1) <= p.fail {
			p.rejected.Add(1)
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"code":"unavailable","message":"injected overload"}`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// TestBackfillThrough503 puts a proxy answering 503 + Retry-After: 1 to the first writes between the workers and
// InfluxDB: the workers wait as told and the backfill completes with nothing missing and nothing doubled.
func TestBackfillThrough503(t *testing.T) {
	srv := influxtest.Shared(t)
	proxy := newFaultProxy(t, srv.URL, 6)
	f := newFixture(t, srv, fixtureOpts{workerURL: proxy.srv.URL, instances: 3})
	id := f.register(t, "overload")
	win := LastDays(fixedNow, 7)
	start := time.Now()
	status, job, _ := f.post(t, "/api/devices/"+id+"/write-missing", "")
	if status != http.StatusAccepted {
		t.Fatalf("plan %d %+v, want 202", status, job)
	}
	if job = f.wait(t, job.ID); job.Chunks != 8 || job.PointsWritten != 10080 {
		t.Errorf("job %+v, want 10,080 points in 8 chunks (one per UTC day)", job)
	}
	if got := proxy.rejected.Load(); got != 6 {
		t.Errorf("proxy rejected %d writes, want 6", got)
	}
	// 6 rejections spread over 3 instances: each waited at least 1 s per rejection it got
	if el := time.Since(start); el < 2*time.Second {
		t.Errorf("backfill took %s, want >= 2s (Retry-After honoured)", el)
	}
	if errs := f.errs.get(); len(errs) != 0 {
		t.Errorf("tasks failed %v, want the client's retries to absorb the 503s", errs)
	}
	f.wantFilled(t, id, win)
}

// TestBackfillAcrossInfluxRestart restarts a dedicated influxd while a backfill runs: the chunk task in flight
// retries (connection refused, then success after the restart), later ones follow, and the result is complete and
// without duplicates.
func TestBackfillAcrossInfluxRestart(t *testing.T) {
	srv := influxtest.Start(t)
	f := newFixture(t, srv, fixtureOpts{instances: 1, chunkMinutes: 360})
	ids := []string{f.register(t, "restart"), f.register(t, "restart")}
	id := ids[1]
	win := LastDays(fixedNow, 7)
	stopped := make(chan struct{})
	var once sync.Once
	// the second chunk task (one per device) finds InfluxDB stopped; the test goroutine brings it back a second later
	f.before = func(n int64) {
		if n == 2 {
			once.Do(func() { srv.Stop(t); close(stopped) })
		}
	}
	status, job, _ := f.post(t, "/api/write-missing", `{"devices": ["`+ids[0]+`", "`+ids[1]+`"]}`)
	if status != http.StatusAccepted {
		t.Fatalf("plan %d %+v, want 202", status, job)
	}
	select {
	case <-stopped:
	case <-time.After(time.Minute):
		t.Fatal("the second chunk task never ran")
	}
	time.Sleep(time.Second)
	srv.Restart(t)
	// the task that met InfluxDB down failed, came back after its backoff and succeeded
	if job = f.wait(t, job.ID); job.Chunks != 2*28 || job.PointsWritten != 2*10080 || job.DevicesDone != 2 {
		t.Errorf("job %+v, want 2 devices, 20,160 points in 56 chunks", job)
	}
	f.wantFilled(t, id, win)
	// writing the whole week again changes nothing (idempotent chunks)
	w := &Worker{Influx: f.admin, Bucket: f.cfg.Bucket, Gen: home}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.Handle(ctx, Chunk{DeviceID: id, Ranges: []Range{{win.From.Unix() / 60, win.To.Unix() / 60}}}); err != nil {
		t.Fatal(err)
	}
	if n := f.countFields(t, id, win)["Temperature"]; n != 10080 {
		t.Errorf("after rewriting the week, %d points, want 10,080", n)
	}
}
