package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/iot-center/iot-center-serverless/internal/authztest"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/fleettest"
	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

// fixture is a data bucket and a registry bucket on a real InfluxDB, the real registry and the fleet service.
type fixture struct {
	svc     *Service
	h       http.Handler
	metrics *bytes.Buffer
	cfg     config.Config
	table   *store.Table
}

func newFixture(t testing.TB, now time.Time) *fixture {
	t.Helper()
	srv := influxtest.Shared(t)
	admin := srv.Client(t)
	cfg := srv.Config(srv.NewBucket(t, "fleetdata"))
	cfg.MaxDevices = 10000
	f := &fixture{metrics: &bytes.Buffer{}, cfg: cfg, table: influxtest.StateTable(t)}
	f.svc = NewService(registry.New(admin, cfg, f.table), admin, cfg)
	f.svc.Metrics, f.svc.Now = f.metrics, func() time.Time { return now }
	f.h = api.Handler(authztest.Operator(f.svc.Routes())) // the operator's decision, as the authorizer hands it over
	return f
}

func (f *fixture) get(t testing.TB, path string) (int, []Device, http.Header, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f.h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil).WithContext(ctx))
	var devs []Device
	if rec.Code == 200 {
		if err := json.Unmarshal(rec.Body.Bytes(), &devs); err != nil {
			t.Fatalf("GET %s: %q is not an array of devices: %v", path, rec.Body.String(), err)
		}
	}
	return rec.Code, devs, rec.Header(), rec.Body.String()
}

