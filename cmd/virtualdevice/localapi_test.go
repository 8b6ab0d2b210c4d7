package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/influxtest"
)

// localAPI runs the project's local API (cmd/localapi: every function's real bootstrap under the Lambda emulator,
// the template's authorizer, the Lambda Invoke API for the write-missing fan-out) over the shared test InfluxDB.
type localAPI struct {
	URL, OperatorKey, DeviceKey string
	srv                         *influxtest.Server
}

func startLocalAPI(t *testing.T) *localAPI {
	t.Helper()
	srv := influxtest.Shared(t)
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(strings.TrimSpace(string(root)))
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "localapi")
	build := exec.Command("go", "build", "-o", bin, "./cmd/localapi")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building cmd/localapi: %v: %s", err, out)
	}
	port, err := influxtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l := &localAPI{URL: fmt.Sprintf("http://127.0.0.1:%d", port), OperatorKey: "op-" + influxtest.RandomID(12),
		DeviceKey: "dev-" + influxtest.RandomID(12), srv: srv}
	cmd := exec.Command(bin, "-root", dir, "-state", filepath.Join(tmp, "state"), "-addr", fmt.Sprintf("127.0.0.1:%d", port),
		"-pool", "1", "-pool-for", "BackfillWorkerFunction=2,EnvConfigFunction=2")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "INFLUX_URL="+srv.URL, "INFLUX_TOKEN="+srv.Token, "INFLUX_ORG="+srv.Org,
		"IOT_OPERATOR_KEY="+l.OperatorKey, "IOT_DEVICE_KEY="+l.DeviceKey)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt) // the local API stops the emulators it started
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("local API output:\n%s", tailOf(logs.String(), 4000))
		}
	})
	// building every function takes a while on a small machine: wait (bounded) for health
	deadline := time.Now().Add(5 * time.Minute)
	for {
		resp, err := http.Get(l.URL + "/api/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return l
			}
		}
		select {
		case <-exited:
			t.Fatalf("local API exited:\n%s", tailOf(logs.String(), 4000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("local API not healthy after 5 minutes:\n%s", tailOf(logs.String(), 4000))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// call sends a request with the operator key and decodes the JSON answer.
func (l *localAPI) call(t *testing.T, method, path string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, l.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+l.OperatorKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %d %q is not a JSON object", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

// TestThroughLocalAPI runs the virtual device against the local API (provisioning key, then its own token through
// the authorizer), then backfills its last day through the real fan-out (async Lambda invokes of the worker
// function) and polls coverage until 100%.
func TestThroughLocalAPI(t *testing.T) {
	l := startLocalAPI(t)
	id := "e2e-" + influxtest.RandomID(3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	n, err := run(ctx, options{API: l.URL, ID: id, Key: l.DeviceKey, Interval: 100 * time.Millisecond,
		Refresh: 250 * time.Millisecond, Count: 8}, quiet())
	if err != nil || n != 8 {
		t.Fatalf("virtual device: %d points, %v; want 8", n, err)
	}
	admin := l.srv.Client(t)
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

	status, plan := l.call(t, "POST", "/api/devices/"+id+"/write-missing")
	if status != http.StatusAccepted || plan["chunks"] != float64(7) {
		t.Fatalf("write-missing %d %v, want 202 with 7 chunks", status, plan)
	}
	q := fmt.Sprintf("/api/devices/%s/write-missing?from=%s&to=%s", id, plan["from"], plan["to"])
	var cov map[string]any
	for i := 0; i < 240; i++ { // poll as a client does, bounded (2 minutes)
		_, cov = l.call(t, "GET", q)
		if cov["percent"] == float64(100) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if cov["percent"] != float64(100) || cov["present"] != float64(10080) {
		t.Fatalf("coverage %v, want 100%% of 10,080 minutes", cov)
	}
	// the fixed window stays at 100%
	if _, again := l.call(t, "GET", q); again["percent"] != float64(100) {
		t.Errorf("coverage later %v, want it to stay at 100%%", again)
	}
}
