package measurements_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/iot-center/iot-center-serverless/internal/authztest"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/measurements"
	"github.com/iot-center/iot-center-serverless/shared/presence"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

// t0 is the start of the known data: one hour of one-minute points per device.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fixture is a real InfluxDB with known data for two registered devices, reached through a counting (and
// optionally delaying) reverse proxy, and the handler under test built over it.
type fixture struct {
	h       http.Handler
	queries atomic.Int64 // /api/v2/query requests that reached InfluxDB (registry lookups included)
	delay   atomic.Int64 // nanoseconds to hold data queries (not registry lookups) before forwarding
	bucket  string
	direct  *influx.Client     // straight to InfluxDB (test setup)
	c       *influx.Client     // through the proxy (the handler's)
	reg     *registry.Registry // through the proxy
}

// handler builds the handler under test with a query cap and a fixed "now".
func (f *fixture) handler(timeout time.Duration, now time.Time) http.Handler {
	return authztest.Operator(measurements.NewService(f.c, f.reg, f.bucket, timeout, measurements.WithClock(func() time.Time { return now })).Routes())
}

// newHandlerTimeout replaces f's handler by one with a shorter query cap.
func newHandlerTimeout(t *testing.T, f *fixture, timeout time.Duration) http.Handler {
	t.Helper()
	return f.handler(timeout, t0.Add(time.Hour))
}

// newFixtureAt shares f's data and registry with a handler whose clock reads now.
func newFixtureAt(t *testing.T, f *fixture, now time.Time) *fixture {
	t.Helper()
	g := &fixture{bucket: f.bucket, direct: f.direct, c: f.c, reg: f.reg}
	g.h = g.handler(5*time.Second, now)
	return g
}

// knownLines renders dev1's and dev2's hour of data. dev1: Temperature = i+0.25, Humidity = 60-i, CO2 = 400+i
// (integer), TVOC = 2i (integer), Lat/Lon constant, no Pressure; its sensor tag changes at minute 35 so one
// 10-minute window spans two series. dev2: Temperature = 1000+i, CO2 = 9000+i (never in dev1's answers).
func knownLines() []byte {
	var b bytes.Buffer
	for i := 0; i < 60; i++ {
		ts := t0.Add(time.Duration(i) * time.Minute).UnixNano()
		// the later series sorts first, so nothing may rely on series order for time order
		sensor := "SHT31"
		if i >= 35 {
			sensor = "BME280"
		}
		fmt.Fprintf(&b, "environment,clientId=dev1,TemperatureSensor=%s Temperature=%g,Humidity=%d,CO2=%di,TVOC=%di,Lat=50.1,Lon=14.4 %d\n",
			sensor, float64(i)+0.25, 60-i, 400+i, 2*i, ts)
		fmt.Fprintf(&b, "environment,clientId=dev2,TemperatureSensor=BME280 Temperature=%d,CO2=%di %d\n", 1000+i, 9000+i, ts)
		if i%10 == 9 {
			// the write gateway's presence digest lives in the same bucket: no query may read its string field
			fmt.Fprintf(&b, "%s,%s=3 %s=\"dev1:%s:50.1:14.4:10;dev2:%s:::10\" %d\n", presence.Measurement, presence.TagSlot,
				presence.Field, strconv.FormatInt(ts/1e6, 36), strconv.FormatInt(ts/1e6, 36), ts+1)
		}
	}
	return b.Bytes()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := influxtest.Shared(t)
	f := &fixture{direct: srv.Client(t)}
	f.bucket = srv.NewBucket(t, "meas")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := f.direct.WriteLines(ctx, f.bucket, knownLines()); err != nil {
		t.Fatal(err)
	}

	target, _ := url.Parse(srv.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v2/query" {
			f.queries.Add(1)
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if d := time.Duration(f.delay.Load()); d > 0 && bytes.Contains(body, []byte("clientId == qDevice")) {
				select {
				case <-time.After(d):
				case <-r.Context().Done():
					return
				}
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	c := influx.New(proxy.URL, srv.Token, srv.Org, influx.Options{})
	t.Cleanup(c.Close)

	cfg := srv.Config(f.bucket)
	cfg.InfluxURL, cfg.InfluxPublicURL, cfg.BucketDownsampled = proxy.URL, proxy.URL, f.bucket+"_1h"
	f.c, f.reg = c, registry.New(c, cfg, influxtest.StateTable(t))
	for _, id := range []string{"dev1", "dev2"} {
		if _, _, err := f.reg.Register(ctx, id); err != nil {
			t.Fatalf("registering %s: %v", id, err)
		}
	}
	f.h = f.handler(5*time.Second, t0.Add(time.Hour))
	return f
}

// get calls the handler and returns status and body.
func (f *fixture) get(t *testing.T, path, accept string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

type measResp struct {
	DeviceID string                `json:"deviceId"`
	Start    string                `json:"start"`
	Stop     string                `json:"stop"`
	Every    string                `json:"every"`
	Fn       string                `json:"fn"`
	Fields   []string              `json:"fields"`
	Time     []string              `json:"time"`
	Values   map[string][]*float64 `json:"values"`
}

// measurementsOK fetches path as JSON and fails unless the answer is a well-formed 200 table.
func (f *fixture) measurementsOK(t *testing.T, path string) measResp {
	t.Helper()
	code, body := f.get(t, path, "")
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d %s, want 200", path, code, body)
	}
	var m measResp
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("GET %s: invalid JSON %v: %s", path, err, body)
	}
	for _, fld := range m.Fields {
		if len(m.Values[fld]) != len(m.Time) {
			t.Fatalf("GET %s: %s has %d values for %d times", path, fld, len(m.Values[fld]), len(m.Time))
		}
	}
	if len(m.Values) != len(m.Fields) {
		t.Fatalf("GET %s: values has %d series for fields %v", path, len(m.Values), m.Fields)
	}
	return m
}

func minute(i int) string { return t0.Add(time.Duration(i) * time.Minute).Format(time.RFC3339) }

func approx(a, b float64) bool { d := a - b; return d < 1e-9 && d > -1e-9 }

// errorBody decodes a 4xx body.
func errorBody(t *testing.T, body []byte) (msg, param string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
		Param string `json:"param"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body is not JSON: %s", body)
	}
	return e.Error, e.Param
}

// wantValues checks one series against want (nil = null).
func wantValues(t *testing.T, what string, got []*float64, want []*float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		switch {
		case want[i] == nil && got[i] != nil:
			t.Errorf("%s[%d] = %v, want null", what, i, *got[i])
		case want[i] != nil && got[i] == nil:
			t.Errorf("%s[%d] = null, want %v", what, i, *want[i])
		case want[i] != nil && !approx(*got[i], *want[i]):
			t.Errorf("%s[%d] = %v, want %v", what, i, *got[i], *want[i])
		}
	}
}

func fp(v float64) *float64 { return &v }

func series(n int, f func(k int) *float64) []*float64 {
	out := make([]*float64, n)
	for k := range out {
		out[k] = f(k)
	}
	return out
}
