package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/authztest"
	"github.com/iot-center/iot-center-serverless/internal/fleettest"
	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/positions"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

// fixture is a data bucket on a real InfluxDB, a state table on the DynamoDB stand-in and the fleet service.
type fixture struct {
	svc     *Service
	h       http.Handler
	metrics *bytes.Buffer
	cfg     config.Config
	table   *store.Table
	admin   *influx.Client
	now     time.Time
}

func newFixture(t testing.TB, now time.Time) *fixture {
	t.Helper()
	srv := influxtest.Shared(t)
	admin := srv.Client(t)
	cfg := srv.Config(srv.NewBucket(t, "fleetdata"))
	f := &fixture{metrics: &bytes.Buffer{}, cfg: cfg, table: influxtest.StateTable(t), admin: admin, now: now}
	f.svc = NewService(f.table, admin, cfg)
	f.svc.Metrics, f.svc.Clock = f.metrics, func() time.Time { return f.now }
	f.h = api.Handler(authztest.Operator(f.svc.Routes())) // the operator's decision, as the authorizer hands it over
	return f
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func (f *fixture) get(t testing.TB, path string) (int, []Device, http.Header, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil).WithContext(ctxT(t)))
	var devs []Device
	if rec.Code == 200 {
		if err := json.Unmarshal(rec.Body.Bytes(), &devs); err != nil {
			t.Fatalf("GET %s: %q is not an array of devices: %v", path, rec.Body.String(), err)
		}
	}
	return rec.Code, devs, rec.Header(), rec.Body.String()
}

// write writes one real point of the device at `at`, at position (lat, lon).
func (f *fixture) write(t testing.TB, id string, at time.Time, lat, lon float64) {
	t.Helper()
	lp := "environment,clientId=" + id + " Temperature=21,CO2=500i,Lat=" + ftoa(lat) + ",Lon=" + ftoa(lon) + " " + itoa(at.UnixNano()) + "\n"
	if err := f.admin.WriteLines(ctxT(t), f.cfg.Bucket, []byte(lp)); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) run(t testing.TB) Counts {
	t.Helper()
	c, err := f.svc.Check(ctxT(t))
	if err != nil {
		t.Fatalf("fleet-health run at %v: %v", f.now, err)
	}
	return c
}

// item reads a device item's health.
func (f *fixture) item(t testing.TB, id string) Position {
	t.Helper()
	it, err := f.table.Get(ctxT(t), deviceKey(id), true)
	if err != nil || it == nil {
		t.Fatalf("device item %s: %v, %v", id, it, err)
	}
	return positionOf(it)
}

