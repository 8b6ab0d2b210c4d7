package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/localapitest"
	"github.com/iot-center/iot-center-serverless/internal/syncbuf"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// TestThroughLocalAPI runs the virtual device against the local API (provisioning key, then its own token through
// the authorizer), then backfills its last day through the real fan-out (async Lambda invokes of the worker
// function) and polls coverage until 100%.
func TestThroughLocalAPI(t *testing.T) {
	l := localapitest.Start(t, influxtest.Shared(t), localapitest.Options{PoolFor: "BackfillWorkerFunction=2,EnvConfigFunction=2"})
	id := "e2e-" + influxtest.RandomID(3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	n, err := run(ctx, options{API: l.URL, ID: id, Key: l.DeviceKey, Interval: 100 * time.Millisecond,
		Refresh: 250 * time.Millisecond, Count: 8}, quiet())
	if err != nil || n != 8 {
		t.Fatalf("virtual device: %d points, %v; want 8", n, err)
	}
	admin := l.Influx.Client(t)
	var points int64
	err = admin.QueryRows(ctx, `from(bucket: "iot_center") |> range(start: since)
  |> filter(fn: (r) => r._measurement == "environment" and r._field == "CO2" and r.clientId == deviceId) |> count()`,
		influx.Extern{"since": start.Add(-time.Second), "deviceId": id}, func(v map[string]any) error {
			points += v["_value"].(int64)
			return nil
		})
	if err != nil || points != 8 {
		t.Errorf("InfluxDB holds %d CO2 points of the device (%v), want 8", points, err)
	}
	// a device's provisioning key cannot read an existing device's configuration (its token)
	if ans, err := l.Send("GET", "/api/env/"+id, l.DeviceKey, ""); err != nil || ans.Status/100 == 2 {
		t.Errorf("provisioning key read an existing device's configuration: %d %v", ans.Status, err)
	}

	status, plan := l.Call(t, "POST", "/api/devices/"+id+"/write-missing", "")
	if status != http.StatusAccepted || plan["state"] != "planning" {
		t.Fatalf("write-missing %d %v, want 202 and a planning job", status, plan)
	}
	// chunks follow UTC days (one per day the window touches, trimmed to its incomplete hours): 8 for 7 days
	// unless the window starts at midnight
	wantChunks := float64(8)
	if from, _ := time.Parse(time.RFC3339, fmt.Sprint(plan["from"])); from.Hour() == 0 && from.Minute() == 0 {
		wantChunks = 7
	}
	var job map[string]any
	for i := 0; i < 240; i++ { // the job route, polled as a client does, bounded (2 minutes)
		_, job = l.Call(t, "GET", "/api/write-missing/jobs/"+fmt.Sprint(plan["jobId"]), "")
		if job["state"] != "planning" && job["state"] != "running" {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if job["state"] != "done" || job["chunks"] != wantChunks || job["chunksDone"] != wantChunks || job["devicesDone"] != float64(1) {
		t.Fatalf("job %v, want done in %v chunks", job, wantChunks)
	}
	// the overview lists it: its recent-jobs entry passed the write-missing function's policy (the local API
	// checks every DynamoDB call against the template's policies, as AWS does)
	if _, recent := l.Call(t, "GET", "/api/overview/jobs?limit=5", ""); !strings.Contains(fmt.Sprint(recent["jobs"]), fmt.Sprint(plan["jobId"])) {
		t.Errorf("overview jobs %v, want job %v listed", recent, plan["jobId"])
	}
	q := fmt.Sprintf("/api/devices/%s/write-missing?from=%s&to=%s", id, plan["from"], plan["to"])
	var cov map[string]any
	for i := 0; i < 240; i++ { // poll as a client does, bounded (2 minutes)
		_, cov = l.Call(t, "GET", q, "")
		if cov["percent"] == float64(100) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if cov["percent"] != float64(100) || cov["present"] != float64(10080) {
		t.Fatalf("coverage %v, want 100%% of 10,080 minutes", cov)
	}
	// the fixed window stays at 100%
	if _, again := l.Call(t, "GET", q, ""); again["percent"] != float64(100) {
		t.Errorf("coverage later %v, want it to stay at 100%%", again)
	}
	// the worker wrote the hourly aggregates of the backfilled hours (the dashboard reads them for long windows):
	// every backfilled minute counted, except those of the hour in progress, left to the hourly task
	var counted float64
	err = admin.QueryRows(ctx, `from(bucket: "iot_center_1h") |> range(start: 0)
  |> filter(fn: (r) => r._measurement == "environment_1h" and r._field == "Temperature" and r.agg == "count" and r.clientId == deviceId)`,
		influx.Extern{"deviceId": id}, func(v map[string]any) error {
			counted += v["_value"].(float64)
			return nil
		})
	// (10,080 when the hour turned before the worker ran)
	to, _ := time.Parse(time.RFC3339, fmt.Sprint(plan["to"]))
	if want := float64(10080 - to.Minute()); err != nil || (counted != want && counted != 10080) {
		t.Errorf("hourly counts sum to %v (%v), want %v", counted, err, want)
	}
}

// countPoints counts the device's CO2 points written at or after since.
func countPoints(t *testing.T, c *influx.Client, id string, since time.Time) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int64
	err := c.QueryRows(ctx, `from(bucket: "iot_center") |> range(start: since)
  |> filter(fn: (r) => r._measurement == "environment" and r._field == "CO2" and r.clientId == deviceId) |> count()`,
		influx.Extern{"since": since, "deviceId": id}, func(v map[string]any) error {
			n += v["_value"].(int64)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLifecycleThroughLocalAPI is a device's life through `make run`'s local API: provisioned once with the
// provisioning key, restarted without it (the kept credential), its credential rotated by the operator (it says so,
// waits, and runs on with the configuration handed over), then deleted.
func TestLifecycleThroughLocalAPI(t *testing.T) {
	l := localapitest.Start(t, influxtest.Shared(t), localapitest.Options{})
	admin := l.Influx.Client(t)
	id := "life-" + influxtest.RandomID(3)
	dir := t.TempDir()
	state, handover := filepath.Join(dir, "devices", id+".json"), filepath.Join(dir, "handover.json")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := options{API: l.URL, ID: id, State: state, Handover: handover, Interval: 100 * time.Millisecond,
		Refresh: time.Hour, Poll: 100 * time.Millisecond, Count: 3}

	// 1. provision: the provisioning key once, the credential kept in a private state file
	first := base
	first.Key = l.DeviceKey
	start := time.Now()
	if n, err := run(ctx, first, quiet()); err != nil || n != 3 {
		t.Fatalf("first start: %d points, %v; want 3", n, err)
	}
	st, err := os.Stat(state)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("state file %v (%v), want mode 0600", st, err)
	}
	kept, err := loadState(state, id)
	if err != nil || kept == nil || kept.InfluxToken == "" {
		t.Fatalf("state file holds %+v (%v), want the credential", kept, err)
	}

	// 2. reboot: no key this time; the kept credential is enough
	if n, err := run(ctx, base, quiet()); err != nil || n != 3 {
		t.Fatalf("restart: %d points, %v; want 3", n, err)
	}
	if got := countPoints(t, admin, id, start.Add(-time.Second)); got != 6 {
		t.Errorf("InfluxDB holds %d points after the restart, want 6", got)
	}

	// 3. rotate: the old credential opens nothing; the device says so and waits for the handed-over configuration
	status, rotated := l.Call(t, "POST", "/api/devices/"+id+"/rotate", "")
	if status != http.StatusOK || rotated["influx_token"] == kept.InfluxToken {
		t.Fatalf("rotate answered %d", status)
	}
	logs := &syncbuf.Buffer{}
	done := make(chan error, 1)
	afterRotation := time.Now()
	go func() {
		n, err := run(ctx, base, slog.New(slog.NewTextHandler(logs, nil)))
		if err == nil && n != 3 {
			err = fmt.Errorf("%d points, want 3", n)
		}
		done <- err
	}()
	for i := 0; i < 600 && !strings.Contains(logs.String(), "waiting for the operator"); i++ { // bounded: 60 s
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "rotated or revoked") {
		t.Fatalf("the device did not say its credential was refused:\n%s", logs.String())
	}
	b, _ := json.Marshal(rotated)
	if err := os.WriteFile(handover, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("after rotation: %v\n%s", err, logs.String())
	}
	if got := countPoints(t, admin, id, afterRotation); got != 3 {
		t.Errorf("%d points after the rotation, want 3", got)
	}
	if now, _ := loadState(state, id); now == nil || now.InfluxToken != rotated["influx_token"] {
		t.Errorf("the state file does not hold the handed-over credential")
	}

	// 4. delete: the device's credential opens nothing any more
	if ans, err := l.Send("DELETE", "/api/devices/"+id, l.OperatorKey, ""); err != nil || ans.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %v, want 204", ans.Status, err)
	}
	_ = os.Remove(handover)
	short, stop := context.WithTimeout(ctx, 3*time.Second)
	defer stop()
	if n, err := run(short, base, quiet()); n != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("after delete: %d points, %v; want none, waiting for a new configuration", n, err)
	}
}
