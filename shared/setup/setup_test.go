package setup

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/presence"
	"github.com/iot-center/iot-center-serverless/shared/schema"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// ranOnce runs setup once with fresh options (see testOptions) within d, for a test that then looks at the result.
func ranOnce(t *testing.T, d time.Duration) (*influxtest.Server, *influx.Client, context.Context, Options, Result) {
	t.Helper()
	srv := influxtest.Shared(t)
	c := srv.Client(t)
	ctx := testCtx(t, d)
	o := testOptions(t, srv)
	res, err := Run(ctx, c, o)
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	return srv, c, ctx, o, res
}

// testOptions names unique buckets (and so a unique task and dashboard) and removes everything at the end.
func testOptions(t *testing.T, srv *influxtest.Server) Options {
	t.Helper()
	id := influxtest.RandomID(4)
	o := Options{Bucket: "data_" + id, BucketDownsampled: "ds_" + id}
	t.Cleanup(func() {
		c := influx.New(srv.URL, srv.Token, srv.Org, influx.Options{})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		full, _ := o.withDefaults()
		if tasks, err := findTasks(ctx, c, srv.OrgID, full.TaskName); err == nil {
			for _, tk := range tasks {
				_ = c.JSON(ctx, http.MethodDelete, "/api/v2/tasks/"+tk.ID, nil, nil, nil)
			}
		}
		if d, err := findDashboard(ctx, c, srv.OrgID, full.DashboardName); err == nil && d != "" {
			_ = c.JSON(ctx, http.MethodDelete, "/api/v2/dashboards/"+d, nil, nil, nil)
		}
		for _, b := range []string{o.Bucket, o.BucketDownsampled} {
			_ = c.DeleteBucket(ctx, b)
		}
	})
	return o
}

// retentionOf reads a bucket's expiry in seconds (0 = infinite).
func retentionOf(t *testing.T, c *influx.Client, id string) int64 {
	t.Helper()
	var b bucketJSON
	if err := c.JSON(testCtx(t, 10*time.Second), http.MethodGet, "/api/v2/buckets/"+id, nil, nil, &b); err != nil {
		t.Fatalf("reading bucket %s: %v", id, err)
	}
	for _, r := range b.RetentionRules {
		if r.Type == "expire" {
			return r.EverySeconds
		}
	}
	return 0
}

func TestRunTwiceIsIdempotent(t *testing.T) {
	srv, c, ctx, o, first := ranOnce(t, 2*time.Minute)
	if len(first.Created) == 0 || first.TaskID == "" || first.DashboardID == "" || len(first.BucketIDs) != 2 {
		t.Fatalf("first run: got %+v, want 2 buckets, a task, a dashboard", first)
	}
	// a fresh client (a new Lambda instance) must find, not create
	second, err := Run(ctx, srv.Client(t), o)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if len(second.Created) != 0 {
		t.Errorf("second run created %v, want nothing", second.Created)
	}
	if second.TaskID != first.TaskID || second.DashboardID != first.DashboardID {
		t.Errorf("second run: task %s dashboard %s, want %s %s", second.TaskID, second.DashboardID, first.TaskID, first.DashboardID)
	}
	for name, id := range first.BucketIDs {
		if second.BucketIDs[name] != id {
			t.Errorf("bucket %s: got id %s, want %s", name, second.BucketIDs[name], id)
		}
	}
	full, _ := o.withDefaults()
	tasks, err := findTasks(ctx, c, srv.OrgID, full.TaskName)
	if err != nil || len(tasks) != 1 || tasks[0].Status != "active" {
		t.Errorf("tasks named %q: got %+v (%v), want exactly one active", full.TaskName, tasks, err)
	}
	var d dashboardJSON
	if err := c.JSON(ctx, http.MethodGet, "/api/v2/dashboards/"+first.DashboardID, nil, nil, &d); err != nil || len(d.Cells) != len(DefaultFields) {
		t.Errorf("dashboard cells: got %d (%v), want %d", len(d.Cells), err, len(DefaultFields))
	}
	for _, tc := range []struct {
		bucket string
		want   int64
	}{{o.Bucket, 30 * 86400}, {o.BucketDownsampled, 400 * 86400}} {
		if got := retentionOf(t, c, first.BucketIDs[tc.bucket]); got != tc.want {
			t.Errorf("retention of %s: got %ds, want %ds", tc.bucket, got, tc.want)
		}
	}
}

