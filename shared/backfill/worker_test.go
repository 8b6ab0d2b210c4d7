package backfill

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/iot-center/iot-center-serverless/internal/devstack"
	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/schema"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
	"github.com/iot-center/iot-center-serverless/shared/setup"
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

// TestCoverageWhenInfluxDown answers 503 JSON when InfluxDB is unreachable (the job routes do not read it: a job is
// recorded in the state table and its plan task waits for InfluxDB on the queue).
func TestCoverageWhenInfluxDown(t *testing.T) {
	f := newFixture(t, influxtest.Shared(t), fixtureOpts{paused: true})
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dead := influx.New(fmt.Sprintf("http://127.0.0.1:%d", port), "x", "org", influx.Options{})
	defer dead.Close()
	f.svc.Planner = &Planner{Influx: dead, Bucket: f.cfg.Bucket}
	for _, path := range []string{"/api/write-missing", "/api/devices/" + f.register(t, "down") + "/write-missing"} {
		status, body := f.do(t, "GET", path, "")
		if status != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(body["error"]), "unavailable") {
			t.Errorf("GET %s with InfluxDB down: %d %v, want 503", path, status, body)
		}
	}
}

// refusingSQS stands in for SQS throttling every send (moto cannot be made to refuse).
type refusingSQS struct{ SQSAPI }

func (refusingSQS) SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	return nil, fmt.Errorf("RequestThrottled: Rate exceeded")
}

