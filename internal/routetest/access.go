package routetest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
)

// Callers are the decisions the authorizer can hand a function (api.Caller), named for the access table.
// "device" is the device the path names, with its current credential; "other device" is another registered device.
var Callers = []string{"none", "open", "provisioning", "other device", "device", "operator"}

// public: every caller, the authorizer never runs (Auth: NONE in template.yaml).
var public = Callers

// Access is who may use each route of template.yaml (route key: callers answered other than 401/403). A caller
// not listed must get a 401 or 403 JSON answer. Keep it in step with the api.Require each route is mounted with.
var Access = map[string][]string{
	"GET /api/env/{deviceId}":                     {"open", "provisioning", "device", "operator"},
	"POST /api/devices/{deviceId}":                {"operator"},
	"POST /api/devices/{deviceId}/rotate":         {"operator"},
	"DELETE /api/devices/{deviceId}":              {"operator"},
	"POST /api/devices":                           {"operator"},
	"GET /api/devices":                            {"operator"},
	"GET /api/devices/counts":                     {"operator"},
	"GET /api/devices/{deviceId}/measurements":    {"device", "operator"},
	"GET /api/devices/{deviceId}/summary":         {"device", "operator"},
	"GET /api/overview":                           {"operator"},
	"GET /api/overview/silent":                    {"operator"},
	"GET /api/overview/positions":                 {"operator"},
	"GET /api/overview/jobs":                      {"operator"},
	"POST /api/devices/{deviceId}/write-missing":  {"operator"},
	"GET /api/devices/{deviceId}/write-missing":   {"operator"},
	"POST /api/write-missing":                     {"operator"},
	"GET /api/write-missing":                      {"operator"},
	"GET /api/write-missing/jobs/{jobId}":         {"operator"},
	"POST /api/write-missing/jobs/{jobId}/cancel": {"operator"},
	// the write gateway checks the device credential itself (Authorization: Token): no decision lets a write in
	"POST /api/v2/write":   {},
	"GET /api/health":      public,
	"GET /":                public,
	"GET /assets/{proxy+}": public,
}

// Live are a function's deps over real parts: the test binary's InfluxDB (a bucket of its own, devices writing
// through the gateway) and a fresh state table on the DynamoDB stand-in; env adds the function's variables. The
// package's TestMain must run influxtest.Main.
func Live(t *testing.T, env map[string]string) lambdaapp.Deps {
	t.Helper()
	srv := influxtest.Shared(t)
	cfg := srv.Config(srv.NewBucket(t, "routes"))
	cfg.BucketDownsampled = srv.NewBucket(t, "routes_1h")
	cfg.DeviceWrites = config.WritesGateway
	return lambdaapp.NewDeps(cfg, srv.Client(t), influxtest.StateTable(t), func(k string) string { return env[k] })
}

// Roles sends each of function's template routes as each of Callers through h (built as main builds it) and
// checks the answer against Access: allowed is not 401/403, refused is 401/403 JSON. d registers the devices (nil:
// no {deviceId} route); other callers name an unregistered device, so a lost api.Require answers 404, not 403.
func Roles(t *testing.T, function string, h http.Handler, d *lambdaapp.Deps) {
	t.Helper()
	routes := TemplateRoutes(t)[function]
	if len(routes) == 0 {
		t.Fatalf("template.yaml: %s has no HttpApi event", function)
	}
	h = api.Handler(h)
	for _, route := range routes {
		allowed, ok := Access[route]
		if !ok {
			t.Errorf("%s: no entry in routetest.Access: say who may use it", route)
			continue
		}
		t.Run(route, func(t *testing.T) {
			own, other := "rt-own-"+influxtest.RandomID(6), "rt-other-"+influxtest.RandomID(6)
			callers := map[string]api.Caller{
				"none":         {Generation: -1},
				"open":         {Role: api.RoleOpen},
				"provisioning": {Role: api.RoleProvisioning},
				"operator":     {Role: api.RoleOperator},
			}
			keys := map[string]string{} // a device caller's credential, presented as it would be
			if strings.Contains(route, "{deviceId}") {
				if d == nil {
					t.Fatal("a {deviceId} route needs deps to register its devices")
				}
				reg := d.Registry()
				for name, id := range map[string]string{"device": own, "other device": other} {
					dev, _, err := reg.Register(t.Context(), id)
					if err != nil {
						t.Fatalf("registering %s: %v", id, err)
					}
					callers[name] = api.Caller{Role: api.RoleDevice, DeviceID: id, CredentialID: dev.AuthorizationID,
						Generation: dev.Generation}
					keys[name] = dev.Token.Reveal()
				}
			} else {
				callers["device"] = api.Caller{Role: api.RoleDevice, DeviceID: own}
				callers["other device"] = api.Caller{Role: api.RoleDevice, DeviceID: other}
			}
			method, path, _ := strings.Cut(route, " ")
			for _, name := range Callers {
				id := "rt-new-" + influxtest.RandomID(6)
				if name == "device" || name == "other device" {
					id = own
				}
				p := strings.NewReplacer("{deviceId}", id, "{jobId}", "0123456789abcdef-0123456789abcdef",
					"{proxy+}", "app.js").Replace(path)
				req := httptest.NewRequest(method, p, nil)
				c := callers[name]
				if c.Role != api.RoleDevice && strings.Contains(route, "{deviceId}") {
					c.DeviceID = id // the authorizer's decision names the path's device
				}
				if k := keys[name]; k != "" {
					req.Header.Set("Authorization", "Bearer "+k)
				}
				if c.Role != "" {
					req = req.WithContext(api.WithCaller(req.Context(), c))
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				refused := rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden
				switch want := slices.Contains(allowed, name); {
				case want && refused:
					t.Errorf("%s %s as %s: got %d %s, want it allowed", method, p, name, rec.Code, rec.Body)
				case !want && !refused:
					t.Errorf("%s %s as %s: got %d %s, want 401 or 403", method, p, name, rec.Code, rec.Body)
				case !want && !json.Valid(rec.Body.Bytes()):
					t.Errorf("%s %s as %s: refusal %q is not JSON", method, p, name, rec.Body)
				}
			}
		})
	}
}
