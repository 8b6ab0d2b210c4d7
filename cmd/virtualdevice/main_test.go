package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/authztest"
	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/deviceapi"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

// apiServer serves the real registry routes over a real InfluxDB and records the bearer of each env request.
type apiServer struct {
	*httptest.Server
	cfg     config.Config
	admin   *influx.Client
	table   *store.Table
	mu      sync.Mutex
	bearers []string
}

func newAPI(t *testing.T) *apiServer {
	t.Helper()
	srv := influxtest.Shared(t)
	a := &apiServer{admin: srv.Client(t), table: influxtest.StateTable(t)}
	a.cfg = srv.Config(srv.NewBucket(t, "vddata"))
	a.cfg.MaxDevices = 100
	// the operator's decision for every request: these tests are about the device client, not the authorizer
	// (shared/authz tests the decisions; localapi_test runs the client against the real one)
	h := api.Handler(authztest.Operator(deviceapi.NewService(registry.New(a.admin, a.cfg, a.table)).Routes()))
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/env/") {
			a.mu.Lock()
			a.bearers = append(a.bearers, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
			a.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(a.Close)
	return a
}

// points counts the device's Temperature points written at or after since.
func (a *apiServer) points(t *testing.T, id string, since time.Time) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int64
	err := a.admin.QueryRows(ctx, `from(bucket: bucket) |> range(start: since)
  |> filter(fn: (r) => r._measurement == "environment" and r._field == "Temperature" and r.clientId == deviceId) |> count()`,
		influx.Extern{"bucket": a.cfg.Bucket, "since": since, "deviceId": id}, func(v map[string]any) error {
			n += v["_value"].(int64)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestVirtualDeviceWritesWithItsOwnToken(t *testing.T) {
	a := newAPI(t)
	id := "virt-" + influxtest.RandomID(3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	n, err := run(ctx, options{API: a.URL, ID: id, Key: "provisioning-key", Interval: 50 * time.Millisecond,
		Refresh: 120 * time.Millisecond, Count: 6}, quiet())
	if err != nil || n != 6 {
		t.Fatalf("run = %d, %v; want 6 points", n, err)
	}
	if got := a.points(t, id, start.Add(-time.Second)); got != 6 {
		t.Errorf("InfluxDB holds %d points of %s, want 6", got, id)
	}
	a.mu.Lock()
	bearers := append([]string(nil), a.bearers...)
	a.mu.Unlock()
	if len(bearers) < 2 {
		t.Fatalf("configuration read %d times, want the first read and at least one refresh", len(bearers))
	}
	reg := registry.New(a.admin, a.cfg, a.table)
	dev, err := reg.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if bearers[0] != "provisioning-key" {
		t.Errorf("first configuration read with %q, want the provisioning key", bearers[0])
	}
	for i, b := range bearers[1:] {
		if b != dev.Token.Reveal() {
			t.Errorf("refresh %d authenticated with something else than the device's own token", i+1)
		}
	}
}

// TestVirtualDevicePicksUpRotatedToken rotates the device's token while it runs: the old token stops working in
// InfluxDB, the device re-reads its configuration and keeps writing with the new one.
func TestVirtualDevicePicksUpRotatedToken(t *testing.T) {
	a := newAPI(t)
	id := "rot-" + influxtest.RandomID(3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	var written int
	go func() {
		var err error
		// a long refresh: only the refused token can make it re-read the configuration
		written, err = run(ctx, options{API: a.URL, ID: id, Interval: 50 * time.Millisecond, Refresh: time.Hour, Count: 20}, quiet())
		done <- err
	}()
	reg := registry.New(a.admin, a.cfg, a.table)
	var before registry.Device
	for i := 0; i < 200; i++ { // wait (bounded) for the registration
		d, err := reg.Get(ctx, id)
		if err == nil {
			before = d
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if before.Token.Empty() {
		t.Fatal("the device never registered")
	}
	time.Sleep(200 * time.Millisecond)
	resp, err := http.Post(a.URL+"/api/devices/"+id+"/rotate", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("rotate answered %d", resp.StatusCode)
	}
	rotated := time.Now()
	if err := <-done; err != nil || written != 20 {
		t.Fatalf("run = %d, %v; want 20 points", written, err)
	}
	if got := a.points(t, id, rotated); got < 5 {
		t.Errorf("%d points after the rotation, want the device to keep writing with the new token", got)
	}
	after, err := reg.Get(ctx, id)
	if err != nil || after.Token == before.Token {
		t.Fatalf("token not rotated: %v", err)
	}
	a.mu.Lock()
	last := a.bearers[len(a.bearers)-1]
	a.mu.Unlock()
	if last != before.Token.Reveal() {
		t.Errorf("the device re-read its configuration without its (old) token, want it to present its own token")
	}
}

func TestVirtualDeviceRefusesBadID(t *testing.T) {
	if _, err := run(context.Background(), options{API: "http://127.0.0.1:1", ID: "bad id"}, quiet()); err == nil {
		t.Error("run accepted an invalid device id")
	}
}