// TestHealthStatuses: a device that wrote 30 s ago is online, 5 minutes ago late, 20 minutes ago silent, never
// silent without lastSeen; the scheduled check counts and emits them (SilentDevices 2).
func TestHealthStatuses(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	f := newFixture(t, now)
	srv := influxtest.Shared(t)
	admin := srv.Client(t)
	ids := []string{"h-late", "h-never", "h-online", "h-silent"}
	fleettest.Register(t, f.table, ids)
	gen := sensors.Generator{Lat: 50, Lon: 14}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seen := map[string]time.Time{"h-online": now.Add(-30 * time.Second), "h-late": now.Add(-5 * time.Minute), "h-silent": now.Add(-20 * time.Minute)}
	for id, at := range seen {
		lp := sensors.NewLine(gen, id).Append(nil, at.UnixMilli())
		if err := admin.WriteLines(ctx, f.cfg.Bucket, lp); err != nil {
			t.Fatal(err)
		}
	}
	// another device's point (not registered) and a point without clientId change nothing
	if err := admin.WriteLines(ctx, f.cfg.Bucket, []byte("environment Temperature=1 "+itoa(now.UnixNano())+"\n")); err != nil {
		t.Fatal(err)
	}
	status, devs, _, body := f.get(t, "/api/devices")
	if status != 200 || len(devs) != 4 {
		t.Fatalf("GET /api/devices: %d %s, want 4 devices", status, body)
	}
	want := map[string]string{"h-online": Online, "h-late": Late, "h-silent": Silent, "h-never": Silent}
	for i, d := range devs {
		if d.DeviceID != ids[i] {
			t.Errorf("device %d is %s, want %s (sorted by id)", i, d.DeviceID, ids[i])
		}
		if d.Status != want[d.DeviceID] {
			t.Errorf("%s: status %s, want %s", d.DeviceID, d.Status, want[d.DeviceID])
		}
		switch at, ok := seen[d.DeviceID]; {
		case !ok && d.LastSeen != nil:
			t.Errorf("%s: lastSeen %v, want null", d.DeviceID, d.LastSeen)
		case ok && (d.LastSeen == nil || !d.LastSeen.Equal(at.Truncate(time.Millisecond))):
			t.Errorf("%s: lastSeen %v, want %v", d.DeviceID, d.LastSeen, at)
		}
	}
	if strings.Contains(body, "bench-token") {
		t.Errorf("the device list holds a token: %s", body)
	}
	recent, err := f.svc.Health.Recent(ctx, now)
	if err != nil || len(recent) != 1 || !recent["h-online"].Equal(seen["h-online"].Truncate(time.Millisecond)) {
		t.Errorf("Recent = %v, %v; want only h-online at %v", recent, err, seen["h-online"])
	}
	for _, lookupMax := range []int{0, 1} { // the others by id, or with every device's series
		f.svc.Health.LookupMax = lookupMax
		all, err := f.svc.Health.Rest(ctx, now, recent, ids)
		if err != nil || len(all) != len(seen) {
			t.Fatalf("Rest (LookupMax %d) = %v, %v; want the %d devices that wrote", lookupMax, all, err, len(seen))
		}
		for id, at := range seen {
			if !all[id].Equal(at.Truncate(time.Millisecond)) {
				t.Errorf("Rest (LookupMax %d): %s last seen %v, want %v", lookupMax, id, all[id], at)
			}
		}
	}
	// the same answers however the list reads the last points: every device's beside the registry's list when few
	// wrote recently (above), or the recent ones first and the rest after it (LookupMax 1 here); a page looks up
	// only its own devices
	for _, page := range []struct {
		path      string
		first     int
		lookupMax int
	}{{"/api/devices", 0, 1}, {"/api/devices?limit=2", 0, 0}, {"/api/devices?limit=2&after=h-never", 2, 0},
		{"/api/devices?after=h-online", 3, 0}} {
		f.svc.Health.LookupMax = page.lookupMax
		status, got, _, body := f.get(t, page.path)
		if status != 200 || len(got) == 0 || page.first+len(got) > len(devs) {
			t.Fatalf("GET %s: %d %s", page.path, status, body)
		}
		for i, d := range got {
			w := devs[page.first+i]
			if d.DeviceID != w.DeviceID || d.Status != w.Status || (d.LastSeen == nil) != (w.LastSeen == nil) ||
				(d.LastSeen != nil && !d.LastSeen.Equal(*w.LastSeen)) {
				t.Errorf("GET %s: entry %d %+v, want %+v as in the whole list", page.path, i, d, w)
			}
		}
	}

	counts, err := f.svc.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts != (Counts{Registered: 4, Online: 1, Late: 1, Silent: 2}) {
		t.Errorf("Check = %+v, want 4 registered, 1 online, 1 late, 2 silent", counts)
	}
	var line map[string]any
	if err := json.Unmarshal(f.metrics.Bytes(), &line); err != nil {
		t.Fatalf("metric line %q: %v", f.metrics.String(), err)
	}
	if line["SilentDevices"] != float64(2) || line["LateDevices"] != float64(1) || line["OnlineDevices"] != float64(1) {
		t.Errorf("EMF line %v, want SilentDevices 2, LateDevices 1, OnlineDevices 1", line)
	}
	if !strings.Contains(f.metrics.String(), `"Namespace":"IoTCenter"`) {
		t.Errorf("EMF line %s, want the IoTCenter namespace", f.metrics.String())
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestListPaging follows the Link chain: every device once, in order; bad parameters are refused.
func TestListPaging(t *testing.T) {
	f := newFixture(t, time.Now())
	ids := fleettest.IDs("p", 5)
	fleettest.Register(t, f.table, ids)
	var got []string
	path := "/api/devices?limit=2"
	for pages := 0; path != ""; pages++ {
		if pages == 10 {
			t.Fatal("more than 10 pages for 5 devices")
		}
		status, devs, hdr, body := f.get(t, path)
		if status != 200 {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		for _, d := range devs {
			got = append(got, d.DeviceID)
		}
		path = ""
		if link := hdr.Get("Link"); link != "" {
			if !strings.HasPrefix(link, "</api/devices?") || !strings.HasSuffix(link, `>; rel="next"`) {
				t.Fatalf("Link %q, want </api/devices?…>; rel=\"next\"", link)
			}
			path = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
		}
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("pages gave %v, want %v", got, ids)
	}
	if _, all, hdr, _ := f.get(t, "/api/devices"); len(all) != 5 || hdr.Get("Link") != "" {
		t.Errorf("without limit: %d devices, Link %q; want all 5 and no Link", len(all), hdr.Get("Link"))
	}
	if _, last, hdr, _ := f.get(t, "/api/devices?limit=5"); len(last) != 5 || hdr.Get("Link") != "" {
		t.Errorf("limit = fleet size: %d devices, Link %q; want 5 and no Link", len(last), hdr.Get("Link"))
	}
	for _, bad := range []string{"limit=0", "limit=1001", "limit=x", "limit=99999999999999999999", "after=no%20way",
		"limit=1&limit=2", "page=2", "%zz", "key=operator"} {
		if status, _, _, body := f.get(t, "/api/devices?"+bad); status != 400 {
			t.Errorf("?%s: %d %s, want 400", bad, status, body)
		}
	}
	if status, devs, _, _ := f.get(t, "/api/devices?limit=1000&after=p-00003"); status != 200 || len(devs) != 1 || devs[0].DeviceID != "p-00004" {
		t.Errorf("after p-00003: %d %v, want only p-00004", status, devs)
	}
}

// TestRealWritesOnly: status and lastSeen come from what a device wrote itself, in any field: a device writing only
// CO2 and TVOC is online; points write-missing generated (tagged generated=true) never make a device seen, neither
// alone nor after an older real point; the health counts agree. Both list paths are tried (every device's last
// point beside the list; the recent ones first, then the rest by id).
func TestRealWritesOnly(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	f := newFixture(t, now)
	admin := influxtest.Shared(t).Client(t)
	ids := []string{"r-co2only", "r-generated", "r-old-then-generated", "r-online"}
	fleettest.Register(t, f.table, ids)
	gen := sensors.Generator{Lat: 50, Lon: 14}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	at := func(d time.Duration) int64 { return now.Add(d).UnixNano() }
	var lp []byte
	lp = append(lp, "environment,clientId=r-co2only CO2=600i,TVOC=300i "+itoa(at(-30*time.Second))+"\n"...)
	lp = append(lp, "environment,clientId=r-online Temperature=20 "+itoa(at(-40*time.Second))+"\n"...)
	lp = append(lp, "environment,clientId=r-old-then-generated Temperature=20 "+itoa(at(-20*time.Minute))+"\n"...)
	for _, id := range []string{"r-generated", "r-old-then-generated"} {
		g := sensors.NewGeneratedLine(gen, id)
		for m := time.Duration(0); m < 3; m++ {
			lp = g.Append(lp, now.Add(-m*time.Minute).UnixMilli())
		}
	}
	if err := admin.WriteLines(ctx, f.cfg.Bucket, lp); err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		status string
		seen   time.Duration // 0: never
	}{
		"r-co2only": {Online, -30 * time.Second}, "r-generated": {Silent, 0},
		"r-old-then-generated": {Silent, -20 * time.Minute}, "r-online": {Online, -40 * time.Second},
	}
	defer func(n int) { othersDirect = n }(othersDirect)
	for _, lookupMax := range []int{0, 1} {
		f.svc.Health.LookupMax = lookupMax
		othersDirect = lookupMax * 50 // the devices without Temperature by id, or after asking the index
		status, devs, _, body := f.get(t, "/api/devices")
		if status != 200 || len(devs) != len(ids) {
			t.Fatalf("GET /api/devices (LookupMax %d): %d %s, want %d devices", lookupMax, status, body, len(ids))
		}
		for _, d := range devs {
			w := want[d.DeviceID]
			if d.Status != w.status {
				t.Errorf("LookupMax %d: %s status %s, want %s", lookupMax, d.DeviceID, d.Status, w.status)
			}
			switch {
			case w.seen == 0 && d.LastSeen != nil:
				t.Errorf("LookupMax %d: %s lastSeen %v, want null (only generated points)", lookupMax, d.DeviceID, d.LastSeen)
			case w.seen != 0 && (d.LastSeen == nil || !d.LastSeen.Equal(now.Add(w.seen))):
				t.Errorf("LookupMax %d: %s lastSeen %v, want %v", lookupMax, d.DeviceID, d.LastSeen, now.Add(w.seen))
			}
		}
	}
	counts, err := f.svc.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts != (Counts{Registered: 4, Online: 2, Silent: 2}) {
		t.Errorf("Check = %+v, want 4 registered, 2 online, 2 silent", counts)
	}
}
