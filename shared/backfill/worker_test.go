package backfill

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/influxtest"
)

// emf decodes EMF lines into their top-level members.
func emf(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("EMF line %q: %v", l, err)
		}
		if _, ok := m["_aws"]; !ok {
			t.Errorf("EMF line %q lacks _aws", l)
		}
		lines = append(lines, m)
	}
	return lines
}

func TestWorkerMetrics(t *testing.T) {
	srv := influxtest.Shared(t)
	bucket := srv.NewBucket(t, "metrics")
	var out bytes.Buffer
	w := &Worker{Influx: srv.Client(t), Bucket: bucket, Gen: home, Metrics: &out}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base := fixedNow.Unix() / 60
	// 12,000 minutes: three batches (5,000 + 5,000 + 2,000) over two ranges
	if err := w.Handle(ctx, Chunk{DeviceID: "metrics-dev", Ranges: []Range{{base - 20000, base - 14000}, {base - 6000, base}}}); err != nil {
		t.Fatal(err)
	}
	lines := emf(t, out.String())
	if len(lines) != 1 || lines[0]["PointsWritten"] != float64(12000) || lines[0]["Function"] != "BackfillWorker" {
		t.Errorf("EMF %v, want one line with PointsWritten 12000", lines)
	}
	if _, ok := lines[0]["ChunkDuration"].(float64); !ok {
		t.Errorf("EMF %v lacks ChunkDuration", lines)
	}
}

// TestWorkerGivesUpBounded: a server that keeps answering 503 makes the chunk fail after the client's bounded
// retries, with the error returned (Lambda's async retry and dead-letter queue take it from there) and counted.
func TestWorkerGivesUpBounded(t *testing.T) {
	calls := 0
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer down.Close()
	c := influx.New(down.URL, "admin-token-secret", "org", influx.Options{
		Retry: influx.RetryPolicy{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond, MaxRetryAfter: time.Second},
	})
	defer c.Close()
	var out bytes.Buffer
	w := &Worker{Influx: c, Bucket: "b", Gen: home, Metrics: &out}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := w.Handle(ctx, Chunk{DeviceID: "gives-up", Ranges: []Range{{100, 200}}})
	if err == nil {
		t.Fatal("chunk against a server answering 503 succeeded")
	}
	if calls != 3 {
		t.Errorf("%d write attempts, want 3 (bounded)", calls)
	}
	if strings.Contains(err.Error(), "admin-token-secret") {
		t.Errorf("error %q carries the admin token", err)
	}
	lines := emf(t, out.String())
	if len(lines) != 1 || lines[0]["InfluxErrors"] != float64(1) || lines[0]["Status"] != "503" {
		t.Errorf("EMF %v, want InfluxErrors 1 with Status 503", lines)
	}
}

// TestPlanWhenInfluxDown answers 503 JSON, nothing dispatched, when InfluxDB is unreachable.
func TestPlanWhenInfluxDown(t *testing.T) {
	f := newFixture(t, influxtest.Shared(t), fixtureOpts{})
	id := f.register(t, "down")
	port, err := influxtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dead := influx.New(fmt.Sprintf("http://127.0.0.1:%d", port), "x", "org", influx.Options{})
	defer dead.Close()
	f.svc.Planner = &Planner{Influx: dead, Bucket: f.cfg.Bucket}
	for _, path := range []string{"/api/devices/" + id + "/write-missing", "/api/write-missing"} {
		status, body := f.do(t, "POST", path, "")
		if status != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(body["error"]), "unavailable") {
			t.Errorf("POST %s with InfluxDB down: %d %v, want 503", path, status, body)
		}
	}
	status, body := f.do(t, "GET", "/api/write-missing", "")
	if status != http.StatusServiceUnavailable {
		t.Errorf("coverage with InfluxDB down: %d %v, want 503", status, body)
	}
	if n := f.lambda.dispatched(); n != 0 {
		t.Errorf("%d chunks dispatched, want none", n)
	}
}

// refusingLambda is a fake of the Lambda service throttling every invoke.
type refusingLambda struct{ calls int }

func (r *refusingLambda) Dispatch(context.Context, Chunk) error {
	r.calls++
	return fmt.Errorf("TooManyRequestsException: Rate exceeded")
}

func TestPlanWhenDispatchFails(t *testing.T) {
	f := newFixture(t, influxtest.Shared(t), fixtureOpts{})
	id := f.register(t, "throttled")
	f.svc.Dispatcher = &refusingLambda{}
	status, body := f.do(t, "POST", "/api/devices/"+id+"/write-missing", "")
	if status != http.StatusServiceUnavailable || strings.Contains(fmt.Sprint(body), "Rate exceeded") {
		t.Errorf("plan with Lambda throttling: %d %v, want 503 without the raw cause", status, body)
	}
}

func TestEachTimeErrors(t *testing.T) {
	tests := []struct {
		name, csv string
		rows      int
		ok        bool
	}{
		{"two tables", "#datatype,string,long,dateTime:RFC3339\n#group,false,false,false\n#default,_result,,\n,result,table,_time\n" +
			",,0,2026-01-01T00:00:00Z\n,,0,2026-01-01T00:01:00Z\n\n#datatype,string,long,dateTime:RFC3339\n#group,false,false,false\n" +
			"#default,_result,,\n,result,table,_time\n,,1,2026-01-01T00:03:00Z\n", 3, true},
		{"empty answer", "", 0, true},
		{"error table", "#datatype,string,string\n#group,true,true\n#default,,\n,error,reference\n,boom,\n", 0, false},
		{"no time column", "#datatype,string\n#group,false\n#default,_result\n,result\n,x\n", 0, false},
		{"bad time", "#datatype,string,long,dateTime:RFC3339\n#group,false,false,false\n#default,_result,,\n,result,table,_time\n,,0,yesterday\n", 0, false},
	}
	for _, tt := range tests {
		n := 0
		err := eachTime(strings.NewReader(tt.csv), func(time.Time) error { n++; return nil })
		if (err == nil) != tt.ok || (tt.ok && n != tt.rows) {
			t.Errorf("%s: %d rows, %v; want %d rows, ok=%v", tt.name, n, err, tt.rows, tt.ok)
		}
	}
}
