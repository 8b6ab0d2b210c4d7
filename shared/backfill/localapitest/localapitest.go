// Package localapitest runs the project's local API (cmd/localapi: every function's real bootstrap under the Lambda
// Runtime Interface Emulator, the template's authorizer, and the Lambda Invoke API that carries the write-missing
// fan-out) for tests and benchmarks, over a given real InfluxDB.
package localapitest

import (
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

	"github.com/iot-center/iot-center-serverless/shared/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/syncbuf"
)

// API is a running local API.
type API struct {
	URL         string
	OperatorKey string
	DeviceKey   string // the provisioning key
	Influx      *influxtest.Server
}

// Options tune Start.
type Options struct {
	// PoolFor sets emulator processes per function (e.g. "BackfillWorkerFunction=4"); others get one.
	PoolFor string
}

// Start builds and starts cmd/localapi over srv (its default buckets), waits until it is healthy, and stops it at
// the end of the test.
func Start(t testing.TB, srv *influxtest.Server, o Options) *API {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "localapi")
	build := exec.Command("go", "build", "-o", bin, "./cmd/localapi")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building cmd/localapi: %v: %s", err, out)
	}
	port, err := influxtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	a := &API{URL: fmt.Sprintf("http://127.0.0.1:%d", port), OperatorKey: "op-" + influxtest.RandomID(12),
		DeviceKey: "dev-" + influxtest.RandomID(12), Influx: srv}
	args := []string{"-root", root, "-state", filepath.Join(tmp, "state"), "-addr", fmt.Sprintf("127.0.0.1:%d", port), "-pool", "1"}
	if o.PoolFor != "" {
		args = append(args, "-pool-for", o.PoolFor)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "INFLUX_URL="+srv.URL, "INFLUX_TOKEN="+srv.Token, "INFLUX_ORG="+srv.Org,
		"IOT_OPERATOR_KEY="+a.OperatorKey, "IOT_DEVICE_KEY="+a.DeviceKey)
	logs := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
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
			t.Logf("local API output:\n%s", logs.Tail(4000))
		}
	})
	// building every function takes a while on a small machine: wait (bounded) for health
	deadline := time.Now().Add(5 * time.Minute)
	for {
		resp, err := http.Get(a.URL + "/api/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return a
			}
		}
		select {
		case <-exited:
			t.Fatalf("local API exited:\n%s", logs.Tail(4000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("local API not healthy after 5 minutes:\n%s", logs.Tail(4000))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Call sends a request with the operator key and decodes the JSON object it answers.
func (a *API) Call(t testing.TB, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, a.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.OperatorKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %d %.300q is not a JSON object", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}
