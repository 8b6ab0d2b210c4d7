package overview_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/overviewtest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/overview"
	"github.com/iot-center/iot-center-serverless/shared/positions"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

// fixture is the overview over a real InfluxDB bucket and the DynamoDB stand-in, with n seeded devices.
type fixture struct {
	table *store.Table
	svc   *overview.Service
	h     http.Handler
	devs  []positions.Device
	now   time.Time
}

func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	srv := influxtest.Shared(t)
	bucket := srv.NewBucket(t, "overview")
	d := testenv.StartDynamo(t)
	c := srv.Client(t)
	now := time.Now().UTC().Truncate(time.Second)
	devs, err := overviewtest.Seed(context.Background(), d.Table, c, bucket, n, now)
	if err != nil {
		t.Fatal(err)
	}
	svc := overview.NewService(c, bucket, d.Table)
	svc.Clock = func() time.Time { return now }
	return &fixture{table: d.Table, svc: svc, h: api.Handler(svc.Routes()), devs: devs, now: now}
}

// get serves one request as the given role.
func (f *fixture) get(t *testing.T, role, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	r = r.WithContext(api.WithCaller(r.Context(), api.Caller{Role: role, Generation: -1}))
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("%v: %s", err, w.Body)
	}
	return v
}

func TestOverview(t *testing.T) {
	f := newFixture(t, 2000)
	online, late, silent := overviewtest.Tally(f.devs)

	t.Run("counts", func(t *testing.T) {
		for _, tc := range []struct {
			rng      string
			min, max int // windows
		}{{"", 280, 290}, {"1d", 280, 290}, {"7d", 48, 50}, {"30d", 12, 14}} {
			c := decode[overview.Counts](t, f.get(t, api.RoleOperator, "/api/overview?range="+tc.rng))
			if c.Now == nil || c.Now.Online != int64(online) || c.Now.Late != int64(late) || c.Now.Silent != int64(silent) ||
				c.Now.Registered != int64(len(f.devs)) || !c.Now.Time.Equal(f.now) {
				t.Errorf("range %q: now = %+v, want online %d late %d silent %d registered %d at %v", tc.rng, c.Now, online,
					late, silent, len(f.devs), f.now)
			}
			s := c.Series
			if n := len(s.Time); n < tc.min || n > tc.max || len(s.Online) != n || len(s.PointsPerMinute) != n {
				t.Errorf("range %q: %d windows (online %d, ppm %d), want %d..%d", tc.rng, n, len(s.Online),
					len(s.PointsPerMinute), tc.min, tc.max)
			}
		}
	})

	t.Run("silent pages", func(t *testing.T) {
		var got []overview.SilentDevice
		after, total := "", -1
		for page := 0; page < 100; page++ {
			q := url.Values{"limit": {"37"}}
			if after != "" {
				q.Set("after", after)
			}
			p := decode[overview.SilentPage](t, f.get(t, api.RoleOperator, "/api/overview/silent?"+q.Encode()))
			total = p.Total
			got = append(got, p.Devices...)
			if p.Next == nil {
				break
			}
			after = *p.Next
		}
		if total != silent || len(got) != silent {
			t.Fatalf("%d silent devices in pages, total %d; want %d", len(got), total, silent)
		}
		for i := 1; i < len(got); i++ {
			a, b := got[i-1], got[i]
			if b.LastSeen == nil && a.LastSeen != nil || a.LastSeen != nil && b.LastSeen.Before(*a.LastSeen) {
				t.Fatalf("device %d (%s, %v) listed after %s (%v): not longest silent first", i, b.DeviceID, b.LastSeen,
					a.DeviceID, a.LastSeen)
			}
		}
		if got[0].LastSeen != nil {
			t.Errorf("first silent device %s was seen at %v; the never-seen ones come first", got[0].DeviceID, got[0].LastSeen)
		}
	})

	t.Run("positions", func(t *testing.T) {
		w := f.get(t, api.RoleOperator, "/api/overview/positions", "Accept-Encoding", "gzip")
		if w.Code != http.StatusOK || w.Header().Get("Content-Encoding") != "gzip" || w.Header().Get("Content-Type") != overview.PositionsType {
			t.Fatalf("status %d, encoding %q, type %q", w.Code, w.Header().Get("Content-Encoding"), w.Header().Get("Content-Type"))
		}
		zr, err := gzip.NewReader(w.Body)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		s, err := positions.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Devices) != len(f.devs) || s.Devices[7].ID != f.devs[7].ID || s.Devices[7].Status != f.devs[7].Status {
			t.Errorf("decoded %d devices (7th %+v), want %d (%+v)", len(s.Devices), s.Devices[7], len(f.devs), f.devs[7])
		}
		plain := f.get(t, api.RoleOperator, "/api/overview/positions")
		if plain.Header().Get("Content-Encoding") != "" || !equalBytes(plain.Body.Bytes(), raw) {
			t.Errorf("without Accept-Encoding: encoding %q, %d bytes; want the %d plain bytes", plain.Header().Get("Content-Encoding"),
				plain.Body.Len(), len(raw))
		}
	})

	t.Run("a new snapshot replaces the one kept in memory", func(t *testing.T) {
		decoded := func() positions.Snapshot {
			t.Helper()
			s, err := positions.Decode(f.get(t, api.RoleOperator, "/api/overview/positions").Body.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		if n := len(decoded().Devices); n != len(f.devs) {
			t.Fatalf("%d devices, want %d", n, len(f.devs))
		}
		later := f.now.Add(time.Second)
		if err := positions.Write(context.Background(), f.table, positions.Snapshot{UpdatedAt: later, Devices: f.devs[:5]}); err != nil {
			t.Fatal(err)
		}
		if s := decoded(); len(s.Devices) != 5 || !s.UpdatedAt.Equal(later) {
			t.Errorf("after a new snapshot: %d devices at %v, want 5 at %v", len(s.Devices), s.UpdatedAt, later)
		}
		if p := decode[overview.SilentPage](t, f.get(t, api.RoleOperator, "/api/overview/silent")); p.UpdatedAt == nil || !p.UpdatedAt.Equal(later) {
			t.Errorf("silent page of snapshot %v, want %v", p.UpdatedAt, later)
		}
		// back to the fixture's fleet for the other subtests
		if err := positions.Write(context.Background(), f.table, positions.Snapshot{UpdatedAt: later.Add(time.Second), Devices: f.devs}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("positions too large for one answer", func(t *testing.T) {
		defer func(v int) { overview.MaxAnswerBytes = v }(overview.MaxAnswerBytes)
		overview.MaxAnswerBytes = 1000
		for _, tc := range []struct {
			enc  string
			want int
		}{{"", http.StatusBadRequest}, {"gzip", http.StatusServiceUnavailable}} {
			w := f.get(t, api.RoleOperator, "/api/overview/positions", "Accept-Encoding", tc.enc)
			if w.Code != tc.want || w.Header().Get("Content-Encoding") != "" {
				t.Errorf("Accept-Encoding %q: %d (encoding %q), want %d JSON", tc.enc, w.Code, w.Header().Get("Content-Encoding"), tc.want)
			}
		}
	})

	t.Run("jobs", func(t *testing.T) {
		// no job yet (the index and Recent are tested in shared/backfill): an empty list, not null
		w := f.get(t, api.RoleOperator, "/api/overview/jobs?limit=5")
		if w.Code != http.StatusOK || w.Body.String() != `{"jobs":[]}`+"\n" {
			t.Errorf("jobs: %d %q, want 200 {\"jobs\":[]}", w.Code, w.Body)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			role, target string
			want         int
		}{
			{api.RoleDevice, "/api/overview", http.StatusForbidden},
			{"", "/api/overview/positions", http.StatusForbidden},
			{api.RoleProvisioning, "/api/overview/silent", http.StatusForbidden},
			{api.RoleOperator, "/api/overview?range=2d", http.StatusBadRequest},
			{api.RoleOperator, "/api/overview?range=1d&range=7d", http.StatusBadRequest},
			{api.RoleOperator, "/api/overview?from=0", http.StatusBadRequest},
			{api.RoleOperator, "/api/overview/silent?limit=0", http.StatusBadRequest},
			{api.RoleOperator, "/api/overview/silent?limit=501", http.StatusBadRequest},
			{api.RoleOperator, "/api/overview/silent?limit=99999999999999999999", http.StatusBadRequest},
			{api.RoleOperator, "/api/overview/silent?after=abc", http.StatusBadRequest},
			{api.RoleOperator, "/api/overview/silent?after=99999999999:dev", http.StatusBadRequest},
			{api.RoleOperator, "/api/overview/silent?after=1:%22)%20or%20true", http.StatusBadRequest},
			{api.RoleOperator, "/api/overview/positions?x=1", http.StatusBadRequest},
			{api.RoleDevice, "/api/overview/jobs", http.StatusForbidden},
			{api.RoleOperator, "/api/overview/jobs?limit=51", http.StatusBadRequest},
			{api.RoleOperator, "/api/overview/jobs?limit=-1", http.StatusBadRequest},
		} {
			w := f.get(t, tc.role, tc.target)
			var body map[string]any
			if w.Code != tc.want || json.Unmarshal(w.Body.Bytes(), &body) != nil || body["error"] == nil {
				t.Errorf("%s as %q: %d %s, want %d with a JSON error", tc.target, tc.role, w.Code, w.Body, tc.want)
			}
		}
	})
}

func equalBytes(a, b []byte) bool { return string(a) == string(b) }
