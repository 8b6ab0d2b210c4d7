package authz

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/iot-center/iot-center-serverless/internal/devstack"
	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/deviceapi"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

const (
	operatorKey = "operator-key-0123456789abcdef"
	provKey     = "provisioning-key-0123456789abcdef"
)

// world is a real registry on the shared InfluxDB with two registered devices.
type world struct {
	cfg        config.Config
	reg        *registry.Registry
	a, b       string // registered device ids
	tokA, tokB string
}

func newWorld(t *testing.T, maxDevices int) *world {
	t.Helper()
	srv := influxtest.Shared(t)
	cfg := srv.Config(srv.NewBucket(t, "authz_data"))
	cfg.BucketDownsampled, cfg.MaxDevices = "unused_1h", maxDevices
	admin := srv.Client(t)
	w := &world{cfg: cfg, reg: registry.New(admin, cfg, influxtest.StateTable(t))}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	register := func(prefix string) (string, string) {
		id := prefix + "-" + influxtest.RandomID(4)
		srv.RevokeAtCleanup(t, registry.Description(id))
		d, _, err := w.reg.Register(ctx, id)
		if err != nil {
			t.Fatalf("registering %s: %v", id, err)
		}
		return id, d.Token.Reveal()
	}
	w.a, w.tokA = register("dev-a")
	w.b, w.tokB = register("dev-b")
	return w
}

