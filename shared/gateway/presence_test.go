package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/presence"
)

// TestPresenceDigest: writes through the gateway reach the presence digest (the device, its newest point time and
// its last position); the first write flushes at once, later ones once `every` has passed.
func TestPresenceDigest(t *testing.T) {
	t0 := at()
	c := &clock{t: t0.Add(time.Minute)}
	rec := presence.NewRecorder(20*time.Second, 0)
	f := newFixture(t, Options{Now: c.now, Presence: rec})
	read := func(stop time.Time) map[string]presence.Entry {
		t.Helper()
		got, skipped, err := presence.Read(t.Context(), f.admin, f.bucket, t0.Add(-time.Hour), stop)
		if err != nil || skipped != 0 {
			t.Fatalf("presence.Read: %v, %d skipped", err, skipped)
		}
		return got
	}
	post := func(body string) {
		t.Helper()
		if status, _, resp := f.post(req{body: []byte(body)}); status != http.StatusNoContent {
			t.Fatalf("status %d %v, want 204", status, resp)
		}
	}

	// two points, the newer one first in the body: its time and position are the device's
	post(seedLine(devA, t0.Add(time.Second)) + "\n" + seedLine(devA, t0) + "\nenvironment Temperature=20 " + fmt.Sprint(t0.UnixNano()))
	got := read(c.now().Add(time.Minute))
	e, ok := got[devA]
	if !ok || !e.At.Equal(t0.Add(time.Second)) || e.Lat != 50.1 || e.Lon != 14.4 || e.Points != 3 {
		t.Fatalf("digest after the first write: %+v, want %s at %v, position 50.1,14.4, 3 points", got, devA, t0.Add(time.Second))
	}

	// 10 s later a write without a position: pending until 20 s have passed since the flush
	c.add(10 * time.Second)
	post(fmt.Sprintf("environment Temperature=20 %d", t0.Add(10*time.Second).UnixNano()))
	if rec.Pending() != 1 {
		t.Errorf("10 s after the flush: %d pending, want 1", rec.Pending())
	}
	c.add(10 * time.Second)
	post(fmt.Sprintf("environment,clientId=dev-a Lat=-33.9,Lon=151.2 %d", t0.Add(20*time.Second).UnixNano()))
	if rec.Pending() != 0 {
		t.Errorf("20 s after the flush: %d pending, want 0 (flushed)", rec.Pending())
	}
	e = read(c.now().Add(time.Minute))[devA]
	if !e.At.Equal(t0.Add(20*time.Second)) || e.Lat != -33.9 || e.Lon != 151.2 || e.Points != 5 {
		t.Errorf("digest after three writes: %+v, want at %v, position -33.9,151.2, 5 points", e, t0.Add(20*time.Second))
	}
	// the digest's points: measurement presence, a slot tag, no clientId
	for _, p := range f.points() {
		if strings.HasPrefix(p, presence.Measurement+" ") != strings.Contains(p, " "+presence.Field+" ") {
			t.Errorf("point %q: the digest's field outside its measurement or the reverse", p)
		}
		if strings.HasPrefix(p, presence.Measurement+" dev-a") {
			t.Errorf("digest point %q carries a clientId", p)
		}
	}

	// a future point is recorded at the gateway's time
	c.add(time.Minute)
	post(fmt.Sprintf("environment Temperature=20 %d", c.now().Add(5*time.Minute).UnixNano()))
	if e := read(c.now().Add(time.Hour))[devA]; !e.At.Equal(c.now()) {
		t.Errorf("a point 5 min ahead: digest time %v, want the gateway's now %v", e.At, c.now())
	}
}

// TestPresenceDigestFailure: when the digest cannot be written, the device's write still succeeds and the entry is
// kept for a later flush.
func TestPresenceDigestFailure(t *testing.T) {
	t0 := at()
	c := &clock{t: t0.Add(time.Minute)}
	rec := presence.NewRecorder(time.Second, 0)
	f := newFixture(t, Options{Now: c.now, Presence: rec})
	// an integer field of the digest's name in its shard: InfluxDB refuses the digest's string field (a conflict)
	conflict := fmt.Sprintf("%s,%s=0 %s=1i %d\n", presence.Measurement, presence.TagSlot, presence.Field, t0.UnixNano())
	if err := f.admin.WriteLines(t.Context(), f.bucket, []byte(conflict)); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		status, _, body := f.post(req{body: []byte(seedLine(devA, t0.Add(time.Duration(i)*time.Second)))})
		if status != http.StatusNoContent {
			t.Fatalf("write %d: status %d %v, want 204 whatever the digest", i, status, body)
		}
		if rec.Pending() != 1 {
			t.Errorf("write %d: %d pending, want the device kept", i, rec.Pending())
		}
		c.add(2 * time.Second)
	}
	n := 0
	for _, p := range f.points() {
		if strings.HasPrefix(p, "environment dev-a Temperature") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d Temperature points written, want 2", n)
	}
}

// TestPresenceMeasurementRefused: devices cannot write the digest's measurement through the gateway.
func TestPresenceMeasurementRefused(t *testing.T) {
	f := newFixture(t, Options{Presence: presence.NewRecorder(0, 0)})
	body := fmt.Sprintf(`%s,%s=1 %s="dev-x:%s:::1" %d`, presence.Measurement, presence.TagSlot, presence.Field,
		"0", time.Now().UnixNano())
	status, _, resp := f.post(req{body: []byte(body)})
	if status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(resp["message"]), "not in the schema") {
		t.Errorf("writing measurement %s: %d %v, want 400 not in the schema", presence.Measurement, status, resp)
	}
	if got := f.points(); len(got) != 0 {
		t.Errorf("points %q, want none", got)
	}
}
