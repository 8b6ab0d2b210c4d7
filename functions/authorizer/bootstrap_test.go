package main

// These tests run the real bootstraps of the authorizer, health and setup functions in the Lambda Runtime Interface
// Emulator (the same binary `make run` uses), so the cold-start wiring, the event and response JSON and the logs
// are exercised as Lambda would.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/lambdatest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

// start builds the function in dir (relative to this package) and runs it in an emulator with env.
func start(t *testing.T, dir string, env []string) *lambdatest.Emulator {
	t.Helper()
	return lambdatest.Start(t, lambdatest.Build(t, dir), env)
}

// decisionLines returns the authorizer's JSON decision log lines.
func decisionLines(logs string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(logs, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["message"] == "authorizer decision" {
			out = append(out, m)
		}
	}
	return out
}

func authEvent(routeKey, path, deviceID, key string) map[string]any {
	ev := map[string]any{"version": "2.0", "type": "REQUEST", "routeKey": routeKey, "rawPath": path,
		"headers":        map[string]string{"host": "127.0.0.1"},
		"requestContext": map[string]any{"requestId": "req-" + influxtest.RandomID(4), "http": map[string]string{"method": strings.Fields(routeKey)[0], "path": path}}}
	if key != "" {
		ev["headers"].(map[string]string)["authorization"] = "Bearer " + key
	}
	if deviceID != "" {
		ev["pathParameters"] = map[string]string{"deviceId": deviceID}
	}
	return ev
}

func TestAuthorizerBootstrap(t *testing.T) {
	srv := influxtest.Shared(t)
	data := srv.NewBucket(t, "data")
	const op, prov = "operator-key-bootstrap-test-1234", "provisioning-key-bootstrap-test-5678"
	env := []string{"INFLUX_URL=" + srv.URL, "INFLUX_ORG=" + srv.Org, "INFLUX_TOKEN=" + srv.Token,
		"INFLUX_BUCKET=" + data, "IOT_OPERATOR_KEY=" + op, "IOT_DEVICE_KEY=" + prov,
		"DEVICE_AUTH=key", "METRICS_NAMESPACE=IoTCenterTest", "AWS_LAMBDA_LOG_FORMAT=JSON"}
	env = append(env, testenv.StartDynamo(t).Env()...)
	e := start(t, ".", env)
	newID := "boot-" + influxtest.RandomID(4)
	tests := []struct {
		name       string
		event      map[string]any
		allow      bool
		wantRoleIn string
	}{
		{"no key", authEvent("GET /api/devices", "/api/devices", "", ""), false, ""},
		{"wrong key", authEvent("GET /api/devices", "/api/devices", "", "wrong"), false, ""},
		{"provisioning key on an operator route", authEvent("GET /api/devices", "/api/devices", "", prov), false, ""},
		{"provisioning key on a new id", authEvent("GET /api/env/{deviceId}", "/api/env/"+newID, newID, prov), true, "provisioning"},
		{"operator key", authEvent("DELETE /api/devices/{deviceId}", "/api/devices/x", "x", op), true, "operator"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := e.Invoke(t, tc.event)
			var got struct {
				IsAuthorized *bool          `json:"isAuthorized"`
				Context      map[string]any `json:"context"`
			}
			if err := json.Unmarshal(raw, &got); err != nil || got.IsAuthorized == nil {
				t.Fatalf("not a simple authorizer response: %s", raw)
			}
			if *got.IsAuthorized != tc.allow {
				t.Errorf("isAuthorized: got %v, want %v", *got.IsAuthorized, tc.allow)
			}
			if role, _ := got.Context["role"].(string); role != tc.wantRoleIn {
				t.Errorf("role: got %q, want %q", role, tc.wantRoleIn)
			}
		})
	}
	logs := e.WaitLogs(10*time.Second, func(logs string) bool { return len(decisionLines(logs)) >= len(tests) })
	for _, secret := range []string{op, prov, srv.Token} {
		if strings.Contains(logs, secret) {
			t.Errorf("a key or the admin token appears in the function's output")
		}
	}
	if !strings.Contains(logs, `"AuthDenied"`) || !strings.Contains(logs, `"CloudWatchMetrics"`) {
		t.Errorf("no EMF metric line in the output:\n%.2000s", logs)
	}
	decisions := decisionLines(logs)
	for _, m := range decisions {
		if m["requestId"] == nil && m["apiRequestId"] == nil {
			t.Errorf("decision log line without a request id: %v", m)
		}
	}
	if len(decisions) != len(tests) {
		t.Errorf("got %d JSON decision log lines, want %d:\n%.2000s", len(decisions), len(tests), logs)
	}
	// nothing was registered by the authorizer itself
	as, err := srv.Client(t).FindAuthorizations(context.Background(), registry.Description(newID))
	if err != nil || len(as) != 0 {
		t.Errorf("authorizations for %s: got %d (%v), want 0", newID, len(as), err)
	}
}

