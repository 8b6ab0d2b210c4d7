package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/localapitest"
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
	req, _ := http.NewRequest("GET", l.URL+"/api/env/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+l.DeviceKey)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode/100 == 2 {
		t.Errorf("provisioning key read an existing device's configuration: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	status, plan := l.Call(t, "POST", "/api/devices/"+id+"/write-missing", "")
	// chunks end on whole hours: 7 when the window starts on the hour, else 8
	wantChunks := float64(8)
	if from, _ := time.Parse(time.RFC3339, fmt.Sprint(plan["from"])); from.Minute() == 0 {
		wantChunks = 7
	}
	if status != http.StatusAccepted || plan["chunks"] != wantChunks {
		t.Fatalf("write-missing %d %v, want 202 with %v chunks", status, plan, wantChunks)
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