func itoa(n int64) string    { return strconv.FormatInt(n, 10) }
func ftoa(v float64) string  { return strconv.FormatFloat(v, 'f', -1, 64) }
func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// TestRunKeepsHealth: the run judges statuses from real points only (generated ones never count), writes each
// device's status, lastSeen and position to its item, the counters, the positions snapshot and a point of
// measurement fleet; a second run with nothing changed writes only its own time; time passing moves online to late
// and late to silent, and a device that moved gets its new position.
func TestRunKeepsHealth(t *testing.T) {
	now := time.Now().UTC().Truncate(5 * time.Minute).Add(-30 * time.Minute)
	f := newFixture(t, now)
	ids := []string{"h-generated", "h-late", "h-never", "h-online", "h-silent"}
	fleettest.Register(t, f.table, ids)
	f.write(t, "h-online", now.Add(-30*time.Second), 50.1, 14.1)
	f.write(t, "h-late", now.Add(-5*time.Minute), 40.5, -3.7)
	f.write(t, "h-silent", now.Add(-20*time.Minute), 35.6, 139.7)
	gen := "environment,clientId=h-generated,generated=true Temperature=1,Lat=1,Lon=1 " + itoa(now.Add(-time.Minute).UnixNano()) + "\n"
	if err := f.admin.WriteLines(ctxT(t), f.cfg.Bucket, []byte(gen)); err != nil {
		t.Fatal(err)
	}

	c := f.run(t)
	if c.Registered != 5 || c.Online != 1 || c.Late != 1 || c.Silent != 3 {
		t.Errorf("first run: %+v, want 5 registered, 1 online, 1 late, 3 silent", c)
	}
	want := map[string]struct {
		status   string
		seen     time.Time
		lat, lon float64
	}{
		"h-online": {Online, now.Add(-30 * time.Second), 50.1, 14.1}, "h-late": {Late, now.Add(-5 * time.Minute), 40.5, -3.7},
		"h-silent": {Silent, time.Time{}, math.NaN(), math.NaN()}, "h-never": {Silent, time.Time{}, math.NaN(), math.NaN()},
		"h-generated": {Silent, time.Time{}, math.NaN(), math.NaN()},
	}
	for id, w := range want {
		got := f.item(t, id)
		if got.Status != w.status || !got.LastSeen.Equal(w.seen) || (w.seen.IsZero() && got.HasPos()) ||
			(!w.seen.IsZero() && (!near(got.Lat, w.lat) || !near(got.Lon, w.lon))) {
			t.Errorf("item %s: %+v, want status %s, lastSeen %v, position %v,%v", id, got, w.status, w.seen, w.lat, w.lon)
		}
	}
	snap, err := positions.Read(ctxT(t), f.table)
	if err != nil || len(snap.Devices) != len(ids) {
		t.Fatalf("snapshot: %d devices, %v; want every registered device (%d)", len(snap.Devices), err, len(ids))
	}
	for _, d := range snap.Devices {
		if positions.StatusName(d.Status) != want[d.ID].status {
			t.Errorf("snapshot: %s is %s, want %s", d.ID, positions.StatusName(d.Status), want[d.ID].status)
		}
	}
	counts, err := ReadCounts(ctxT(t), f.table)
	if err != nil || counts.Registered != 5 || counts.Online != 1 || counts.Late != 1 || counts.Silent != 3 ||
		counts.AsOf == nil || !counts.AsOf.Equal(now) {
		t.Errorf("counts %+v, %v; want 5/1/1/3 as of %v", counts, err, now)
	}
	var line map[string]any
	if err := json.Unmarshal(f.metrics.Bytes(), &line); err != nil {
		t.Fatalf("metric line %q: %v", f.metrics.String(), err)
	}
	if line["SilentDevices"] != float64(3) || line["LateDevices"] != float64(1) || line["OnlineDevices"] != float64(1) {
		t.Errorf("EMF line %v, want SilentDevices 3, LateDevices 1, OnlineDevices 1", line)
	}
	rows := 0
	err = f.admin.QueryRows(ctxT(t), `from(bucket: bucket) |> range(start: 0) |> filter(fn: (r) => r._measurement == "fleet")`,
		influx.Extern{"bucket": f.cfg.Bucket}, func(v map[string]any) error {
			rows++
			if want := map[string]int64{"online": 1, "late": 1, "silent": 3, "registered": 5}; v["_field"] != "pointsPerMinute" &&
				v["_value"] != want[v["_field"].(string)] {
				t.Errorf("fleet %s = %v, want %d", v["_field"], v["_value"], want[v["_field"].(string)])
			}
			return nil
		})
	if err != nil || rows != 5 {
		t.Errorf("measurement fleet: %d fields, %v; want 5", rows, err)
	}

	// nothing changed: no device, counter or snapshot write, only the run's time
	if c := f.run(t); c.Changed != 0 || c.StoreWrites != 1 {
		t.Errorf("second run: %+v, want nothing changed and 1 store write", c)
	}

	// six minutes on: online -> late, late -> silent; the silent one writes again, from elsewhere
	f.now = now.Add(6 * time.Minute)
	f.write(t, "h-silent", f.now.Add(-10*time.Second), -33.9, 151.2)
	c = f.run(t)
	if c.Changed != 3 || c.Online != 1 || c.Late != 1 || c.Silent != 3 {
		t.Errorf("run 6 min later: %+v, want 3 changed, 1 online, 1 late, 3 silent", c)
	}
	for id, w := range map[string]string{"h-online": Late, "h-late": Silent, "h-silent": Online} {
		if got := f.item(t, id); got.Status != w {
			t.Errorf("6 min later: %s is %s, want %s", id, got.Status, w)
		}
	}
	if got := f.item(t, "h-silent"); !near(got.Lat, -33.9) || !near(got.Lon, 151.2) {
		t.Errorf("h-silent back online at %v,%v, want its new position -33.9,151.2", got.Lat, got.Lon)
	}
}