func TestAuthorizerBootstrapRefusesMissingOperatorKey(t *testing.T) {
	srv := influxtest.Shared(t)
	e := start(t, ".", []string{"INFLUX_URL=" + srv.URL, "INFLUX_ORG=" + srv.Org, "INFLUX_TOKEN=" + srv.Token,
		"IOT_DEVICE_KEY=provisioning-only"})
	raw := e.Invoke(t, authEvent("GET /api/devices", "/api/devices", "", "provisioning-only"))
	if strings.Contains(string(raw), "isAuthorized") {
		t.Errorf("got %s, want no decision without the operator key", raw)
	}
	logs := e.WaitLogs(10*time.Second, func(logs string) bool { return strings.Contains(logs, "operator key is required") })
	if !strings.Contains(logs, "operator key is required") {
		t.Errorf("the cold start does not say why it failed:\n%.2000s", logs)
	}
}

func TestHealthBootstrap(t *testing.T) {
	srv := influxtest.Start(t)
	// only INFLUX_URL: the health function needs no token and no SSM access
	e := start(t, "../health", []string{"INFLUX_URL=" + srv.URL})
	get := func() (int, string) {
		raw := e.Invoke(t, map[string]any{"version": "2.0", "routeKey": "GET /api/health", "rawPath": "/api/health",
			"requestContext": map[string]any{"requestId": "r1", "http": map[string]string{"method": "GET", "path": "/api/health"}}})
		var r struct {
			StatusCode int    `json:"statusCode"`
			Body       string `json:"body"`
		}
		if err := json.Unmarshal(raw, &r); err != nil || r.StatusCode == 0 {
			t.Fatalf("not an API Gateway response: %s", raw)
		}
		return r.StatusCode, r.Body
	}
	if code, body := get(); code != http.StatusOK || !strings.Contains(body, `"status":"pass"`) {
		t.Errorf("up: got %d %s, want 200 pass", code, body)
	}
	srv.Stop(t)
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, `"error"`) {
		t.Errorf("down: got %d %s, want 503 JSON", code, body)
	}
}

func TestSetupBootstrap(t *testing.T) {
	srv := influxtest.Shared(t)
	id := influxtest.RandomID(4)
	data, ds := "bdata_"+id, "bds_"+id
	admin := srv.Client(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var tasks struct {
			Tasks []struct{ ID string } `json:"tasks"`
		}
		_ = admin.JSON(ctx, "GET", "/api/v2/tasks", map[string][]string{"name": {"IoT Center: downsample " + data + " to " + ds}}, nil, &tasks)
		for _, tk := range tasks.Tasks {
			_ = admin.JSON(ctx, "DELETE", "/api/v2/tasks/"+tk.ID, nil, nil, nil)
		}
		for _, b := range []string{data, ds} {
			_ = admin.DeleteBucket(ctx, b)
		}
	})
	answers := make(chan map[string]any, 4)
	cfn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		answers <- m
	}))
	defer cfn.Close()
	e := start(t, "../setup", []string{"INFLUX_URL=" + srv.URL, "INFLUX_ORG=" + srv.Org, "INFLUX_TOKEN=" + srv.Token,
		"INFLUX_BUCKET=" + data, "INFLUX_BUCKET_DOWNSAMPLED=" + ds})
	for _, typ := range []string{"Create", "Delete"} {
		e.Invoke(t, map[string]any{"RequestType": typ, "RequestId": "req-" + typ, "ResponseURL": cfn.URL + "/signed",
			"ResourceType": "AWS::CloudFormation::CustomResource", "LogicalResourceId": "InfluxSetup",
			"StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/1", "PhysicalResourceId": "iot-center-influxdb-setup",
			"ResourceProperties": map[string]any{"DataRetentionDays": "30", "DownsampledRetentionDays": "400"}})
		select {
		case a := <-answers:
			if a["Status"] != "SUCCESS" || a["RequestId"] != "req-"+typ {
				t.Errorf("%s: got %v, want SUCCESS", typ, a)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no answer to CloudFormation within 30s", typ)
		}
	}
	if _, err := admin.BucketID(context.Background(), ds); err != nil {
		t.Errorf("downsampled bucket after Create and Delete: %v", err)
	}
	if strings.Contains(e.Logs.String(), srv.Token) {
		t.Errorf("the admin token appears in the setup function's output")
	}
}
