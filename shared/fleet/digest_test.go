package fleet

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/gateway"
	"github.com/iot-center/iot-center-serverless/shared/positions"
	"github.com/iot-center/iot-center-serverless/shared/presence"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

// gatewayFleet is the fixture's devices registered through the registry and writing live (the gateway's clock is
// the point's time) through a write gateway that keeps a presence digest.
type gatewayFleet struct {
	f     *fixture
	h     http.Handler
	creds map[string]string
	rec   *presence.Recorder
	mu    sync.Mutex
	now   time.Time
}

func newGatewayFleet(t *testing.T, f *fixture, ids []string) *gatewayFleet {
	t.Helper()
	cfg := f.cfg
	cfg.DeviceWrites = config.WritesGateway
	reg := registry.New(f.admin, cfg, f.table)
	res, err := reg.BulkRegister(ctxT(t), ids)
	if err != nil {
		t.Fatal(err)
	}
	g := &gatewayFleet{f: f, creds: map[string]string{}, rec: presence.NewRecorder(presence.DefaultEvery, 0)}
	for _, r := range res {
		if r.Outcome != registry.BulkCreated || r.Token == "" {
			t.Fatalf("registering %s: %+v", r.DeviceID, r)
		}
		g.creds[r.DeviceID] = r.Token
	}
	svc, err := gateway.NewService(reg, f.table, f.admin, gateway.Options{Org: cfg.Org, Bucket: cfg.Bucket,
		Presence: g.rec, Now: func() time.Time { g.mu.Lock(); defer g.mu.Unlock(); return g.now }})
	if err != nil {
		t.Fatal(err)
	}
	g.h = svc.Routes()
	return g
}

// write sends one point of device id at `at` through the gateway; a position when lat, lon are given.
func (g *gatewayFleet) write(t *testing.T, id string, at time.Time, pos ...float64) {
	t.Helper()
	g.mu.Lock()
	g.now = at
	g.mu.Unlock()
	fields := "Temperature=21"
	if len(pos) == 2 {
		fields += ",Lat=" + ftoa(pos[0]) + ",Lon=" + ftoa(pos[1])
	}
	r := httptest.NewRequest("POST", "/api/v2/write?org="+g.f.cfg.Org+"&bucket="+g.f.cfg.Bucket,
		strings.NewReader("environment "+fields+" "+itoa(at.UnixNano())))
	r.Header.Set("Authorization", "Token "+g.creds[id])
	w := httptest.NewRecorder()
	g.h.ServeHTTP(w, r.WithContext(ctxT(t)))
	if w.Code != http.StatusNoContent {
		t.Fatalf("write of %s through the gateway: %d %s", id, w.Code, w.Body.String())
	}
}