func TestRunUpdatesRetentionAndRepairsTask(t *testing.T) {
	srv, c, ctx, o, first := ranOnce(t, 2*time.Minute)
	// someone disabled the task and a concurrent setup left a duplicate
	if err := c.JSON(ctx, http.MethodPatch, "/api/v2/tasks/"+first.TaskID, nil, map[string]any{"status": "inactive"}, nil); err != nil {
		t.Fatal(err)
	}
	full, _ := o.withDefaults()
	dup := map[string]any{"orgID": srv.OrgID, "flux": TaskFlux(full.TaskName, o.Bucket, o.BucketDownsampled), "status": "active"}
	if err := c.JSON(ctx, http.MethodPost, "/api/v2/tasks", nil, dup, nil); err != nil {
		t.Fatal(err)
	}
	o.DataRetention = 7 * 24 * time.Hour
	o.DownsampledRetention = 3 * time.Hour // from 400 days (7-day shard groups) to less than one shard group
	second, err := Run(ctx, c, o)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if got := retentionOf(t, c, second.BucketIDs[o.Bucket]); got != 7*86400 {
		t.Errorf("data retention: got %ds, want %ds", got, 7*86400)
	}
	if got := retentionOf(t, c, second.BucketIDs[o.BucketDownsampled]); got != 3*3600 {
		t.Errorf("downsampled retention: got %ds, want %ds", got, 3*3600)
	}
	tasks, err := findTasks(ctx, c, srv.OrgID, full.TaskName)
	if err != nil || len(tasks) != 1 || tasks[0].ID != first.TaskID || tasks[0].Status != "active" {
		t.Errorf("tasks: got %+v (%v), want only %s, active", tasks, err, first.TaskID)
	}
}

// point is one downsampled value read back.
type point struct {
	time  time.Time
	value float64
	tags  map[string]string
}

// readDownsampled returns the downsampled points of one field by agg.
func readDownsampled(t *testing.T, c *influx.Client, bucket, field string) map[string][]point {
	t.Helper()
	flux := `from(bucket: b) |> range(start: -30d) |> filter(fn: (r) => r._measurement == "environment_1h" and r._field == f)`
	out := map[string][]point{}
	err := c.QueryRows(testCtx(t, 30*time.Second), flux, influx.Extern{"b": bucket, "f": field}, func(v map[string]any) error {
		p := point{tags: map[string]string{}}
		p.time, _ = v["_time"].(time.Time)
		var ok bool
		if p.value, ok = v["_value"].(float64); !ok {
			return fmt.Errorf("_value is %T, want float64", v["_value"])
		}
		for _, k := range []string{"clientId", "TemperatureSensor"} {
			p.tags[k], _ = v[k].(string)
		}
		agg, _ := v["agg"].(string)
		out[agg] = append(out[agg], p)
		return nil
	})
	if err != nil {
		t.Fatalf("reading %s: %v", bucket, err)
	}
	return out
}

// writeHour writes Temperature 20, 21, 22, 23 (plus an integer and a string field) at 10-minute steps of the hour
// starting at hour.
func writeHour(t *testing.T, c *influx.Client, bucket, device string, hour time.Time) {
	t.Helper()
	var lp strings.Builder
	for i := 0; i < 4; i++ {
		ts := hour.Add(time.Duration(5+10*i) * time.Minute)
		fmt.Fprintf(&lp, "environment,clientId=%s,TemperatureSensor=virtual_TemperatureSensor Temperature=%d.0,CO2=%di,Note=\"n%d\" %d\n",
			device, 20+i, 400+i, i, ts.UnixNano())
	}
	if err := c.WriteLines(testCtx(t, 30*time.Second), bucket, []byte(lp.String())); err != nil {
		t.Fatalf("writing: %v", err)
	}
}

// checkHour asserts the five aggregates of writeHour's Temperature at hour.
func checkHour(t *testing.T, got map[string][]point, device string, hour time.Time) {
	t.Helper()
	want := map[string]float64{"count": 4, "mean": 21.5, "min": 20, "max": 23, "last": 23}
	for agg, v := range want {
		var found bool
		for _, p := range got[agg] {
			if !p.time.Equal(hour) {
				continue
			}
			found = true
			if math.Abs(p.value-v) > 1e-9 {
				t.Errorf("%s at %s: got %v, want %v", agg, hour, p.value, v)
			}
			if p.tags["clientId"] != device || p.tags["TemperatureSensor"] != "virtual_TemperatureSensor" {
				t.Errorf("%s: tags got %v, want the source's", agg, p.tags)
			}
		}
		if !found {
			t.Errorf("%s: no point at the hour's start %s, got %+v", agg, hour, got[agg])
		}
	}
	for agg := range got {
		if _, ok := want[agg]; !ok {
			t.Errorf("unexpected agg tag %q", agg)
		}
	}
}