func mustKeys(t *testing.T, open bool) Keys {
	t.Helper()
	k, err := NewKeys(operatorKey, provKey, open)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// ev builds an API Gateway payload 2.0 authorizer request for a route.
func ev(routeKey, rawPath, deviceID string, headers, query map[string]string) events.APIGatewayV2CustomAuthorizerV2Request {
	e := events.APIGatewayV2CustomAuthorizerV2Request{Version: "2.0", Type: "REQUEST", RouteKey: routeKey, RawPath: rawPath,
		Headers: headers, QueryStringParameters: query}
	e.RequestContext.RequestID = "req-1"
	e.RequestContext.HTTP.Method = strings.SplitN(routeKey, " ", 2)[0]
	if deviceID != "" {
		e.PathParameters = map[string]string{"deviceId": deviceID}
	}
	return e
}

func bearer(k string) map[string]string { return map[string]string{"authorization": "Bearer " + k} }

func TestAuthorizerDecisions(t *testing.T) {
	w := newWorld(t, 1000)
	keyed := New(mustKeys(t, false), w.reg)
	open := New(mustKeys(t, true), w.reg)
	newID := "dev-new-" + influxtest.RandomID(4)
	env := func(id string) (string, string, string) { return EnvRouteKey, "/api/env/" + id, id }

	type tc struct {
		name    string
		a       *Authorizer
		route   [3]string
		headers map[string]string
		query   map[string]string
		allow   bool
		role    string
		refuse  string
	}
	r3 := func(rk, p, id string) [3]string { return [3]string{rk, p, id} }
	tests := []tc{
		{"no key, operator route", keyed, r3("GET /api/devices", "/api/devices", ""), nil, nil, false, "", ""},
		{"no key, env route", keyed, r3(env(newID)), nil, nil, false, "", ""},
		{"wrong key", keyed, r3("GET /api/devices", "/api/devices", ""), bearer("nope"), nil, false, "", ""},
		{"wrong key, env of new id", keyed, r3(env(newID)), bearer("nope"), nil, false, "", ""},
		{"provisioning key, operator route", keyed, r3("GET /api/devices", "/api/devices", ""), bearer(provKey), nil, false, "", ""},
		{"provisioning key, register route", keyed, r3("POST /api/devices/{deviceId}", "/api/devices/"+newID, newID), bearer(provKey), nil, false, "", ""},
		{"provisioning key, new id", keyed, r3(env(newID)), bearer(provKey), nil, true, RoleProvisioning, ""},
		{"provisioning key in query, new id: the function answers 400", keyed, r3(env(newID)), nil, map[string]string{"key": provKey}, true, "", api.RefuseKeyInQuery},
		{"provisioning key, existing id: create-only, the function answers 403", keyed, r3(env(w.a)), bearer(provKey), nil, true, RoleProvisioning, ""},
		{"provisioning key, summary", keyed, r3("GET /api/devices/{deviceId}/summary", "/api/devices/"+w.a+"/summary", w.a), bearer(provKey), nil, false, "", ""},
		{"device token, own id", keyed, r3(env(w.a)), bearer(w.tokA), nil, true, RoleDevice, ""},
		{"device token in query, own id: the function answers 400", keyed, r3(env(w.a)), nil, map[string]string{"key": w.tokA}, true, "", api.RefuseKeyInQuery},
		{"unknown key in query", keyed, r3("GET /api/devices", "/api/devices", ""), nil, map[string]string{"key": "nope"}, true, "", api.RefuseKeyInQuery},
		{"device token, other id", keyed, r3(env(w.b)), bearer(w.tokA), nil, false, "", ""},
		{"device token, new id", keyed, r3(env(newID)), bearer(w.tokA), nil, false, "", ""},
		{"device token, its own summary", keyed, r3("GET /api/devices/{deviceId}/summary", "/api/devices/"+w.a+"/summary", w.a), bearer(w.tokA), nil, true, RoleDevice, ""},
		{"device token, its own measurements", keyed, r3("GET /api/devices/{deviceId}/measurements", "/api/devices/"+w.a+"/measurements", w.a), bearer(w.tokA), nil, true, RoleDevice, ""},
		{"device token, other device's summary", keyed, r3("GET /api/devices/{deviceId}/summary", "/api/devices/"+w.b+"/summary", w.b), bearer(w.tokA), nil, false, "", ""},
		{"device token, list", keyed, r3("GET /api/devices", "/api/devices", ""), bearer(w.tokA), nil, false, "", ""},
		{"device token, write-missing", keyed, r3("POST /api/devices/{deviceId}/write-missing", "/api/devices/"+w.a+"/write-missing", w.a), bearer(w.tokA), nil, false, "", ""},
		{"device token, rotate itself", keyed, r3("POST /api/devices/{deviceId}/rotate", "/api/devices/"+w.a+"/rotate", w.a), bearer(w.tokA), nil, false, "", ""},
		{"operator key, list", keyed, r3("GET /api/devices", "/api/devices", ""), bearer(operatorKey), nil, true, RoleOperator, ""},
		{"operator key, delete", keyed, r3("DELETE /api/devices/{deviceId}", "/api/devices/"+w.a, w.a), bearer(operatorKey), nil, true, RoleOperator, ""},
		{"operator key, existing env", keyed, r3(env(w.a)), bearer(operatorKey), nil, true, RoleOperator, ""},
		{"operator key, invalid id (the function answers 400)", keyed, r3(env("bad id")), bearer(operatorKey), nil, true, RoleOperator, ""},
		{"operator key in query: the function answers 400", keyed, r3("POST /api/write-missing", "/api/write-missing", ""), nil, map[string]string{"key": operatorKey}, true, "", api.RefuseKeyInQuery},
		{"operator key in header and query", keyed, r3("GET /api/devices", "/api/devices", ""), bearer(operatorKey), map[string]string{"key": operatorKey}, true, "", api.RefuseKeyInQuery},
		{"operator key, lowercase scheme, mixed-case header", keyed, r3("GET /api/devices", "/api/devices", ""), map[string]string{"Authorization": "bearer " + operatorKey}, nil, true, RoleOperator, ""},
		{"operator key as Basic is no key", keyed, r3("GET /api/devices", "/api/devices", ""), map[string]string{"authorization": "Basic " + operatorKey}, nil, false, "", ""},
		{"provisioning key, invalid id", keyed, r3(env(`x"or"1`)), bearer(provKey), nil, false, "", ""},
		{"oversized key", keyed, r3(env(newID)), bearer(strings.Repeat("k", MaxKeyBytes+1)), nil, false, "", ""},
		{"operator key with a suffix", keyed, r3("GET /api/devices", "/api/devices", ""), bearer(operatorKey + "x"), nil, false, "", ""},
		{"DEVICE_AUTH=none, env without key", open, r3(env(w.a)), nil, nil, true, RoleOpen, ""},
		{"DEVICE_AUTH=none, operator route without key", open, r3("GET /api/devices", "/api/devices", ""), nil, nil, false, "", ""},
		{"DEVICE_AUTH=none, operator route with provisioning key", open, r3("DELETE /api/devices/{deviceId}", "/api/devices/"+w.a, w.a), bearer(provKey), nil, false, "", ""},
		{"$default route, env path, provisioning key", keyed, r3("$default", "/api/env/"+newID, ""), bearer(provKey), nil, true, RoleProvisioning, ""},
		{"$default route, other path, provisioning key", keyed, r3("$default", "/api/devices", ""), bearer(provKey), nil, false, "", ""},
	}
	var logs, emf bytes.Buffer
	keyed.Metrics, open.Metrics = &emf, &emf
	old := api.BaseLogger()
	api.SetBaseLogger(slog.New(slog.NewJSONHandler(&logs, nil)))
	t.Cleanup(func() { api.SetBaseLogger(old) })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ev(tt.route[0], tt.route[1], tt.route[2], tt.headers, tt.query)
			if tt.route[0] == "$default" {
				e.RequestContext.HTTP.Method = "GET"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			resp, err := tt.a.Handle(ctx, e)
			if err != nil {
				t.Fatalf("got error %v", err)
			}
			if resp.IsAuthorized != tt.allow {
				t.Errorf("isAuthorized: got %v, want %v", resp.IsAuthorized, tt.allow)
			}
			if got, _ := resp.Context["role"].(string); got != tt.role {
				t.Errorf("role: got %q, want %q", got, tt.role)
			}
			if got, _ := resp.Context["refuse"].(string); got != tt.refuse {
				t.Errorf("refuse: got %q, want %q", got, tt.refuse)
			}
			if tt.role == RoleDevice && resp.Context["credentialId"] == "" {
				t.Errorf("a device decision without the credential it matched: %v", resp.Context)
			}
		})
	}
	for _, secret := range []string{operatorKey, provKey, w.tokA, w.tokB} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a key or token appears in the log")
		}
	}
	if n := strings.Count(emf.String(), `"AuthAllowed"`) + strings.Count(emf.String(), `"AuthDenied"`); n != 2*len(tests) {
		// each line names the metric twice: as a value and in the _aws block
		t.Errorf("got %d metric mentions, want %d (one line per decision)", n, 2*len(tests))
	}
	if !strings.Contains(logs.String(), `"authorizer decision"`) {
		t.Errorf("no decision logged: %s", logs.String())
	}
}