// TestRunDigest: in digest mode the run takes the online devices, their times and positions from the gateway's
// presence digest; a device that stops writing goes late, then silent, as in direct mode.
func TestRunDigest(t *testing.T) {
	now := time.Now().UTC().Truncate(5 * time.Minute).Add(-30 * time.Minute)
	f := newFixture(t, now)
	f.svc.Digest = true
	ids := []string{"g-moving", "g-never", "g-noposition", "g-stops"}
	g := newGatewayFleet(t, f, ids)

	// the first write flushes at once, the next one waits (20 s not passed), the third flushes both
	g.write(t, "g-stops", now.Add(-60*time.Second), 48.85, 2.35)
	g.write(t, "g-moving", now.Add(-50*time.Second), 10, 20)
	if g.rec.Pending() != 1 {
		t.Fatalf("%d pending, want 1 (20 s not passed)", g.rec.Pending())
	}
	g.write(t, "g-noposition", now.Add(-40*time.Second))
	g.write(t, "g-moving", now.Add(-time.Second), 10.5, 20.25)
	if g.rec.Pending() != 0 {
		t.Fatalf("%d pending, want 0 (flushed)", g.rec.Pending())
	}

	c := f.run(t)
	if c.Registered != 4 || c.Online != 3 || c.Late != 0 || c.Silent != 1 {
		t.Errorf("first run: %+v, want 4 registered, 3 online, 1 silent", c)
	}
	// the first run's window is silentAfter intervals
	if want := 4 / (silentAfter * f.svc.Health.interval()).Minutes(); c.PointsPerMinute != want {
		t.Errorf("points per minute %v, want %v", c.PointsPerMinute, want)
	}
	type want struct {
		status   string
		seen     time.Time
		lat, lon float64 // NaN: no position
	}
	check := func(when string, wants map[string]want) {
		t.Helper()
		for id, w := range wants {
			got := f.item(t, id)
			posOK := (got.HasPos() == !isNaN(w.lat)) && (!got.HasPos() || (nearSnap(got.Lat, w.lat) && nearSnap(got.Lon, w.lon)))
			if got.Status != w.status || !got.LastSeen.Equal(w.seen) || !posOK {
				t.Errorf("%s: item %s %+v, want %s, last seen %v, at %v,%v", when, id, got, w.status, w.seen, w.lat, w.lon)
			}
		}
	}
	check("first run", map[string]want{
		"g-moving":     {Online, now.Add(-time.Second), 10.5, 20.25},
		"g-noposition": {Online, now.Add(-40 * time.Second), nan, nan},
		"g-stops":      {Online, now.Add(-60 * time.Second), 48.85, 2.35},
		"g-never":      {Silent, time.Time{}, nan, nan},
	})

	// every device but g-stops writes again (g-moving from elsewhere), runs 3 and 5 minutes on
	for i, after := range []time.Duration{3 * time.Minute, 5 * time.Minute} {
		f.now = now.Add(after)
		g.write(t, "g-noposition", f.now.Add(-25*time.Second))
		g.write(t, "g-moving", f.now.Add(-time.Second), 11+float64(i), 21)
		f.run(t)
	}
	check("5 min later", map[string]want{
		"g-moving":     {Online, now.Add(5*time.Minute - time.Second), 12, 21},
		"g-noposition": {Online, now.Add(-40 * time.Second), nan, nan}, // an item is rewritten only when it changes
		"g-stops":      {Late, now.Add(-60 * time.Second), 48.85, 2.35},
	})
	f.now = now.Add(12 * time.Minute)
	g.write(t, "g-moving", f.now.Add(-time.Second), 12, 21)
	c = f.run(t)
	if c.Online != 1 || c.Late != 1 || c.Silent != 2 {
		t.Errorf("12 min later: %+v, want 1 online, 1 late, 2 silent", c)
	}
	check("12 min later", map[string]want{
		"g-moving":     {Online, now.Add(5*time.Minute - time.Second), 12, 21}, // not moved: not rewritten
		"g-noposition": {Late, now.Add(5*time.Minute - 25*time.Second), nan, nan},
		"g-stops":      {Silent, now.Add(-60 * time.Second), 48.85, 2.35},
	})
	// the snapshot has the freshest time the run read
	snap, err := positions.Read(ctxT(t), f.table)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range snap.Devices {
		if d.ID == "g-moving" && !d.LastSeen.Equal(f.now.Add(-time.Second)) {
			t.Errorf("snapshot: g-moving last seen %v, want %v", d.LastSeen, f.now.Add(-time.Second))
		}
	}
}

// nearSnap compares positions that may have passed through the positions snapshot (stored as float32).
func nearSnap(a, b float64) bool { return math.Abs(a-b) < 1e-4 }

var nan = func() float64 { var z float64; return z / z }()

func isNaN(v float64) bool { return v != v }

// The run reads the digest exactly when devices write through the gateway (every device write passes it).
func TestNewServiceDigestFollowsDeviceWrites(t *testing.T) {
	for mode, want := range map[string]bool{config.WritesGateway: true, config.WritesDirect: false} {
		if got := NewService(nil, nil, config.Config{DeviceWrites: mode}).Digest; got != want {
			t.Errorf("DeviceWrites=%s: Digest = %v, want %v", mode, got, want)
		}
	}
}
