package authz

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/iot-center/iot-center-serverless/internal/routetest"
)

// The template's short-form tags (!Ref, !GetAtt, !Sub...) decode as plain values with yaml.v3 Node decoding; only
// route keys and auth settings are read here.
type samTemplate struct {
	Resources map[string]struct {
		Type       string `yaml:"Type"`
		Properties struct {
			Auth struct {
				DefaultAuthorizer string `yaml:"DefaultAuthorizer"`
				Authorizers       map[string]struct {
					AuthorizerPayloadFormatVersion string `yaml:"AuthorizerPayloadFormatVersion"`
					EnableSimpleResponses          bool   `yaml:"EnableSimpleResponses"`
					Identity                       *struct {
						Headers          []string `yaml:"Headers"`
						QueryStrings     []string `yaml:"QueryStrings"`
						ReauthorizeEvery *int     `yaml:"ReauthorizeEvery"`
					} `yaml:"Identity"`
				} `yaml:"Authorizers"`
			} `yaml:"Auth"`
			Events map[string]routetest.Event `yaml:"Events"`
		} `yaml:"Properties"`
	} `yaml:"Resources"`
}

type openAPI struct {
	Security []map[string][]string `yaml:"security"`
	Paths    map[string]map[string]struct {
		Security *[]map[string][]string `yaml:"security"`
	} `yaml:"paths"`
}

func readYAML(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := n.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// templateRoutes returns every HttpApi route key and whether it is public (Auth: NONE).
func templateRoutes(t *testing.T) (routes map[string]bool, tpl samTemplate) {
	t.Helper()
	readYAML(t, "template.yaml", &tpl)
	routes = map[string]bool{}
	for _, res := range tpl.Resources {
		for _, ev := range res.Properties.Events {
			if ev.Type != "HttpApi" {
				continue
			}
			key := strings.ToUpper(ev.Properties.Method) + " " + ev.Properties.Path
			if _, dup := routes[key]; dup {
				t.Errorf("template.yaml declares %s twice", key)
			}
			routes[key] = ev.Properties.Auth.Authorizer == "NONE"
		}
	}
	if len(routes) == 0 {
		t.Fatal("template.yaml: no HttpApi routes found")
	}
	return routes, tpl
}

func openAPIRoutes(t *testing.T) map[string]bool {
	t.Helper()
	var doc openAPI
	readYAML(t, "openapi.yaml", &doc)
	if len(doc.Security) == 0 {
		t.Error("openapi.yaml: no global security requirement")
	}
	routes := map[string]bool{}
	methods := map[string]bool{"get": true, "post": true, "put": true, "delete": true, "patch": true, "head": true, "options": true}
	for path, ops := range doc.Paths {
		for m, op := range ops {
			if !methods[m] {
				continue
			}
			routes[strings.ToUpper(m)+" "+path] = op.Security != nil && len(*op.Security) == 0
		}
	}
	return routes
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestOpenAPIMatchesTemplateRoutes(t *testing.T) {
	tpl, _ := templateRoutes(t)
	doc := openAPIRoutes(t)
	for _, k := range sortedKeys(tpl) {
		public, ok := doc[k]
		if !ok {
			t.Errorf("%s is in template.yaml but not in openapi.yaml", k)
			continue
		}
		if public != tpl[k] {
			t.Errorf("%s: public in template.yaml = %v, in openapi.yaml (security: []) = %v", k, tpl[k], public)
		}
	}
	for _, k := range sortedKeys(doc) {
		if _, ok := tpl[k]; !ok {
			t.Errorf("%s is in openapi.yaml but not in template.yaml", k)
		}
	}
}

func TestTemplateAuthorizer(t *testing.T) {
	routes, tpl := templateRoutes(t)
	// exactly the health check, the dashboard's page and assets, and the write gateway (it authenticates the device
	// credential itself, answering as InfluxDB does) have no authorizer
	wantPublic := []string{"GET /", "GET /api/health", "GET /assets/{proxy+}", "POST /api/v2/write"}
	var public []string
	for _, k := range sortedKeys(routes) {
		if routes[k] {
			public = append(public, k)
		}
	}
	if strings.Join(public, ",") != strings.Join(wantPublic, ",") {
		t.Errorf("public routes: got %v, want %v", public, wantPublic)
	}
	if _, ok := routes[EnvRouteKey]; !ok {
		t.Errorf("the authorizer's env route %q is not in template.yaml", EnvRouteKey)
	}
	api := tpl.Resources["HttpApi"].Properties.Auth
	a, ok := api.Authorizers[api.DefaultAuthorizer]
	if !ok {
		t.Fatalf("HttpApi: default authorizer %q not declared", api.DefaultAuthorizer)
	}
	if a.AuthorizerPayloadFormatVersion != "2.0" || !a.EnableSimpleResponses {
		t.Errorf("authorizer: got payload %q simple %v, want 2.0 and simple responses", a.AuthorizerPayloadFormatVersion, a.EnableSimpleResponses)
	}
	// a cached simple response would allow every route for the same identity; an identity source would make API
	// Gateway refuse key-less requests on the open env route (DEVICE_AUTH=none) before the authorizer runs
	if a.Identity == nil || a.Identity.ReauthorizeEvery == nil || *a.Identity.ReauthorizeEvery != 0 {
		t.Errorf("authorizer: caching must be off (Identity.ReauthorizeEvery: 0)")
	}
	if a.Identity != nil && (len(a.Identity.Headers) > 0 || len(a.Identity.QueryStrings) > 0) {
		t.Errorf("authorizer: got identity sources %v %v, want none", a.Identity.Headers, a.Identity.QueryStrings)
	}
}
