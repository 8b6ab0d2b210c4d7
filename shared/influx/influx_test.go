package influx_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

// shared is the shared server, an admin client of it and a context for one test.
func shared(t *testing.T) (*influxtest.Server, *influx.Client, context.Context) {
	t.Helper()
	srv := influxtest.Shared(t)
	return srv, srv.Client(t), ctxT(t)
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rawWrite writes line protocol with any token, returning the HTTP status (how a device writes).
func rawWrite(t *testing.T, srv *influxtest.Server, token, bucket, lp string) int {
	t.Helper()
	u := srv.URL + "/api/v2/write?" + url.Values{"org": {srv.Org}, "bucket": {bucket}, "precision": {"s"}}.Encode()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(lp))
	req.Header.Set("Authorization", "Token "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// rawQuery runs Flux with any token, returning status and body.
func rawQuery(t *testing.T, srv *influxtest.Server, token, flux string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v2/query?org="+url.QueryEscape(srv.Org), strings.NewReader(flux))
	req.Header.Set("Authorization", "Token "+token)
	req.Header.Set("Content-Type", "application/vnd.flux")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestOnboardedServerAndOrgID(t *testing.T) {
	srv := influxtest.Shared(t)
	c := srv.Client(t)
	id, err := c.OrgID(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if id != srv.OrgID {
		t.Errorf("OrgID = %q, want %q", id, srv.OrgID)
	}
	status, version, err := c.Health(ctxT(t))
	if err != nil || status != "pass" || !strings.HasPrefix(version, "2.") {
		t.Errorf("Health = %q %q %v, want pass 2.x nil", status, version, err)
	}
}

func TestEnsureBucketIsIdempotent(t *testing.T) {
	srv, c, ctx := shared(t)
	name := "ensure_" + influxtest.RandomID(4)
	t.Cleanup(func() { _ = c.DeleteBucket(context.Background(), name) })
	id1, created1, err := c.EnsureBucket(ctx, name, 24*time.Hour)
	if err != nil || !created1 {
		t.Fatalf("first EnsureBucket = %q %v %v, want created", id1, created1, err)
	}
	// a second client has no cache: it must find the same bucket
	id2, created2, err := srv.Client(t).EnsureBucket(ctx, name, 24*time.Hour)
	if err != nil || created2 || id2 != id1 {
		t.Fatalf("second EnsureBucket = %q %v %v, want %q false nil", id2, created2, err, id1)
	}
	if _, err := c.BucketID(ctx, "no_such_bucket_"+influxtest.RandomID(4)); !errors.Is(err, influx.ErrNotFound) {
		t.Errorf("BucketID(missing) error = %v, want ErrNotFound", err)
	}
}

// A bucket-scoped authorization writes and reads its bucket only: 403 writing another bucket, 404 reading it,
// and 401 once revoked.
func TestBucketAuthorizationIsScoped(t *testing.T) {
	srv, c, ctx := shared(t)
	data := srv.NewBucket(t, "data")
	other := srv.NewBucket(t, "other")
	dataID, err := c.BucketID(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	desc := "test: " + influxtest.RandomID(4)
	a, err := c.CreateBucketAuthorization(ctx, desc, dataID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Token == "" || a.ID == "" || !a.GrantsReadWrite(dataID) {
		t.Fatalf("created authorization = %+v, want id, token, read+write on %s", a, dataID)
	}
	now := time.Now().Unix()
	if got := rawWrite(t, srv, a.Token, data, fmt.Sprintf("m,clientId=d1 v=1 %d", now)); got != http.StatusNoContent {
		t.Errorf("write own bucket = %d, want 204", got)
	}
	if got := rawWrite(t, srv, a.Token, other, fmt.Sprintf("m v=1 %d", now)); got != http.StatusForbidden {
		t.Errorf("write other bucket = %d, want 403", got)
	}
	if got, _ := rawQuery(t, srv, a.Token, fmt.Sprintf(`from(bucket: %q) |> range(start: -1h)`, other)); got != http.StatusNotFound {
		t.Errorf("read other bucket = %d, want 404", got)
	}
	found, err := c.FindAuthorizations(ctx, desc)
	if err != nil || len(found) != 1 || found[0].ID != a.ID {
		t.Fatalf("FindAuthorizations = %+v %v, want exactly %s", found, err, a.ID)
	}
	if err := c.DeleteAuthorization(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAuthorization(ctx, a.ID); err != nil {
		t.Errorf("deleting twice = %v, want nil", err)
	}
	if _, err := c.GetAuthorization(ctx, a.ID); !errors.Is(err, influx.ErrNotFound) {
		t.Errorf("GetAuthorization(revoked) = %v, want ErrNotFound", err)
	}
	if got := rawWrite(t, srv, a.Token, data, fmt.Sprintf("m v=2 %d", now)); got != http.StatusUnauthorized {
		t.Errorf("write with revoked token = %d, want 401", got)
	}
}

// Caller values reach Flux only through extern: whatever they hold, they are compared as data.
func TestQueryExternAndFieldsAsCols(t *testing.T) {
	srv, c, ctx := shared(t)
	bucket := srv.NewBucket(t, "q")
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Minute)
	var lp bytes.Buffer
	for i := 0; i < 3; i++ {
		fmt.Fprintf(&lp, "environment,clientId=dev1 Temperature=%d.5,CO2=%di %d\n", 20+i, 400+i, base.Add(time.Duration(i)*time.Minute).UnixNano())
		fmt.Fprintf(&lp, "environment,clientId=dev2 Temperature=99,CO2=1i %d\n", base.Add(time.Duration(i)*time.Minute).UnixNano())
	}
	if err := c.WriteLines(ctx, bucket, lp.Bytes()); err != nil {
		t.Fatal(err)
	}
	const flux = `import "influxdata/influxdb/v1"
from(bucket: bucket)
  |> range(start: start, stop: stop)
  |> filter(fn: (r) => r._measurement == "environment" and r.clientId == deviceId)
  |> v1.fieldsAsCols()
  |> keep(columns: ["_time", "Temperature", "CO2"])`
	tests := []struct {
		name     string
		deviceID string
		wantRows int
	}{
		{"matching device", "dev1", 3},
		{"injection attempt is just a string", `dev1" or r.clientId != "`, 0},
		{"newline and quotes", "dev1\n|> drop(columns: [\"_value\"])", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rows []map[string]any
			err := c.QueryRows(ctx, flux, influx.Extern{"bucket": bucket, "deviceId": tc.deviceID,
				"start": base.Add(-time.Minute), "stop": time.Now().Add(time.Minute)}, func(v map[string]any) error {
				rows = append(rows, v)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != tc.wantRows {
				t.Fatalf("rows = %d, want %d: %v", len(rows), tc.wantRows, rows)
			}
			for i, r := range rows {
				if got, want := r["Temperature"], float64(20+i)+0.5; got != want {
					t.Errorf("row %d Temperature = %v, want %v", i, got, want)
				}
				if got, want := r["CO2"], int64(400+i); got != want {
					t.Errorf("row %d CO2 = %v, want %v", i, got, want)
				}
			}
		})
	}
	// the other extern literal kinds are accepted by the server
	var got []map[string]any
	err := c.QueryRows(ctx, `import "array"
array.from(rows: [{i: i, f: f, b: b, d: int(v: d)}])`, influx.Extern{"i": 42, "f": 1.5, "b": true, "d": 90 * time.Second},
		func(v map[string]any) error { got = append(got, v); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0]["i"] != int64(42) || got[0]["f"] != 1.5 || got[0]["b"] != true || got[0]["d"] != int64(90*time.Second) {
		t.Errorf("literal round trip = %v", got)
	}
}

func TestDeleteByPredicate(t *testing.T) {
	srv, c, ctx := shared(t)
	bucket := srv.NewBucket(t, "del")
	ts := time.Now().Add(-time.Minute).UnixNano()
	lp := fmt.Sprintf("environment,clientId=a v=1 %d\nenvironment,clientId=b v=2 %d\n", ts, ts)
	if err := c.WriteLines(ctx, bucket, []byte(lp)); err != nil {
		t.Fatal(err)
	}
	pred, err := influx.Predicate("_measurement", "environment", "clientId", "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, bucket, influx.AllTimeStart, influx.AllTimeStop, pred); err != nil {
		t.Fatal(err)
	}
	var left []string
	err = c.QueryRows(ctx, `from(bucket: bucket) |> range(start: -1h)`, influx.Extern{"bucket": bucket}, func(v map[string]any) error {
		left = append(left, v["clientId"].(string))
		return nil
	})
	if err != nil || len(left) != 1 || left[0] != "b" {
		t.Errorf("after delete rows = %v %v, want [b]", left, err)
	}
}

func TestPredicateRejectsUnsafeTerms(t *testing.T) {
	for _, kv := range [][]string{
		{"clientId", `a" OR "1"="1`}, {"clientId", "a b"}, {"client Id", "a"}, {"clientId", ""}, {"clientId"},
	} {
		if p, err := influx.Predicate(kv...); err == nil {
			t.Errorf("Predicate(%q) = %q, want error", kv, p)
		}
	}
}

// Writes retry on 429/503 honouring Retry-After, then succeed; the server sees the same gzip body each time.
func TestWriteRetriesHonouringRetryAfter(t *testing.T) {
	srv := influxtest.Shared(t)
	bucket := srv.NewBucket(t, "retry")
	target, _ := url.Parse(srv.URL)
	var calls atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("write without gzip")
		}
		if n <= 2 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader([]int{http.StatusTooManyRequests, http.StatusServiceUnavailable}[n-1])
			return
		}
		r.URL.Scheme, r.URL.Host, r.Host, r.RequestURI = target.Scheme, target.Host, target.Host, ""
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	defer proxy.Close()
	c := influx.New(proxy.URL, srv.Token, srv.Org, influx.Options{})
	defer c.Close()
	start := time.Now()
	if err := c.WriteLines(ctxT(t), bucket, []byte(fmt.Sprintf("m v=1 %d\n", time.Now().UnixNano()))); err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("requests = %d, want 3 (429, 503, success)", got)
	}
	if waited := time.Since(start); waited < 2*time.Second {
		t.Errorf("waited %s, want >= 2s (two Retry-After: 1)", waited)
	}
	// a non-retryable answer fails at once, with the status but never the token in the message
	bad := influx.New(srv.URL, "wrong-token-value", srv.Org, influx.Options{})
	defer bad.Close()
	err := bad.WriteLines(ctxT(t), bucket, []byte("m v=1\n"))
	if influx.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("StatusOf(%v) = %d, want 401", err, influx.StatusOf(err))
	}
	if strings.Contains(err.Error(), "wrong-token-value") || strings.Contains(err.Error(), srv.Token) {
		t.Errorf("error message leaks a token: %v", err)
	}
}

func TestOneOfMatchesExactlyTheValues(t *testing.T) {
	re := influx.OneOf([]string{"dev.1", "dev-2", "a_b"})
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"dev.1", true}, {"dev-2", true}, {"a_b", true},
		{"devx1", false}, {"dev.10", false}, {"xdev-2", false}, {"", false}, {"dev.1|dev-2", false},
	} {
		if got := re.MatchString(tc.in); got != tc.want {
			t.Errorf("OneOf(...).MatchString(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// An inactive authorization opens nothing until activated; Grants sees the bucket it covers; a bucket setup never
// created is a deployment fault (503), not the caller's 404.
func TestInactiveAuthorizationAndGrants(t *testing.T) {
	srv, c, ctx := shared(t)
	data, other := srv.NewBucket(t, "data"), srv.NewBucket(t, "other")
	a, err := c.CreateInactiveAuthorization(ctx, "IoT Center: inactive-"+influxtest.RandomID(4), data)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.DeleteAuthorization(context.Background(), a.ID) })
	now := time.Now().Unix()
	if got := rawWrite(t, srv, a.Token, data, fmt.Sprintf("m v=1 %d", now)); got == http.StatusNoContent {
		t.Errorf("write while inactive = %d, want a refusal", got)
	}
	if err := c.ActivateAuthorization(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if got := rawWrite(t, srv, a.Token, data, fmt.Sprintf("m v=1 %d", now)); got != http.StatusNoContent {
		t.Errorf("write once active = %d, want 204", got)
	}
	if a, err = c.GetAuthorization(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		bucket string
		want   bool
	}{{data, true}, {other, false}} {
		if got, err := c.Grants(ctx, a, tc.bucket); err != nil || got != tc.want {
			t.Errorf("Grants(%s) = %v, %v; want %v", tc.bucket, got, err, tc.want)
		}
	}
	missing := "no_such_bucket_" + influxtest.RandomID(4)
	if _, err := c.Grants(ctx, a, missing); !api.IsCode(err, api.Unavailable) {
		t.Errorf("Grants(missing bucket) = %v, want unavailable", err)
	}
	if _, err := c.CreateInactiveAuthorization(ctx, "IoT Center: never", missing); !api.IsCode(err, api.Unavailable) {
		t.Errorf("CreateInactiveAuthorization(missing bucket) = %v, want unavailable", err)
	}
}
