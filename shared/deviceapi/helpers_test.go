package deviceapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

// fixture is a fresh pair of buckets (data, registry) on the shared real InfluxDB.
type fixture struct {
	t     *testing.T
	srv   *influxtest.Server
	cfg   config.Config
	admin *influx.Client
	reg   *registry.Registry
	h     http.Handler
	table *store.Table
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := influxtest.Shared(t)
	cfg := srv.Config(srv.NewBucket(t, "data"))
	cfg.InfluxPublicURL = "http://influx.example.test:8086"
	f := &fixture{t: t, srv: srv, cfg: cfg, admin: srv.Client(t), table: influxtest.StateTable(t)}
	f.reg, f.h = f.instance()
	return f
}

// instance is an independent handler instance: its own client and caches, as a separate Lambda would have.
func (f *fixture) instance() (*registry.Registry, http.Handler) {
	f.t.Helper()
	c := influx.New(f.cfg.InfluxURL, f.cfg.Token.Reveal(), f.cfg.Org, influx.Options{})
	f.t.Cleanup(c.Close)
	reg := registry.New(c, f.cfg, f.table)
	return reg, asOperator(NewService(reg).Routes())
}

// asOperator serves h with the operator's authorizer decision (without a generation), through api.Handler.
func asOperator(h http.Handler) http.Handler {
	return asCaller(api.Caller{Role: api.RoleOperator, Generation: -1}, h)
}

// asCaller serves h with the authorizer decision c, through api.Handler.
func asCaller(c api.Caller, h http.Handler) http.Handler {
	inner := api.Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(w, r.WithContext(api.WithCaller(r.Context(), c)))
	})
}

// newID returns a device id unique on the shared server; its authorizations are revoked at the end of the test.
func (f *fixture) newID(prefix string) string {
	f.t.Helper()
	id := prefix + "-" + influxtest.RandomID(4)
	f.srv.RevokeAtCleanup(f.t, registry.Description(id))
	return id
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// do sends one request through h; path segments are given unescaped and escaped here (ids may hold anything).
func do(t *testing.T, h http.Handler, method, path string, query string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "/", nil)
	r.URL = &url.URL{Path: path, RawPath: escapePath(path), RawQuery: query}
	r.RequestURI = ""
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// escapePath escapes each segment after /api/x/ so an id holding '/' or '?' stays one segment.
func escapePath(p string) string {
	for _, pre := range []string{"/api/env/", "/api/devices/"} {
		if rest, ok := strings.CutPrefix(p, pre); ok {
			suffix := ""
			if s, ok := strings.CutSuffix(rest, "/rotate"); ok && !strings.Contains(s, "/") {
				rest, suffix = s, "/rotate"
			}
			return pre + url.PathEscape(rest) + suffix
		}
	}
	return p
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decoding %q: %v", w.Body.String(), err)
	}
	return v
}

// envOK fetches the device's configuration and fails unless it is 200.
func (f *fixture) envOK(h http.Handler, id string) EnvConfig {
	f.t.Helper()
	return f.expect(h, "GET", "/api/env/"+id, http.StatusOK)
}

// expect sends a request without a query and fails unless the answer has status want; it returns the
// configuration the answer holds.
func (f *fixture) expect(h http.Handler, method, path string, want int) EnvConfig {
	f.t.Helper()
	w := do(f.t, h, method, path, "")
	if w.Code != want {
		f.t.Fatalf("%s %s: got %d %s, want %d", method, path, w.Code, w.Body.String(), want)
	}
	return decode[EnvConfig](f.t, w)
}

// auths lists the device's authorizations (admin view).
func (f *fixture) auths(id string) []influx.Authorization {
	f.t.Helper()
	as, err := f.admin.FindAuthorizations(ctxT(f.t), registry.Description(id))
	if err != nil {
		f.t.Fatalf("listing authorizations: %v", err)
	}
	return as
}

// counts is the number of authorizations in the org and of registry records.
func (f *fixture) counts() (auths, records int) {
	f.t.Helper()
	as, err := f.admin.ListAuthorizations(ctxT(f.t))
	if err != nil {
		f.t.Fatalf("listing authorizations: %v", err)
	}
	ds, err := f.reg.List(ctxT(f.t))
	if err != nil {
		f.t.Fatalf("listing devices: %v", err)
	}
	return len(as), len(ds)
}

// deviceClient talks to InfluxDB with a device token, without retries (a refusal must show at once).
func (f *fixture) deviceClient(token string) *influx.Client {
	f.t.Helper()
	c := influx.New(f.srv.URL, token, f.cfg.Org, influx.Options{Retry: influx.RetryPolicy{MaxAttempts: 1, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}})
	f.t.Cleanup(c.Close)
	return c
}

// writeAs writes one environment point for id with token to bucket and returns InfluxDB's status (204 on success).
func (f *fixture) writeAs(token, bucket, id string, v float64) int {
	f.t.Helper()
	lp := "environment,clientId=" + id + " Temperature=" + strconv.FormatFloat(v, 'f', -1, 64) + " " + strconv.FormatInt(time.Now().Add(-time.Minute).UnixNano(), 10)
	err := f.deviceClient(token).WriteLines(ctxT(f.t), bucket, []byte(lp))
	if err == nil {
		return http.StatusNoContent
	}
	if s := influx.StatusOf(err); s != 0 {
		return s
	}
	f.t.Fatalf("write: %v", err)
	return 0
}

const readFlux = `from(bucket: b) |> range(start: -1h) |> filter(fn: (r) => r._measurement == "environment" and r.clientId == id)`

// readAs queries the device's points with token; it returns the values and InfluxDB's status (200 on success).
func (f *fixture) readAs(token, bucket, id string) ([]float64, int) {
	f.t.Helper()
	var out []float64
	err := f.deviceClient(token).QueryRows(ctxT(f.t), readFlux, influx.Extern{"b": bucket, "id": id}, func(v map[string]any) error {
		if x, ok := v["_value"].(float64); ok {
			out = append(out, x)
		}
		return nil
	})
	if err == nil {
		return out, http.StatusOK
	}
	if s := influx.StatusOf(err); s != 0 {
		return nil, s
	}
	f.t.Fatalf("query: %v", err)
	return nil, 0
}