func TestTaskRunProducesDownsampledPoints(t *testing.T) {
	_, c, ctx, o, res := ranOnce(t, 3*time.Minute)
	hour := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	writeHour(t, c, o.Bucket, "dev-task", hour)

	var run struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if err := c.JSON(ctx, http.MethodPost, "/api/v2/tasks/"+url.PathEscape(res.TaskID)+"/runs", nil, map[string]any{}, &run); err != nil {
		t.Fatalf("starting a run: %v", err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for run.Status != "success" {
		if run.Status == "failed" || run.Status == "canceled" {
			var logs any
			_ = c.JSON(ctx, http.MethodGet, "/api/v2/tasks/"+res.TaskID+"/runs/"+run.ID+"/logs", nil, nil, &logs)
			t.Fatalf("task run %s: %s, logs %v", run.ID, run.Status, logs)
		}
		if time.Now().After(deadline) {
			t.Fatalf("task run %s still %q after 90s", run.ID, run.Status)
		}
		time.Sleep(200 * time.Millisecond)
		// a run moving from the in-progress list to the run log is briefly not found: poll on
		if err := c.JSON(ctx, http.MethodGet, "/api/v2/tasks/"+res.TaskID+"/runs/"+run.ID, nil, nil, &run); err != nil &&
			influx.StatusOf(err) != http.StatusNotFound {
			t.Fatalf("reading run: %v", err)
		}
	}
	checkHour(t, readDownsampled(t, c, o.BucketDownsampled, "Temperature"), "dev-task", hour)
	if co2 := readDownsampled(t, c, o.BucketDownsampled, "CO2"); len(co2["mean"]) != 1 || co2["mean"][0].value != 401.5 {
		t.Errorf("integer field CO2 mean: got %+v, want 401.5", co2["mean"])
	}
	if notes := readDownsampled(t, c, o.BucketDownsampled, "Note"); len(notes) != 0 {
		t.Errorf("string field Note: got %v, want no aggregates", notes)
	}
}

func TestDownsampleBackfilledRange(t *testing.T) {
	srv := influxtest.Shared(t)
	c := srv.Client(t)
	ctx := testCtx(t, time.Minute)
	src, dst := srv.NewBucket(t, "bf_src"), srv.NewBucket(t, "bf_dst")
	hour := time.Now().UTC().Truncate(time.Hour).Add(-72 * time.Hour)
	writeHour(t, c, src, "dev-backfill", hour)
	// an unaligned range inside the hour must still aggregate the whole hour
	if err := Downsample(ctx, c, src, dst, hour.Add(17*time.Minute), hour.Add(31*time.Minute)); err != nil {
		t.Fatal(err)
	}
	checkHour(t, readDownsampled(t, c, dst, "Temperature"), "dev-backfill", hour)
	// running it again changes nothing (same series and times overwrite)
	if err := Downsample(ctx, c, src, dst, hour, hour.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got := readDownsampled(t, c, dst, "Temperature")
	if len(got["count"]) != 1 {
		t.Errorf("after a second run: got %d count points, want 1", len(got["count"]))
	}
}

func TestDownsampleRejectsBadRanges(t *testing.T) {
	c := influx.New("http://127.0.0.1:1", "x", "o", influx.Options{})
	now := time.Now()
	for _, tc := range []struct {
		name        string
		start, stop time.Time
	}{
		{"empty", now, now},
		{"reversed", now, now.Add(-time.Hour)},
		{"too long", now.Add(-MaxDownsampleRange - time.Hour), now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Downsample(context.Background(), c, "a", "b", tc.start, tc.stop); err == nil {
				t.Errorf("got nil, want an error")
			}
		})
	}
}

func TestDownsampleExternWidensToHours(t *testing.T) {
	h := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name                string
		start, stop         time.Time
		wantStart, wantStop time.Time
	}{
		{"aligned", h, h.Add(2 * time.Hour), h, h.Add(2 * time.Hour)},
		{"unaligned", h.Add(10 * time.Minute), h.Add(70 * time.Minute), h, h.Add(2 * time.Hour)},
		{"zone", h.In(time.FixedZone("x", 5400)), h.Add(time.Hour).In(time.FixedZone("x", 5400)), h, h.Add(time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := DownsampleExtern("s", "d", tc.start, tc.stop)
			if got := e["downsampleStart"].(time.Time); !got.Equal(tc.wantStart) {
				t.Errorf("start: got %s, want %s", got, tc.wantStart)
			}
			if got := e["downsampleStop"].(time.Time); !got.Equal(tc.wantStop) {
				t.Errorf("stop: got %s, want %s", got, tc.wantStop)
			}
		})
	}
}

func TestRunRefusesWeakTokens(t *testing.T) {
	srv := influxtest.Shared(t)
	admin := srv.Client(t)
	ctx := testCtx(t, time.Minute)
	// a token that can read one bucket only
	roBucket, err := admin.BucketID(ctx, srv.NewBucket(t, "ro"))
	if err != nil {
		t.Fatal(err)
	}
	ro, err := admin.CreateBucketAuthorization(ctx, "setup test read-only", roBucket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.DeleteAuthorization(context.Background(), ro.ID) })
	for _, tc := range []struct {
		name, token, want string
	}{
		{"invalid token", "not-a-token-" + influxtest.RandomID(8), "not valid"},
		{"bucket-scoped token", ro.Token, "all-access"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions(t, srv)
			c := influx.New(srv.URL, tc.token, srv.Org, influx.Options{})
			defer c.Close()
			_, err := Run(ctx, c, o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), tc.token) {
				t.Errorf("the error carries the token: %v", err)
			}
			if _, err := admin.BucketID(ctx, o.Bucket); err == nil {
				t.Errorf("bucket %s was created with a refused token", o.Bucket)
			}
		})
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"missing name", Options{Bucket: "a"}},
		{"same downsampled", Options{Bucket: "a", BucketDownsampled: "a"}},
		{"short retention", Options{Bucket: "a", BucketDownsampled: "c", DataRetention: time.Minute}},
		{"huge retention", Options{Bucket: "a", BucketDownsampled: "c", DownsampledRetention: 2 * MaxRetention}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.o.withDefaults(); err == nil {
				t.Errorf("got nil, want an error")
			}
		})
	}
	o, err := Options{Bucket: "a", BucketDownsampled: "c"}.withDefaults()
	if err != nil || o.DataRetention != DefaultDataRetention || o.DownsampledRetention != DefaultDownsampledRetention {
		t.Errorf("defaults: got %+v %v", o, err)
	}
}

