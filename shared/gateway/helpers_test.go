package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

func TestMain(m *testing.M) {
	code := influxtest.Main(m)
	testenv.StopStateTables()
	os.Exit(code)
}

// staticCredentials stands in for the device registry in this package's tests: credential -> device id. The
// registry's own Authenticate is tested in shared/registry; the gateway with the real registry in localapi_test.go.
type staticCredentials struct {
	mu    sync.Mutex
	ids   map[string]string
	calls int
	err   error // when set, every lookup fails with it
}

func (s *staticCredentials) Authenticate(_ context.Context, cred string) (registry.Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return registry.Device{}, s.err
	}
	id, ok := s.ids[cred]
	if !ok {
		return registry.Device{}, api.Errorf(api.Unauthorized, "unknown credential")
	}
	return registry.Device{ID: id}, nil
}

func (s *staticCredentials) set(cred, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == "" {
		delete(s.ids, cred)
		return
	}
	s.ids[cred] = id
}

func (s *staticCredentials) lookups() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

var _ Credentials = (*staticCredentials)(nil)

// fixture is a gateway over a fresh data bucket of the shared real InfluxDB, served in-process.
type fixture struct {
	t      *testing.T
	srv    *influxtest.Server
	admin  *influx.Client
	bucket string
	creds  *staticCredentials
	g      *Service
	h      http.Handler
}

const (
	devA  = "dev-a"
	credA = "cred-a-0123456789abcdef0123456789abcdef"
)

func newFixture(t *testing.T, o Options) *fixture { return newFixtureWith(t, nil, o) }

// newFixtureWith is newFixture reading revocations from table.
func newFixtureWith(t *testing.T, table *store.Table, o Options) *fixture {
	t.Helper()
	srv := influxtest.Shared(t)
	f := &fixture{t: t, srv: srv, admin: srv.Client(t), creds: &staticCredentials{ids: map[string]string{credA: devA}}}
	if o.Bucket == "" {
		o.Bucket = srv.NewBucket(t, "gw")
	}
	f.bucket = o.Bucket
	if o.Org == "" {
		o.Org = srv.Org
	}
	g, err := NewService(f.creds, table, f.admin, o)
	if err != nil {
		t.Fatal(err)
	}
	f.g, f.h = g, api.Handler(g.Routes())
	return f
}

// req is one write request.
type req struct {
	query   string // default org, bucket of the fixture
	auth    string // default "Token credA"; "-" for none
	body    []byte
	gzip    bool
	headers map[string]string
}

// post sends r through the gateway and returns the status, the headers and the decoded JSON body (nil for 204).
func (f *fixture) post(r req) (int, http.Header, map[string]any) {
	f.t.Helper()
	q := r.query
	if q == "" {
		q = "org=" + f.srv.Org + "&bucket=" + f.bucket
	}
	body := r.body
	if r.gzip {
		body = gz(f.t, body)
	}
	hr := httptest.NewRequest("POST", "/api/v2/write?"+q, bytes.NewReader(body))
	hr.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if r.gzip {
		hr.Header.Set("Content-Encoding", "gzip")
	}
	switch r.auth {
	case "":
		hr.Header.Set("Authorization", "Token "+credA)
	case "-":
	default:
		hr.Header.Set("Authorization", r.auth)
	}
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, hr)
	return rec.Code, rec.Header(), decode(f.t, rec.Code, rec.Body.Bytes())
}

func decode(t *testing.T, status int, b []byte) map[string]any {
	t.Helper()
	if status == http.StatusNoContent {
		if len(b) != 0 {
			t.Errorf("204 with a body %q", b)
		}
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("status %d: body %q is not JSON: %v", status, b, err)
	}
	return m
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// points returns the bucket's points as "measurement,clientId field=value" strings at time t (RFC 3339), sorted by
// Flux's output order, over all time.
func (f *fixture) points() []string {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []string
	err := f.admin.QueryRows(ctx, `from(bucket: b) |> range(start: 0)`, influx.Extern{"b": f.bucket}, func(v map[string]any) error {
		b, _ := json.Marshal(v["_value"])
		out = append(out, strings.Join([]string{str(v["_measurement"]), str(v["clientId"]), str(v["_field"]), string(b),
			v["_time"].(time.Time).UTC().Format(time.RFC3339Nano)}, " "))
		return nil
	})
	if err != nil {
		f.t.Fatalf("querying the bucket: %v", err)
	}
	sort.Slice(out, func(i, j int) bool {
		return timeOf(out[i]) < timeOf(out[j]) || timeOf(out[i]) == timeOf(out[j]) && out[i] < out[j]
	})
	return out
}

// timeOf is the time at the end of a points() entry.
func timeOf(p string) string { return p[strings.LastIndexByte(p, ' ')+1:] }

func str(v any) string {
	s, _ := v.(string)
	return s
}

// readAll is io.ReadAll for a test.
func readAll(t testing.TB, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newRetentionBucket creates a bucket with the given retention, deleted at the end of the test.
func newRetentionBucket(t *testing.T, srv *influxtest.Server, retention time.Duration) string {
	t.Helper()
	name := "gwret_" + influxtest.RandomID(6)
	c := srv.Client(t)
	if _, _, err := c.EnsureBucket(t.Context(), name, retention); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.DeleteBucket(ctx, name)
	})
	return name
}

func apiUnavailable() error { return api.Errorf(api.Unavailable, "registry down") }