// TestRunMoves: an online device that moves more than moveDegrees gets its new position when the run reads its
// position slice; a smaller move writes nothing.
func TestRunMoves(t *testing.T) {
	id := "m-walker"
	base := time.Now().UTC().Truncate(30 * time.Minute).Add(-time.Hour)
	// a run time whose position slice holds the device
	now := base
	for sliceIndex(id) != int(now.Unix()/300)%positionSlices {
		now = now.Add(5 * time.Minute)
	}
	f := newFixture(t, now)
	fleettest.Register(t, f.table, []string{id})
	f.write(t, id, now.Add(-30*time.Second), 10, 20)
	f.run(t)
	f.write(t, id, now.Add(-10*time.Second), 10+moveDegrees/2, 20)
	if c := f.run(t); c.Changed != 0 {
		t.Errorf("a move of half the threshold: %+v, want nothing changed", c)
	}
	f.write(t, id, now.Add(-5*time.Second), 10.5, 20.25)
	if c := f.run(t); c.Changed != 1 {
		t.Errorf("a move of half a degree: %+v, want 1 changed", c)
	}
	if got := f.item(t, id); !near(got.Lat, 10.5) || !near(got.Lon, 20.25) || got.Status != Online {
		t.Errorf("item after the move: %+v, want online at 10.5,20.25", got)
	}
}

// TestListPages: pages by id and by lastSeen, filtered by status and by prefix, each device once and in order
// when the Link chain is followed; the counts route; hostile parameters refused.
func TestListPages(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Minute)
	f := newFixture(t, now)
	ids := fleettest.IDs("p", 9)
	fleettest.Register(t, f.table, ids)
	// p-00000..02 online (newest first by index), p-00003..04 late, the rest silent (p-00005 wrote an hour ago)
	for i, ago := range []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second, 4 * time.Minute, 6 * time.Minute, time.Hour} {
		f.write(t, ids[i], now.Add(-ago), 1, 1)
	}
	f.run(t)
	follow := func(path string) []Device {
		t.Helper()
		var all []Device
		for pages := 0; path != ""; pages++ {
			if pages == 20 {
				t.Fatalf("more than 20 pages from %s", path)
			}
			status, devs, hdr, body := f.get(t, path)
			if status != 200 {
				t.Fatalf("GET %s: %d %s", path, status, body)
			}
			all = append(all, devs...)
			path = ""
			if link := hdr.Get("Link"); link != "" {
				if !strings.HasPrefix(link, "</api/devices?") || !strings.HasSuffix(link, `>; rel="next"`) {
					t.Fatalf("Link %q, want </api/devices?…>; rel=\"next\"", link)
				}
				path = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
			}
		}
		return all
	}
	idsOf := func(devs []Device) string {
		out := make([]string, len(devs))
		for i, d := range devs {
			out[i] = strings.TrimPrefix(d.DeviceID, "p-0000")
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct{ path, want string }{
		{"/api/devices?limit=2", "0,1,2,3,4,5,6,7,8"},
		{"/api/devices", "0,1,2,3,4,5,6,7,8"},
		{"/api/devices?limit=1&status=online", "0,1,2"},
		{"/api/devices?limit=2&status=silent", "5,6,7,8"},
		{"/api/devices?limit=2&q=p-0000", "0,1,2,3,4,5,6,7,8"},
		{"/api/devices?limit=2&q=p-00007", "7"},
		{"/api/devices?limit=1&q=p-00004&status=late", "4"},
		{"/api/devices?limit=2&sort=-lastSeen", "0,1,2,3,4,8,7,6,5"},
		{"/api/devices?limit=3&sort=-lastSeen", "0,1,2,3,4,8,7,6,5"},
		{"/api/devices?limit=1&sort=-lastSeen&status=late", "3,4"},
		{"/api/devices?limit=2&sort=lastSeen", "5,6,7,8,4,3,2,1,0"},
		{"/api/devices?limit=4&sort=lastSeen&status=silent", "5,6,7,8"},
		{"/api/devices?limit=1&sort=lastSeen&q=p-00005", "5"},
		{"/api/devices?limit=1&sort=-lastSeen&q=p-0000", "0,1,2,3,4,8,7,6,5"},
	} {
		if got := idsOf(follow(tc.path)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.path, got, tc.want)
		}
	}
	all := follow("/api/devices?limit=1000")
	for _, d := range all {
		switch {
		case d.DeviceID <= "p-00004" && (d.LastSeen == nil || d.Lat == nil):
			t.Errorf("%s: %+v, want lastSeen and a position", d.DeviceID, d)
		case d.DeviceID == "p-00000" && !d.LastSeen.Equal(now.Add(-10*time.Second)):
			t.Errorf("p-00000 lastSeen %v, want %v", d.LastSeen, now.Add(-10*time.Second))
		case d.DeviceID >= "p-00006" && d.LastSeen != nil:
			t.Errorf("%s never wrote, lastSeen %v", d.DeviceID, d.LastSeen)
		}
	}
	// a newer point of an online device shows in its page's lastSeen before the next run
	f.write(t, "p-00000", now.Add(-time.Second), 1, 1)
	if _, devs, _, _ := f.get(t, "/api/devices?limit=1"); len(devs) != 1 || !devs[0].LastSeen.Equal(now.Add(-time.Second)) {
		t.Errorf("page lastSeen %+v, want the newest point %v", devs, now.Add(-time.Second))
	}

	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/devices/counts", nil).WithContext(ctxT(t)))
	var c CountsAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil || rec.Code != 200 ||
		c.Registered != 9 || c.Online != 3 || c.Late != 2 || c.Silent != 4 {
		t.Errorf("GET /api/devices/counts: %d %s, want 9 registered, 3 online, 2 late, 4 silent", rec.Code, rec.Body.String())
	}
	for _, bad := range []string{"limit=0", "limit=1001", "limit=x", "limit=99999999999999999999", "after=no%20way",
		"limit=1&limit=2", "page=2", "%zz", "key=operator", "status=dead", "status=", "q=", "q=%2A", "sort=name",
		"sort=lastSeen&after=p-00001", "sort=lastSeen&after=online~2026-13-01T00:00:00Z%23p-1",
		"sort=lastSeen&status=late&after=online~0%23p-1", "q=" + strings.Repeat("a", 65)} {
		if status, _, _, body := f.get(t, "/api/devices?"+bad); status != 400 {
			t.Errorf("?%s: %d %s, want 400", bad, status, body)
		}
	}
}

