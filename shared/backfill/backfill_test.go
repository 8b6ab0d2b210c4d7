package backfill

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/schema"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
)

var fields = []string{"CO2", "Humidity", "Lat", "Lon", "Pressure", "TVOC", "Temperature"}

// deleteRandom deletes about frac of the window's minutes of the device, in random runs of 1..15 minutes, through
// the delete API, and returns which minutes are gone.
func (f *fixture) deleteRandom(t testing.TB, id string, w Window, frac float64, seed uint64) []bool {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	n := int(w.Minutes())
	gone := make([]bool, n)
	want, count := int(float64(n)*frac), 0
	for i := 0; count < want && i < 10*n; i++ {
		start, length := rng.IntN(n), 1+rng.IntN(15)
		for m := start; m < min(n, start+length) && count < want; m++ {
			if !gone[m] {
				gone[m] = true
				count++
			}
		}
	}
	pred, err := influx.Predicate("clientId", id)
	if err != nil {
		t.Fatal(err)
	}
	gaps, missing := gapsOf(w, invert(gone))
	if int(missing) != want {
		t.Fatalf("picked %d minutes, want %d", missing, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, g := range gaps {
		// the delete API's stop is inclusive: stop just before the next minute
		start, stop := time.Unix(g[0]*60, 0), time.Unix(g[1]*60, 0).Add(-time.Nanosecond)
		if err := f.admin.Delete(ctx, f.cfg.Bucket, start, stop, pred); err != nil {
			t.Fatalf("deleting: %v", err)
		}
	}
	return gone
}

func invert(b []bool) []bool {
	out := make([]bool, len(b))
	for i, v := range b {
		out[i] = !v
	}
	return out
}

// TestWriteMissingFillsOnlyGaps is the main story: 10% of a device's minutes deleted at random,
// write-missing, then 100% coverage, exactly 10,080 points per field, and the pre-existing points untouched.
func TestWriteMissingFillsOnlyGaps(t *testing.T) {
	f := newFixture(t, influxtest.Shared(t), fixtureOpts{})
	id := f.register(t, "gaps")
	win := LastDays(fixedNow, 7)
	// pre-existing points come from another generator (another home position), so they are recognisable later
	old := sensors.Generator{Lat: 10, Lon: 10}
	f.writeMinutes(t, id, old, minutesOf(win))
	gone := f.deleteRandom(t, id, win, 0.10, 1)
	if got := f.countFields(t, id, win)["Temperature"]; got != 10080-1008 {
		t.Fatalf("after deleting, %d Temperature points, want %d", got, 10080-1008)
	}

	status, job, loc := f.post(t, "/api/devices/"+id+"/write-missing", "")
	if status != http.StatusAccepted || job.State != StatePlanning || loc != JobsPath+job.ID {
		t.Fatalf("plan answered %d %+v (Location %q), want 202, a planning job and its Location", status, job, loc)
	}
	if !job.From.Equal(win.From) || !job.To.Equal(win.To) || job.AllDevices || job.Devices != 1 {
		t.Errorf("job %+v, want one device and window %v", job, win)
	}
	done := f.wait(t, job.ID)
	if done.PointsPlanned != 1008 || done.PointsWritten != 1008 || done.Devices != 1 || done.DevicesDone != 1 ||
		done.Chunks < 1 || done.Chunks > 8 || done.ChunksDone != done.Chunks || done.ChunksFailed != 0 {
		t.Errorf("job ended %+v, want 1,008 points planned and written in 1..8 chunks (one per UTC day at most)", done)
	}
	// the job route answers the same
	status, got := f.do(t, "GET", loc, "")
	if status != http.StatusOK || got["state"] != StateDone || num(t, got["pointsWritten"]) != 1008 {
		t.Errorf("GET %s: %d %v, want the done job", loc, status, got)
	}

	f.wantFilled(t, id, win)

	// each minute: deleted ones hold the worker's values, the others still the old generator's
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seed := sensors.SeedOf(id)
	wrong := 0
	err := f.admin.QueryRows(ctx, `from(bucket: bucket) |> range(start: start, stop: stop)
  |> filter(fn: (r) => r._measurement == "environment" and r.clientId == deviceId and (r._field == "Lat" or r._field == "Temperature"))`,
		influx.Extern{"bucket": f.cfg.Bucket, "start": win.From, "stop": win.To, "deviceId": id},
		func(v map[string]any) error {
			tm := v["_time"].(time.Time)
			i := (tm.Unix() - win.From.Unix()) / 60
			g := old
			if gone[i] {
				g = home
			}
			want := g.At(seed, tm.UnixMilli())
			got := v["_value"].(float64)
			if w := map[string]float64{"Lat": want.Lat, "Temperature": want.Temperature}[v["_field"].(string)]; got != w {
				wrong++
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if wrong != 0 {
		t.Errorf("%d values differ from what the pre-existing or backfilled point should hold", wrong)
	}

	// nothing left: a new job (the first one ended) that plans nothing and is done at once
	before, _ := f.mapping.Stats()
	status, again, _ := f.post(t, "/api/devices/"+id+"/write-missing", `{"days": 7}`)
	if status != http.StatusAccepted || again.ID == job.ID {
		t.Fatalf("second plan %d %+v, want 202 and a new job", status, again)
	}
	again = f.wait(t, again.ID)
	if again.PointsPlanned != 0 || again.Chunks != 0 || again.DevicesDone != 1 {
		t.Errorf("second job %+v, want nothing planned", again)
	}
	if n, _ := f.mapping.Stats(); n-before != 2 {
		t.Errorf("second job ran %d tasks, want 2 (plan and one batch, no chunk)", n-before)
	}
}

func TestPlanRequests(t *testing.T) {
	f := newFixture(t, influxtest.Shared(t), fixtureOpts{})
	id := f.register(t, "req")
	tests := []struct {
		name, method, path, body string
		status                   int
		errHas                   string
	}{
		{"unregistered device", "POST", "/api/devices/nobody-here/write-missing", "", 404, "not registered"},
		{"bad id", "POST", "/api/devices/bad%20id/write-missing", "", 400, "deviceId"},
		{"flux in id", "POST", "/api/devices/x%22)%7C%3Edrop()/write-missing", "", 400, "deviceId"},
		{"days 0", "POST", "/api/devices/" + id + "/write-missing", `{"days": 0}`, 400, "days"},
		{"days 31", "POST", "/api/devices/" + id + "/write-missing", `{"days": 31}`, 400, "days"},
		{"days text", "POST", "/api/devices/" + id + "/write-missing", `{"days": "7"}`, 400, "wrong type"},
		{"unknown field", "POST", "/api/devices/" + id + "/write-missing", `{"dayz": 7}`, 400, "not valid JSON"},
		{"devices on device route", "POST", "/api/devices/" + id + "/write-missing", `{"devices": ["a"]}`, 400, "devices"},
		{"not JSON", "POST", "/api/devices/" + id + "/write-missing", `days=7`, 400, "not valid JSON"},
		{"two objects", "POST", "/api/devices/" + id + "/write-missing", `{} {}`, 400, "single"},
		{"unknown in list", "POST", "/api/write-missing", `{"devices": ["` + id + `", "ghost-1"]}`, 404, "ghost-1"},
		{"bad id in list", "POST", "/api/write-missing", `{"devices": ["` + id + `", "no way"]}`, 400, "deviceId"},
		{"empty list", "POST", "/api/write-missing", `{"devices": []}`, 400, "devices"},
		{"coverage bad from", "GET", "/api/devices/" + id + "/write-missing?from=x&to=y", "", 400, "from"},
		{"coverage half window", "GET", "/api/write-missing?from=2026-01-01T00:00:00Z", "", 400, "both"},
		{"coverage 40 days", "GET", "/api/write-missing?from=2026-01-01T00:00:00Z&to=2026-02-10T00:00:00Z", "", 400, "30"},
		{"coverage unregistered", "GET", "/api/devices/ghost-2/write-missing", "", 404, "not registered"},
		{"coverage unknown parameter", "GET", "/api/write-missing?fro=2026-01-01T00:00:00Z", "", 400, "unknown"},
		{"coverage hostile parameter", "GET", "/api/write-missing?%22%29%7C%3E=1", "", 400, "unknown"},
		{"coverage twice", "GET", "/api/write-missing?from=2026-01-01T00:00:00Z&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z", "", 400, "once"},
		{"coverage bad escape", "GET", "/api/write-missing?from=%zz", "", 400, "malformed"},
		{"plan with a parameter", "POST", "/api/devices/" + id + "/write-missing?days=7", "", 400, "unknown"},
		{"plan all with a parameter", "POST", "/api/write-missing?devices=a", "", 400, "unknown"},
		{"job bad id", "GET", "/api/write-missing/jobs/nope", "", 400, "jobId"},
		{"job unknown", "GET", "/api/write-missing/jobs/0123456789abcdef-0123456789ab", "", 404, "not found"},
		{"job id too long", "GET", "/api/write-missing/jobs/0123456789abcdef-0123456789abc", "", 400, "jobId"},
		{"job with a parameter", "GET", "/api/write-missing/jobs/0123456789abcdef-0123456789ab?x=1", "", 400, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := f.do(t, tt.method, tt.path, tt.body)
			if status != tt.status {
				t.Errorf("status %d %v, want %d", status, body, tt.status)
			}
			if msg := fmt.Sprint(body["error"]); !strings.Contains(msg, tt.errHas) {
				t.Errorf("error %q, want it to mention %q", msg, tt.errHas)
			}
		})
	}
	if n := f.queueDepth(t); n != 0 {
		t.Errorf("refused requests queued %d tasks, want none", n)
	}
	if n, _ := f.mapping.Stats(); n != 0 {
		t.Errorf("refused requests ran %d tasks, want none", n)
	}
}

// TestPlanAllAndCoverageAll plans every registered device in one request, with edge cases for the gap query:
// a device with one missing minute, one with points off the whole minute (a real device's clock), one empty. It
// runs with one chunk per task and with the worker's default task size (several devices' chunks in a task: one
// gap query and shared write batches for all of them).
func TestPlanAllAndCoverageAll(t *testing.T) {
	for _, tc := range taskSizes {
		t.Run(tc.name, func(t *testing.T) { testPlanAllAndCoverageAll(t, tc.minutes) })
	}
}

// taskSizes are the chunk task sizes the end-to-end tests run with.
var taskSizes = []struct {
	name    string
	minutes int
}{{"one chunk per task", 1}, {"default task size", DefaultTaskMinutes}}

func testPlanAllAndCoverageAll(t *testing.T, taskMinutes int) {
	f := newFixture(t, influxtest.Shared(t), fixtureOpts{chunkMinutes: 1440, taskMinutes: taskMinutes})
	win := LastDays(fixedNow, 7)
	one, offMinute := f.register(t, "one"), f.register(t, "off")
	f.register(t, "empty")
	all := minutesOf(win)
	f.writeMinutes(t, one, home, append(append([]int64{}, all[:5000]...), all[5001:]...))
	// a device whose points land 37 s into each minute: every minute counts as present
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var lp []byte
	line := sensors.NewLine(home, offMinute)
	for _, m := range all {
		lp = line.Append(lp, m*60_000+37_000)
	}
	if err := f.admin.WriteLines(ctx, f.cfg.Bucket, lp); err != nil {
		t.Fatal(err)
	}

	// a key in the URL is refused (keys travel only in the Authorization header)
	if status, body := f.do(t, "GET", "/api/write-missing?key=operator-key", ""); status != http.StatusBadRequest {
		t.Errorf("coverage with ?key=: got %d %v, want 400", status, body)
	}
	status, cov := f.do(t, "GET", "/api/write-missing", "")
	if status != 200 || num(t, cov["expected"]) != 3*10080 || num(t, cov["present"]) != 2*10080-1 {
		t.Fatalf("coverage before %d %v, want present %d of %d", status, cov, 2*10080-1, 3*10080)
	}
	if p := num(t, cov["percent"]); p >= 66.67 || p < 66.66 {
		t.Errorf("percent = %v, want 66.66 (floored)", p)
	}

	status, job, _ := f.post(t, "/api/write-missing", "")
	if status != http.StatusAccepted || !job.AllDevices {
		t.Fatalf("plan all %d %+v, want 202 and a job for every device", status, job)
	}
	job = f.wait(t, job.ID)
	// one: 1 missing minute, 1 chunk; off-minute: complete; empty: 10,080 minutes over 8 UTC days, 8 chunks
	if job.PointsPlanned != 10081 || job.PointsWritten != 10081 || job.Chunks != 9 || job.Devices != 3 || job.DevicesDone != 3 {
		t.Errorf("plan all ended %+v, want 10,081 points in 9 chunks over 3 devices", job)
	}
	status, cov = f.do(t, "GET", fmt.Sprintf("/api/write-missing?from=%s&to=%s", win.From.Format(time.RFC3339), win.To.Format(time.RFC3339)), "")
	if status != 200 || num(t, cov["percent"]) != 100 || num(t, cov["missing"]) != 0 {
		t.Errorf("coverage after %d %v, want 100%%", status, cov)
	}
	// the off-minute device got nothing written: still exactly its own 10,080 points
	if got := f.countFields(t, offMinute, win)["Temperature"]; got != 10080 {
		t.Errorf("off-minute device has %d points, want its own 10,080 only", got)
	}

	// an explicit list plans only those devices
	status, job, _ = f.post(t, "/api/write-missing", `{"devices": ["`+one+`", "`+one+`"], "days": 30}`)
	if status != http.StatusAccepted || job.Devices != 1 || job.AllDevices {
		t.Fatalf("plan list %d %+v, want 202 for one device", status, job)
	}
	// 30 days: 23 days before the backfilled week are empty
	if job = f.wait(t, job.ID); job.PointsPlanned != 23*1440 || job.PointsWritten != 23*1440 {
		t.Errorf("30-day job %+v, want %d points planned and written", job, 23*1440)
	}
	if got := f.countFields(t, one, LastDays(fixedNow, 30))["TVOC"]; got != 30*1440 {
		t.Errorf("after 30 days backfill %d TVOC points, want %d", got, 30*1440)
	}
}

// TestWorkerValuesInInflux reads a backfilled point back and compares every field with the generator.
func TestWorkerValuesInInflux(t *testing.T) {
	srv := influxtest.Shared(t)
	f := newFixture(t, srv, fixtureOpts{})
	id := "vals-" + influxtest.RandomID(3)
	m := fixedNow.Unix()/60 - 10
	w := &Worker{Influx: f.admin, Bucket: f.cfg.Bucket, Gen: home}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := Chunk{DeviceID: id, Ranges: []Range{{m, m + 1}}}
	for i := 0; i < 2; i++ { // twice: idempotent
		if err := w.Handle(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	want := home.At(sensors.SeedOf(id), m*60_000)
	got := map[string]any{}
	err := f.admin.QueryRows(ctx, `from(bucket: bucket) |> range(start: 0) |> filter(fn: (r) => r.clientId == deviceId)`,
		influx.Extern{"bucket": f.cfg.Bucket, "deviceId": id}, func(v map[string]any) error {
			got[v["_field"].(string)] = v["_value"]
			for _, tag := range schema.SensorTags {
				if v[tag[0]] != tag[1] {
					t.Errorf("tag %s = %v, want %s", tag[0], v[tag[0]], tag[1])
				}
			}
			if v["_measurement"] != "environment" || !v["_time"].(time.Time).Equal(time.Unix(m*60, 0)) {
				t.Errorf("point %v, want environment at minute %d", v, m)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	wantF := map[string]any{"Temperature": want.Temperature, "Humidity": want.Humidity, "Pressure": want.Pressure,
		"CO2": want.CO2, "TVOC": want.TVOC, "Lat": want.Lat, "Lon": want.Lon}
	for k, v := range wantF {
		if fv, ok := v.(float64); ok {
			if g, ok := got[k].(float64); !ok || math.Abs(g-fv) > 0 {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		} else if got[k] != v {
			t.Errorf("%s = %v (%T), want %v (%T)", k, got[k], got[k], v, v)
		}
	}
	if err := w.Handle(ctx, Chunk{DeviceID: "bad id", Ranges: []Range{{1, 2}}}); err == nil {
		t.Error("worker accepted a chunk with an invalid device id")
	}
}