func TestFluxStringQuotes(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:       `"plain"`,
		`a"b`:         `"a\"b"`,
		`back\slash`:  `"back\\slash"`,
		"${x}":        `"\${x}"`,
		"line\nbreak": `"line\nbreak"`,
	} {
		if got := fluxString(in); got != want {
			t.Errorf("fluxString(%q): got %s, want %s", in, got, want)
		}
	}
	flux := TaskFlux(`name "with" quotes`, `src"bucket`, "dst")
	if !strings.Contains(flux, `sourceBucket = "src\"bucket"`) || !strings.Contains(flux, `every: 1h`) {
		t.Errorf("task flux not quoted as expected:\n%s", flux)
	}
}

// TestDownsampleIgnoresDigest: the write gateway's presence digest (string fields in the data bucket) is neither
// aggregated nor copied into the downsampled bucket.
func TestDownsampleIgnoresDigest(t *testing.T) {
	srv := influxtest.Shared(t)
	c := srv.Client(t)
	ctx := testCtx(t, time.Minute)
	src, dst := srv.NewBucket(t, "dg_src"), srv.NewBucket(t, "dg_dst")
	hour := time.Now().UTC().Truncate(time.Hour).Add(-24 * time.Hour)
	writeHour(t, c, src, "dev-digest", hour)
	rec := presence.NewRecorder(time.Minute, 0)
	var lp []byte
	for i := range 3 {
		at := hour.Add(time.Duration(10+20*i) * time.Minute)
		var b presence.Batch
		b.Add(at, 50.1, 14.4)
		rec.Note("dev-digest", b, at)
		f := rec.Take(at)
		if f == nil {
			t.Fatalf("no flush at %v", at)
		}
		f.Done(nil)
		lp = append(lp, f.Lines...)
	}
	if err := c.WriteLines(ctx, src, lp); err != nil {
		t.Fatal(err)
	}
	if err := Downsample(ctx, c, src, dst, hour, hour.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	checkHour(t, readDownsampled(t, c, dst, "Temperature"), "dev-digest", hour)
	measurements := map[string]int{}
	err := c.QueryRows(ctx, `from(bucket: b) |> range(start: 0)`, influx.Extern{"b": dst}, func(v map[string]any) error {
		measurements[fmt.Sprint(v["_measurement"], "/", v["_field"])]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for m := range measurements {
		if !strings.HasPrefix(m, schema.DownsampledMeasurement+"/") || strings.HasSuffix(m, "/"+presence.Field) {
			t.Errorf("downsampled bucket holds %s, want only %s without the digest's field", m, schema.DownsampledMeasurement)
		}
	}
	if len(measurements) == 0 {
		t.Error("downsampled bucket empty, want the hour's aggregates")
	}
}