// TestRunMembership: a device registered since the last run joins the snapshot as silent without any write of
// its item; a deleted one leaves the snapshot and the counts, even while its old points are recent.
func TestRunMembership(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Minute)
	f := newFixture(t, now)
	reg := registry.New(f.admin, f.cfg, f.table)
	ctx := ctxT(t)
	for _, id := range []string{"k-gone", "k-stays"} {
		if _, _, err := reg.Register(ctx, id); err != nil {
			t.Fatal(err)
		}
		f.write(t, id, now.Add(-20*time.Second), 1, 2)
	}
	if c := f.run(t); c.Online != 2 {
		t.Fatalf("first run: %+v, want 2 online", c)
	}
	if _, _, err := reg.Register(ctx, "k-new"); err != nil {
		t.Fatal(err)
	}
	if err := reg.Delete(ctx, "k-gone", false); err != nil {
		t.Fatal(err)
	}
	f.now = now.Add(30 * time.Second)
	c := f.run(t)
	if c.Online != 1 || c.Registered != 2 || c.Silent != 1 || c.Changed != 0 {
		t.Errorf("after a registration and a deletion: %+v, want 2 registered, 1 online, 1 silent, no item written", c)
	}
	snap, err := positions.Read(ctx, f.table)
	var got []string
	for _, d := range snap.Devices {
		got = append(got, d.ID+"="+positions.StatusName(d.Status))
	}
	if err != nil || strings.Join(got, ",") != "k-new=silent,k-stays=online" {
		t.Errorf("snapshot %v, %v; want k-new silent and k-stays online", got, err)
	}
	if _, devs, _, _ := f.get(t, "/api/devices?limit=10"); len(devs) != 2 || devs[0].DeviceID != "k-new" || devs[0].Status != Silent {
		t.Errorf("list after the deletion: %+v, want k-new (silent) and k-stays", devs)
	}
	// a rotation changes the credential, not the health the run keeps
	if _, _, err := reg.Rotate(ctx, "k-stays"); err != nil {
		t.Fatal(err)
	}
	if got := f.item(t, "k-stays"); got.Status != Online || !near(got.Lat, 1) || !near(got.Lon, 2) {
		t.Errorf("k-stays after a rotation: %+v, want still online at 1,2", got)
	}
	if c := f.run(t); c.Changed != 0 || c.Online != 1 {
		t.Errorf("run after the rotation: %+v, want nothing changed, 1 online", c)
	}
}