// TestPlanWhenQueueFails: the job cannot be queued: 503 without the raw cause, and the claim is released, so asking
// again (the queue back) starts the job.
func TestPlanWhenQueueFails(t *testing.T) {
	f := newFixture(t, influxtest.Shared(t), fixtureOpts{})
	id := f.register(t, "throttled")
	working := f.svc.Queue
	f.svc.Queue = &SQSQueue{Client: refusingSQS{}, URL: f.queue.URL}
	status, body := f.do(t, "POST", "/api/devices/"+id+"/write-missing", "")
	if status != http.StatusServiceUnavailable || strings.Contains(fmt.Sprint(body), "Rate exceeded") {
		t.Errorf("plan with SQS throttling: %d %v, want 503 without the raw cause", status, body)
	}
	f.svc.Queue = working
	status, job, _ := f.post(t, "/api/devices/"+id+"/write-missing", "")
	if status != http.StatusAccepted {
		t.Fatalf("plan after SQS recovered: %d %+v, want 202", status, job)
	}
	f.wait(t, job.ID)
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

func TestSplitHours(t *testing.T) {
	h := func(hours int64) time.Time { return time.Unix(hours*3600, 0).UTC() }
	tests := []struct {
		name          string
		ranges, clean []Range
		full          string
		partial       []Window
	}{
		{"inside one hour", []Range{{600 + 15, 600 + 30}}, nil, "[]", []Window{{h(10), h(11)}}},
		{"exactly one hour", []Range{{600, 660}}, nil, "[{10 [[600 660]]}]", nil},
		{"one hour from two ranges", []Range{{600, 630}, {630, 660}}, nil, "[{10 [[600 630] [630 660]]}]", nil},
		{"hour with a hole", []Range{{600, 629}, {630, 660}}, nil, "[]", []Window{{h(10), h(11)}}},
		{"partial, full, partial", []Range{{630, 750}}, nil, "[{11 [[660 720]]}]", []Window{{h(10), h(11)}, {h(12), h(13)}}},
		{"adjacent partial hours merge", []Range{{630, 640}, {665, 670}}, nil, "[]", []Window{{h(10), h(12)}}},
		{"clean lead completes the hour", []Range{{615, 700}}, []Range{{600, 615}}, "[{10 [[615 660]]}]", []Window{{h(11), h(12)}}},
		{"clean lead with a hole", []Range{{616, 660}}, []Range{{600, 615}}, "[]", []Window{{h(10), h(11)}}},
		{"clean elsewhere is ignored", []Range{{616, 620}}, []Range{{0, 50}}, "[]", []Window{{h(10), h(11)}}},
	}
	for _, tt := range tests {
		full, partial := splitHours(tt.ranges, tt.clean)
		if got := fmt.Sprint(full); got != tt.full && !(tt.full == "[]" && len(full) == 0) {
			t.Errorf("%s: full = %v, want %s", tt.name, got, tt.full)
		}
		if fmt.Sprint(partial) != fmt.Sprint(tt.partial) {
			t.Errorf("%s: partial = %v, want %v", tt.name, partial, tt.partial)
		}
	}
}

// TestWorkerDownsamplesWhatItWrote: the hours a chunk wrote get their hourly aggregates, counting exactly the
// points written, except the hour in progress, which the hourly task aggregates.
func TestWorkerDownsamplesWhatItWrote(t *testing.T) {
	srv := influxtest.Shared(t)
	c := srv.Client(t)
	src, dst := srv.NewBucket(t, "dsrc"), srv.NewBucket(t, "ddst")
	w := &Worker{Influx: c, Bucket: src, Gen: home, DownsampledBucket: dst}
	hourStart := fixedNow.Truncate(time.Hour).Add(-5 * time.Hour)
	// "now" is in the chunk's last hour: that hour is left to the hourly task
	w.Clock = func() time.Time { return hourStart.Add(4*time.Hour + 30*time.Minute) }
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hour := fixedNow.Truncate(time.Hour).Add(-5*time.Hour).Unix() / 60
	// 20 minutes in the first hour (read back), the whole second hour (computed by the worker), 10 minutes three
	// hours later (the hour in progress: left to the task)
	chunk := Chunk{DeviceID: "ds-dev", Ranges: []Range{{hour + 40, hour + 120}, {hour + 240, hour + 250}}}
	if err := w.Handle(ctx, chunk); err != nil {
		t.Fatal(err)
	}
	got := map[int64]float64{}
	err := c.QueryRows(ctx, `from(bucket: bucket) |> range(start: 0)
  |> filter(fn: (r) => r._measurement == measurement and r._field == "Temperature" and r.agg == "count" and r.clientId == "ds-dev")`,
		influx.Extern{"bucket": dst, "measurement": schema.DownsampledMeasurement}, func(v map[string]any) error {
			got[(v["_time"].(time.Time).Unix()/60-hour)/60] = v["_value"].(float64)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]float64{0: 20, 1: 60}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hourly counts %v, want %v (hour index -> points)", got, want)
	}
}

// sensorTagValues is the sensor tag values of the seed's points (as downsampledRows prints them).
func sensorTagValues() []string {
	var out []string
	for _, tag := range schema.SensorTags {
		out = append(out, tag[1])
	}
	return out
}

// downsampledRows reads every hourly aggregate of a bucket as "time agg field clientId [sensor tags] generated=…" ->
// value.
func downsampledRows(t *testing.T, c *influx.Client, bucket string) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows := map[string]float64{}
	err := c.QueryRows(ctx, `from(bucket: bucket) |> range(start: 0) |> filter(fn: (r) => r._measurement == measurement)`,
		influx.Extern{"bucket": bucket, "measurement": schema.DownsampledMeasurement}, func(v map[string]any) error {
			var tags []string
			for _, tag := range schema.SensorTags {
				tags = append(tags, fmt.Sprint(v[tag[0]]))
			}
			key := fmt.Sprintf("%s %s %s %s %v generated=%v", v["_time"].(time.Time).Format(time.RFC3339), v["agg"], v["_field"], v["clientId"], tags, v[schema.TagGenerated])
			rows[key] = v["_value"].(float64)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestHourlyMatchesTaskAggregation holds the worker's hourly aggregates equal to what the setup package's task Flux
// computes from the same bucket: for hours the chunk wrote entirely (computed from the generated values) and for
// hours it wrote in part next to older points of the same series (read back), with another device's data around
// that the worker must leave alone.
func TestHourlyMatchesTaskAggregation(t *testing.T) {
	srv := influxtest.Shared(t)
	c := srv.Client(t)
	src, mine, task := srv.NewBucket(t, "hsrc"), srv.NewBucket(t, "hmine"), srv.NewBucket(t, "htask")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hour := fixedNow.Truncate(time.Hour).Add(-30*time.Hour).Unix() / 60
	// older generated points of the device (an earlier backfill, another generator: other values) in hours 0 and
	// 3, points the device wrote itself in hour 0 (a series of their own, never in the generated aggregates), and
	// another device everywhere
	var lp []byte
	old, other := sensors.NewGeneratedLine(sensors.Generator{Lat: 10, Lon: 10}, "agg-dev"), sensors.NewLine(home, "other-dev")
	own := sensors.NewLine(home, "agg-dev")
	for m := hour + 10; m < hour+20; m++ {
		lp = old.Append(lp, m*60_000)
	}
	for m := hour + 20; m < hour+25; m++ {
		lp = own.Append(lp, m*60_000)
	}
	for m := hour + 200; m < hour+210; m++ {
		lp = old.Append(lp, m*60_000)
	}
	for m := hour; m < hour+240; m++ {
		lp = other.Append(lp, m*60_000)
	}
	if err := c.WriteLines(ctx, src, lp); err != nil {
		t.Fatal(err)
	}
	w := &Worker{Influx: c, Bucket: src, Gen: home, DownsampledBucket: mine}
	chunk := Chunk{DeviceID: "agg-dev", Ranges: []Range{{hour + 30, hour + 180}, {hour + 185, hour + 200}}}
	if err := w.Handle(ctx, chunk); err != nil {
		t.Fatal(err)
	}
	if err := setup.Downsample(ctx, c, src, task, time.Unix(hour*60, 0), time.Unix((hour+240)*60, 0)); err != nil {
		t.Fatal(err)
	}
	got, all := downsampledRows(t, c, mine), downsampledRows(t, c, task)
	want := map[string]float64{}
	for k, v := range all {
		if strings.Contains(k, " agg-dev ") && strings.HasSuffix(k, " generated=true") {
			want[k] = v
		}
	}
	if k := time.Unix(hour*60, 0).UTC().Format(time.RFC3339) + " count Temperature agg-dev " + fmt.Sprint(sensorTagValues()) + " generated=<nil>"; all[k] != 5 {
		t.Errorf("task aggregation of the device's own points: %s = %v, want 5 (kept apart from the generated ones)", k, all[k])
	}
	if len(want) != 4*5*7 {
		t.Fatalf("task aggregation wrote %d rows for the device, want 140 (4 hours, 5 aggregates, 7 fields)", len(want))
	}
	if len(got) != len(want) {
		t.Errorf("worker wrote %d rows, task %d", len(got), len(want))
	}
	for k, wv := range want {
		gv, ok := got[k]
		if !ok {
			t.Errorf("worker lacks %s", k)
			continue
		}
		if math.Abs(gv-wv) > 1e-9*math.Max(1, math.Abs(wv)) {
			t.Errorf("%s: worker %v, task %v", k, gv, wv)
		}
	}
	// the partial hours count the older generated points too, never the device's own
	h0 := time.Unix(hour*60, 0).UTC().Format(time.RFC3339)
	found := 0
	for k, v := range got {
		if strings.HasPrefix(k, h0+" count Temperature agg-dev") {
			found++
			if v != 40 {
				t.Errorf("%s = %v, want 40 (30 backfilled + 10 older)", k, v)
			}
		}
	}
	if found != 1 {
		t.Errorf("%d count rows for the first hour, want 1", found)
	}
}

// TestBackfillAggregatesHours: a device with nothing in a window that starts and ends inside an hour. Chunks end on
// whole hours and the first one knows the minutes before the window are empty, so every hour but the last is
// aggregated from the generated values; the last, partial hour is read back. The downsampled bucket then counts
// every backfilled minute, hour by hour.
func TestBackfillAggregatesHours(t *testing.T) {
	for _, tc := range taskSizes {
		t.Run(tc.name, func(t *testing.T) { testBackfillAggregatesHours(t, tc.minutes) })
	}
}

func testBackfillAggregatesHours(t *testing.T, taskMinutes int) {
	now := time.Date(2026, 11, 20, 12, 23, 30, 0, time.UTC)
	f := newFixture(t, influxtest.Shared(t), fixtureOpts{downsample: true, now: func() time.Time { return now }, taskMinutes: taskMinutes})
	id := f.register(t, "hours")
	status, job, _ := f.post(t, "/api/devices/"+id+"/write-missing", "")
	if status != http.StatusAccepted {
		t.Fatalf("plan %d %+v, want 202", status, job)
	}
	if job = f.wait(t, job.ID); job.Chunks != 8 {
		t.Errorf("job %+v, want 8 chunks (one per UTC day, hour-aligned)", job)
	}
	last := Window{From: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 20, 13, 0, 0, 0, time.UTC)}
	counts := map[time.Time]float64{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := f.admin.QueryRows(ctx, `from(bucket: bucket) |> range(start: 0)
  |> filter(fn: (r) => r._measurement == measurement and r._field == "Humidity" and r.agg == "count" and r.clientId == deviceId)`,
		influx.Extern{"bucket": f.cfg.BucketDownsampled, "measurement": schema.DownsampledMeasurement, "deviceId": id},
		func(v map[string]any) error {
			counts[v["_time"].(time.Time)] = v["_value"].(float64)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, c := range counts {
		sum += c
	}
	first := time.Date(2026, 11, 13, 12, 0, 0, 0, time.UTC)
	if len(counts) != 169 || sum != 10080 || counts[first] != 37 || counts[last.From] != 23 || counts[first.Add(time.Hour)] != 60 {
		t.Errorf("%d hourly counts summing to %v (first %v, last %v), want 169 hours summing to 10,080 (37 ... 60 ... 23)",
			len(counts), sum, counts[first], counts[last.From])
	}
}

func TestPlannerCleanLead(t *testing.T) {
	f := newFixture(t, influxtest.Shared(t), fixtureOpts{})
	win := LastDays(time.Date(2026, 11, 20, 12, 23, 30, 0, time.UTC), 2)
	hourStart := win.From.Truncate(time.Hour).Unix() / 60
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	empty, busy := "lead-empty", "lead-busy"
	f.writeMinutes(t, busy, home, []int64{hourStart + 5}) // before the window, in its first hour
	tests := []struct {
		id    string
		clean string
	}{
		{empty, fmt.Sprint([]Range{{hourStart, win.From.Unix() / 60}})},
		{busy, "[]"},
	}
	for _, tt := range tests {
		chunks, missing, err := f.svc.Planner.Chunks(ctx, tt.id, win, 1440)
		if err != nil {
			t.Fatal(err)
		}
		// 37 + 23×60 minutes, then 24 hours, then 23 minutes
		if missing != 2880 || len(chunks) != 3 || chunks[0].Minutes() != 1417 || chunks[2].Minutes() != 23 {
			t.Errorf("%s: %d missing in %d chunks, want 2,880 in 3 (hour-aligned: 1,417 + 1,440 + 23)", tt.id, missing, len(chunks))
			continue
		}
		if got := fmt.Sprint(chunks[0].Clean); got != tt.clean && !(tt.clean == "[]" && chunks[0].Clean == nil) {
			t.Errorf("%s: clean = %s, want %s", tt.id, got, tt.clean)
		}
		if chunks[1].Clean != nil || chunks[2].Clean != nil {
			t.Errorf("%s: later chunks have clean minutes, want none", tt.id)
		}
	}
}

// TestHandleAllBatchesAcrossChunks: several chunks of two devices go out in shared BatchLines batches, and their
// hourly aggregates (more lines than one batch holds) in batches of their own, every point and hour written once.
func TestHandleAllBatchesAcrossChunks(t *testing.T) {
	srv := influxtest.Shared(t)
	proxy := newFaultProxy(t, srv.URL, 0) // counts the write requests, fails none
	c := influx.New(proxy.srv.URL, srv.Token, srv.Org, influx.Options{})
	t.Cleanup(c.Close)
	src, dst := srv.NewBucket(t, "hsrc"), srv.NewBucket(t, "hdst")
	w := &Worker{Influx: c, Bucket: src, Gen: home, DownsampledBucket: dst}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// three devices × 15 whole days in 1-day chunks: 64,800 points (13 batches: 12 × 5,000 + 4,800), 5,400
	// aggregate lines (2 batches)
	day := fixedNow.Truncate(24*time.Hour).Unix()/60 - 20*1440
	var chunks []Chunk
	ids := []string{"batch-a", "batch-b", "batch-c"}
	for _, id := range ids {
		for d := int64(0); d < 15; d++ {
			chunks = append(chunks, Chunk{DeviceID: id, Ranges: []Range{{day + d*1440, day + (d+1)*1440}}})
		}
	}
	if err := w.HandleAll(ctx, chunks); err != nil {
		t.Fatal(err)
	}
	if got := proxy.writes.Load(); got != 15 {
		t.Errorf("%d write requests, want 15 (13 of points, 2 of aggregates)", got)
	}
	for _, id := range ids {
		var points, hours int64
		var counted float64
		err := c.QueryRows(ctx, `from(bucket: bucket) |> range(start: 0)
  |> filter(fn: (r) => r._field == "Temperature" and r.clientId == deviceId) |> count()`,
			influx.Extern{"bucket": src, "deviceId": id}, func(v map[string]any) error {
				points += v["_value"].(int64)
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		err = c.QueryRows(ctx, `from(bucket: bucket) |> range(start: 0)
  |> filter(fn: (r) => r._field == "Temperature" and r.agg == "count" and r.clientId == deviceId)`,
			influx.Extern{"bucket": dst, "deviceId": id}, func(v map[string]any) error {
				hours++
				counted += v["_value"].(float64)
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		if points != 15*1440 || hours != 15*24 || counted != 15*1440 {
			t.Errorf("%s: %d points, %d hourly counts summing to %v; want %d, %d, %d", id, points, hours, counted, 15*1440, 15*24, 15*1440)
		}
	}
}