// The cap on registered devices is the registry's (an authorizer only allows or denies): the provisioning key is
// allowed through and the env function answers 429 JSON.
func TestDeviceCapAnswers429(t *testing.T) {
	w := newWorld(t, 2) // both slots taken by a and b
	a := New(mustKeys(t, false), w.reg)
	newID := "dev-over-" + influxtest.RandomID(4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := a.Handle(ctx, ev(EnvRouteKey, "/api/env/"+newID, newID, bearer(provKey), nil))
	if err != nil || !resp.IsAuthorized {
		t.Fatalf("authorizer: got %+v %v, want allowed", resp, err)
	}
	h := api.Handler(deviceapi.NewService(w.reg).Routes().Only(deviceapi.RouteEnv))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/env/"+newID, nil)
	h.ServeHTTP(rec, req.WithContext(api.WithCaller(ctx, api.CallerFromContext(resp.Context))))
	if rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), `"error"`) {
		t.Errorf("env past the cap: got %d %s, want 429 JSON", rec.Code, rec.Body.String())
	}
	if _, err := w.reg.Get(ctx, newID); !api.IsCode(err, api.NotFound) {
		t.Errorf("device past the cap: got %v, want not registered", err)
	}
}

// A registry the authorizer cannot read (the state table's endpoint stopped, InfluxDB unreachable) is not a guess
// either way: the request goes on flagged, and the function answers 503 JSON without doing anything (API Gateway
// would answer a failed authorizer with a bare 500).
func TestRegistryDownIsFlaggedForTheFunction(t *testing.T) {
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	cfg := config.Config{InfluxURL: url, Org: "o", Bucket: "d", Token: "t", MaxDevices: 10}
	d := testenv.StartDynamo(t)
	d.Stop()
	reg := registry.New(influx.New(url, "t", "o", influx.Options{HTTPTimeout: 2 * time.Second}), cfg, d.Table)
	a := New(mustKeys(t, false), reg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h := api.Handler(deviceapi.NewService(reg).Routes())
	for _, tc := range []struct {
		name, key, route, path, id string
	}{
		{"provisioning key", provKey, EnvRouteKey, "/api/env/dev1", "dev1"},
		{"operator key, env", operatorKey, EnvRouteKey, "/api/env/dev1", "dev1"},
		{"device credential", "some-token", EnvRouteKey, "/api/env/dev1", "dev1"},
		{"operator key, register", operatorKey, "POST /api/devices/{deviceId}", "/api/devices/dev1", "dev1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := a.Handle(ctx, ev(tc.route, tc.path, tc.id, bearer(tc.key), nil))
			if err != nil || !resp.IsAuthorized || resp.Context["refuse"] != api.RefuseRegistryUnavailable {
				t.Fatalf("got %+v %v, want allowed with the refusal flag", resp, err)
			}
			if _, ok := resp.Context["role"]; ok && resp.Context["role"] != "" {
				t.Errorf("a flagged decision carries a role: %v", resp.Context)
			}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(strings.Fields(tc.route)[0], tc.path, nil)
			h.ServeHTTP(rec, req.WithContext(api.WithCaller(ctx, api.CallerFromContext(resp.Context))))
			if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"error"`) {
				t.Errorf("function: got %d %s, want 503 JSON", rec.Code, rec.Body.String())
			}
		})
	}
	// routes that do not read the registry stay the operator's
	if resp, err := a.Handle(ctx, ev("GET /api/devices", "/api/devices", "", bearer(operatorKey), nil)); err != nil || !resp.IsAuthorized || resp.Context["role"] != RoleOperator {
		t.Errorf("operator list while the registry is down: got %+v %v, want allowed as operator", resp, err)
	}
}

func TestLoadKeys(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		open    bool
		prov    bool
	}{
		{"both keys", map[string]string{"IOT_OPERATOR_KEY": "op", "IOT_DEVICE_KEY": "dev"}, "", false, true},
		{"operator only", map[string]string{"IOT_OPERATOR_KEY": "op"}, "", false, false},
		{"open env", map[string]string{"IOT_OPERATOR_KEY": "op", "DEVICE_AUTH": "none"}, "", true, false},
		{"explicit key mode", map[string]string{"IOT_OPERATOR_KEY": "op", "DEVICE_AUTH": "key"}, "", false, false},
		{"no operator key", map[string]string{"IOT_DEVICE_KEY": "dev"}, "operator key is required", false, false},
		{"same keys", map[string]string{"IOT_OPERATOR_KEY": "same", "IOT_DEVICE_KEY": "same"}, "must differ", false, false},
		{"bad mode", map[string]string{"IOT_OPERATOR_KEY": "op", "DEVICE_AUTH": "off"}, "DEVICE_AUTH", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := LoadKeys(context.Background(), func(n string) string { return tt.env[n] }, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error with %q", err, tt.wantErr)
				}
				for _, v := range tt.env {
					if strings.Contains(err.Error(), v) && len(v) > 3 {
						t.Errorf("the error carries a key: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.OpenEnv != tt.open || k.hasProv != tt.prov {
				t.Errorf("got open=%v prov=%v, want %v %v", k.OpenEnv, k.hasProv, tt.open, tt.prov)
			}
		})
	}
}

// BenchmarkAuthorizerDeviceToken measures what API Gateway waits for on a device's GET /api/env: a registry read
// on the real InfluxDB, then the hash comparison.
func BenchmarkAuthorizerDeviceToken(b *testing.B) {
	srv := influxtest.Shared(b)
	cfg := srv.Config(srv.NewBucket(b, "authz_bench_data"))
	cfg.BucketDownsampled = "unused"
	reg := registry.New(srv.Client(b), cfg, influxtest.StateTable(b))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := "bench-" + influxtest.RandomID(4)
	d, _, err := reg.Register(ctx, id)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Client(b).DeleteAuthorization(context.Background(), d.AuthorizationID) })
	k, _ := NewKeys(operatorKey, provKey, false)
	a := New(k, reg)
	a.Metrics = io.Discard
	e := ev(EnvRouteKey, "/api/env/"+id, id, bearer(d.Token.Reveal()), nil)
	old := api.BaseLogger()
	api.SetBaseLogger(slog.New(slog.NewJSONHandler(io.Discard, nil)))
	defer api.SetBaseLogger(old)
	const samples = 50
	lat := make([]float64, 0, samples)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lat = lat[:0]
		for j := 0; j < samples; j++ {
			start := time.Now()
			resp, err := a.Handle(ctx, e)
			if err != nil || !resp.IsAuthorized {
				b.Fatalf("got %+v %v, want allowed", resp, err)
			}
			lat = append(lat, float64(time.Since(start).Microseconds())/1000)
		}
	}
	sort.Float64s(lat)
	b.ReportMetric(lat[len(lat)/2], "ms/median")
	b.ReportMetric(lat[len(lat)*95/100], "ms/p95")
}

func BenchmarkDecideOperator(b *testing.B) {
	k, _ := NewKeys(operatorKey, provKey, false)
	a := New(k, nil)
	r := Request{RouteKey: "GET /api/devices", Key: operatorKey}
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if d, _ := a.Decide(ctx, r); !d.Allow {
			b.Fatal("denied")
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N)/1000, "us/decision")
}
