package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

// emulator is one Lambda Runtime Interface Emulator process running this function's real bootstrap: a separate
// process with its own cold start, InfluxDB client and caches, as one Lambda instance would be.
type emulator struct{ addr string }

func rieBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("RIE_BIN"), "../../bin/aws-lambda-rie"} {
		if p == "" {
			continue
		}
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			abs, _ := filepath.Abs(p)
			return abs
		}
	}
	t.Fatal("the Lambda emulator is missing: run `make tools` (bin/aws-lambda-rie) or set RIE_BIN")
	return ""
}

func buildBootstrap(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the bootstrap: %v\n%s", err, b)
	}
	return out
}

func startEmulators(t *testing.T, n int, env []string) []emulator {
	t.Helper()
	rie, boot := rieBinary(t), buildBootstrap(t)
	ems := make([]emulator, n)
	for i := range ems {
		port, err := influxtest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		rt, err := influxtest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ems[i].addr = "127.0.0.1:" + strconv.Itoa(port)
		cmd := exec.Command(rie, "--runtime-interface-emulator-address", ems[i].addr,
			"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(rt), boot)
		cmd.Env = env
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // its own process group: the emulator and its bootstrap
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("emulator %d output:\n%.4000s", i, logs.String())
			}
		})
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", ems[i].addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("emulator %d not listening after 10s", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return ems
}

type gwResponse struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
}

// invoke sends an API Gateway HTTP API (payload 2.0) event for GET /api/env/{id} to the emulator.
func (e emulator) invoke(t *testing.T, id, query string) gwResponse {
	t.Helper()
	path := "/api/env/" + url.PathEscape(id)
	ev := map[string]any{
		"version": "2.0", "routeKey": "GET /api/env/{deviceId}", "rawPath": path, "rawQueryString": query,
		"headers":        map[string]string{"accept": "application/json", "host": "127.0.0.1"},
		"pathParameters": map[string]string{"deviceId": id},
		"requestContext": map[string]any{"requestId": "req-" + influxtest.RandomID(4), "routeKey": "GET /api/env/{deviceId}",
			"stage": "$default", "http": map[string]string{"method": "GET", "path": path, "protocol": "HTTP/1.1",
				"sourceIp": "127.0.0.1", "userAgent": "test"}},
		"isBase64Encoded": false,
	}
	if q, err := url.ParseQuery(query); err == nil && len(q) > 0 {
		qs := map[string]string{}
		for k, v := range q {
			qs[k] = v[0]
		}
		ev["queryStringParameters"] = qs
	}
	b, _ := json.Marshal(ev)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+e.addr+"/2015-03-31/functions/function/invocations", bytes.NewReader(b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("invoking: %v", err)
		return gwResponse{}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out gwResponse
	if err := json.Unmarshal(body, &out); err != nil || out.StatusCode == 0 {
		t.Errorf("not an API Gateway response: %.500s", body)
	}
	return out
}

// TestEnvThroughEmulatorsRegistersOnce runs the real bootstrap in 4 emulators (independent processes) and sends
// each new id to all of them at once: every id ends with one authorization and every caller got its token.
func TestEnvThroughEmulatorsRegistersOnce(t *testing.T) {
	srv := influxtest.Shared(t)
	data, regBucket := srv.NewBucket(t, "data"), srv.NewBucket(t, "registry")
	env := []string{"INFLUX_URL=" + srv.URL, "INFLUX_ORG=" + srv.Org, "INFLUX_TOKEN=" + srv.Token,
		"INFLUX_BUCKET=" + data, "INFLUX_BUCKET_AUTH=" + regBucket, "PATH=" + os.Getenv("PATH")}
	const instances, rounds = 4, 3
	ems := startEmulators(t, instances, env)
	admin := srv.Client(t)
	for round := range rounds {
		id := fmt.Sprintf("emu%d-%s", round, influxtest.RandomID(4))
		t.Cleanup(func() {
			as, _ := admin.FindAuthorizations(context.Background(), registry.Description(id))
			for _, a := range as {
				_ = admin.DeleteAuthorization(context.Background(), a.ID)
			}
		})
		res := make([]gwResponse, instances)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range ems {
			wg.Add(1)
			go func() { defer wg.Done(); <-start; res[i] = ems[i].invoke(t, id, "") }()
		}
		close(start)
		wg.Wait()
		tokens, newly := map[string]bool{}, 0
		for i, r := range res {
			if r.StatusCode != http.StatusOK {
				t.Fatalf("round %d emulator %d: got %d %s, want 200", round, i, r.StatusCode, r.Body)
			}
			var c registry.EnvConfig
			if err := json.Unmarshal([]byte(r.Body), &c); err != nil {
				t.Fatal(err)
			}
			tokens[c.InfluxToken] = true
			if c.NewlyRegistered {
				newly++
			}
		}
		as, err := admin.FindAuthorizations(context.Background(), registry.Description(id))
		if err != nil {
			t.Fatal(err)
		}
		if len(tokens) != 1 || newly != 1 || len(as) != 1 {
			t.Errorf("round %d: distinct tokens %d, newlyRegistered %d, authorizations %d; want 1, 1, 1", round, len(tokens), newly, len(as))
		}
	}
	for _, tc := range []struct {
		name, id, query string
		want            int
	}{
		{"hostile id", `a"b`, "", http.StatusBadRequest},
		{"register=false on an unknown id", "never-" + influxtest.RandomID(4), "register=false", http.StatusForbidden},
	} {
		if r := ems[0].invoke(t, tc.id, tc.query); r.StatusCode != tc.want {
			t.Errorf("%s: got %d %s, want %d", tc.name, r.StatusCode, r.Body, tc.want)
		}
	}
}
