package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/lambdatest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/deviceapi"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

// startEmulators runs the real bootstrap in n emulators: separate processes, each with its own cold start,
// InfluxDB client and caches, as n Lambda instances would be.
func startEmulators(t *testing.T, n int, env []string) []*lambdatest.Emulator {
	t.Helper()
	boot := lambdatest.Build(t, ".")
	ems := make([]*lambdatest.Emulator, n)
	for i := range ems {
		ems[i] = lambdatest.Start(t, boot, env)
	}
	return ems
}

type gwResponse struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
}

// invoke sends an API Gateway HTTP API (payload 2.0) event for GET /api/env/{id} to the emulator.
func invokeEnv(t *testing.T, e *lambdatest.Emulator, id, query string) gwResponse {
	t.Helper()
	path := "/api/env/" + url.PathEscape(id)
	ev := map[string]any{
		"version": "2.0", "routeKey": "GET /api/env/{deviceId}", "rawPath": path, "rawQueryString": query,
		"headers":        map[string]string{"accept": "application/json", "host": "127.0.0.1"},
		"pathParameters": map[string]string{"deviceId": id},
		"requestContext": map[string]any{"requestId": "req-" + influxtest.RandomID(4), "routeKey": "GET /api/env/{deviceId}",
			"stage": "$default", "http": map[string]string{"method": "GET", "path": path, "protocol": "HTTP/1.1",
				"sourceIp": "127.0.0.1", "userAgent": "test"},
			// the authorizer's decision, as API Gateway hands it over (the function acts on it)
			"authorizer": map[string]any{"lambda": map[string]any{"role": "operator"}}},
		"isBase64Encoded": false,
	}
	if q, err := url.ParseQuery(query); err == nil && len(q) > 0 {
		qs := map[string]string{}
		for k, v := range q {
			qs[k] = v[0]
		}
		ev["queryStringParameters"] = qs
	}
	body := e.Invoke(t, ev)
	if body == nil {
		return gwResponse{}
	}
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
	data := srv.NewBucket(t, "data")
	env := []string{"INFLUX_URL=" + srv.URL, "INFLUX_ORG=" + srv.Org, "INFLUX_TOKEN=" + srv.Token,
		"INFLUX_BUCKET=" + data, "PATH=" + os.Getenv("PATH"),
		// direct mode: every operator caller gets the one token (gateway credentials go to their creator only,
		// tested in shared/authz)
		"DEVICE_WRITES=direct"}
	env = append(env, testenv.StartDynamo(t).Env()...)
	const instances, rounds = 4, 3
	ems := startEmulators(t, instances, env)
	admin := srv.Client(t)
	for round := range rounds {
		id := fmt.Sprintf("emu%d-%s", round, influxtest.RandomID(4))
		revokeAtEnd(t, srv, id)
		res := make([]gwResponse, instances)
		testenv.Together(instances, func(i int) { res[i] = invokeEnv(t, ems[i], id, "") })
		tokens, newly := map[string]bool{}, 0
		for i, r := range res {
			if r.StatusCode != http.StatusOK {
				t.Fatalf("round %d emulator %d: got %d %s, want 200", round, i, r.StatusCode, r.Body)
			}
			var c deviceapi.EnvConfig
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
		if r := invokeEnv(t, ems[0], tc.id, tc.query); r.StatusCode != tc.want {
			t.Errorf("%s: got %d %s, want %d", tc.name, r.StatusCode, r.Body, tc.want)
		}
	}
}
