// Package routetest compares a function's real handler with its events in template.yaml (the single source of
// truth for routes): the mux patterns the function's main.go wires must be exactly its HttpApi events.
package routetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/iot-center/iot-center-serverless/internal/devstack"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// Event is a function's event in template.yaml (an API route when Type is HttpApi).
type Event struct {
	Type       string `yaml:"Type"`
	Properties struct {
		Method string `yaml:"Method"`
		Path   string `yaml:"Path"`
		Auth   struct {
			Authorizer string `yaml:"Authorizer"`
		} `yaml:"Auth"`
	} `yaml:"Properties"`
}

type template struct {
	Resources map[string]struct {
		Type       string `yaml:"Type"`
		Properties struct {
			Events map[string]Event `yaml:"Events"`
		} `yaml:"Properties"`
	} `yaml:"Resources"`
}

// ReadTemplate decodes the module's template.yaml into v.
func ReadTemplate(t testing.TB, v any) {
	t.Helper()
	root, err := devstack.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
}

// MemoryMB is the function's MemorySize in template.yaml (the Globals' when the function sets none).
func MemoryMB(t testing.TB, logicalID string) int {
	t.Helper()
	var tpl struct {
		Globals struct {
			Function struct {
				MemorySize int `yaml:"MemorySize"`
			} `yaml:"Function"`
		} `yaml:"Globals"`
		Resources map[string]struct {
			Properties struct {
				MemorySize int `yaml:"MemorySize"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	ReadTemplate(t, &tpl)
	r, ok := tpl.Resources[logicalID]
	switch {
	case !ok:
		t.Fatalf("template.yaml has no %s", logicalID)
	case r.Properties.MemorySize > 0:
		return r.Properties.MemorySize
	case tpl.Globals.Function.MemorySize > 0:
		return tpl.Globals.Function.MemorySize
	}
	t.Fatalf("template.yaml gives %s no MemorySize", logicalID)
	return 0
}

// AuthorizedRoutes are template.yaml's routes the authorizer runs for (all but Auth: NONE), sorted.
func AuthorizedRoutes(t testing.TB) []string {
	t.Helper()
	var tpl template
	ReadTemplate(t, &tpl)
	var out []string
	for _, res := range tpl.Resources {
		for _, ev := range res.Properties.Events {
			if p := ev.Properties; ev.Type == "HttpApi" && p.Auth.Authorizer != "NONE" {
				out = append(out, strings.ToUpper(p.Method)+" "+p.Path)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Pattern is the ServeMux pattern of an API Gateway route key (RouteKey's inverse): "{p+}" is "{p...}", "/" is
// "/{$}".
func Pattern(routeKey string) string {
	method, path, _ := strings.Cut(routeKey, " ")
	if path == "/" {
		path = "/{$}"
	}
	return method + " " + greedy.ReplaceAllString(path, "{$1...}")
}

// TemplateRoutes returns each function's HttpApi routes ("GET /api/devices/{deviceId}") from template.yaml, sorted.
func TemplateRoutes(t testing.TB) map[string][]string {
	t.Helper()
	var tpl template
	ReadTemplate(t, &tpl)
	out := map[string][]string{}
	for id, res := range tpl.Resources {
		if res.Type != "AWS::Serverless::Function" {
			continue
		}
		for _, ev := range res.Properties.Events {
			if ev.Type != "HttpApi" {
				continue
			}
			m := strings.ToUpper(ev.Properties.Method)
			if m == "" {
				m = "ANY"
			}
			out[id] = append(out[id], m+" "+ev.Properties.Path)
		}
		sort.Strings(out[id])
	}
	return out
}

var (
	rest     = regexp.MustCompile(`\{(\w+)\.\.\.\}`)
	exactEnd = regexp.MustCompile(`/\{\$\}$`)
	greedy   = regexp.MustCompile(`\{(\w+)\+\}`)
)

// RouteKey writes a ServeMux pattern as an API Gateway route key: "GET /{$}" is "GET /", "{p...}" is "{p+}", and a
// pattern without a method is "ANY". The catch-all "/" (a 404 fallback, not a route) is "".
func RouteKey(pattern string) string {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "ANY", pattern
	}
	if path == "/" && method == "ANY" {
		return ""
	}
	path = exactEnd.ReplaceAllString(path, "/")
	path = rest.ReplaceAllString(path, "{$1+}")
	return method + " " + path
}

// Check fails the test unless h's patterns are exactly function's events in template.yaml.
func Check(t *testing.T, function string, h *api.Mux) {
	t.Helper()
	if err := compare(function, h.Patterns(), TemplateRoutes(t)); err != nil {
		t.Error(err)
	}
}

func compare(function string, patterns []string, routes map[string][]string) error {
	want := routes[function]
	if len(want) == 0 {
		return fmt.Errorf("template.yaml: %s has no HttpApi event", function)
	}
	var got []string
	for _, p := range patterns {
		if k := RouteKey(p); k != "" {
			got = append(got, k)
		}
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		return fmt.Errorf("%s: the handler serves %q, template.yaml routes %q to it", function, got, want)
	}
	return nil
}

// Deps are what a function's handler is built from, for a test that only lists its routes: a configuration with
// the bucket names, a client of an address nothing answers on (never called), and env as the environment.
func Deps(env map[string]string) lambdaapp.Deps {
	cfg := config.Config{InfluxURL: "http://127.0.0.1:9", Org: "org", Bucket: "iot_center",
		BucketDownsampled: "iot_center_1h", MaxDevices: 1000}
	return lambdaapp.NewDeps(cfg, influx.New(cfg.InfluxURL, "", cfg.Org, influx.Options{}), nil,
		func(k string) string {
			if v, ok := env[k]; ok || k != store.EnvTable {
				return v
			}
			return "state" // a table name: wiring builds its client, never calls it
		})
}

// Mount builds a function's routes as its main does (lambdaapp.HTTP) from d; a build error, or a variable the
// build read and found invalid, fails the test.
func Mount(t testing.TB, build func(context.Context, lambdaapp.Deps) (*api.Mux, error), d lambdaapp.Deps) *api.Mux {
	t.Helper()
	mux, err := build(t.Context(), d)
	if err == nil {
		err = d.Env().Err()
	}
	if err != nil {
		t.Fatalf("building the function's routes: %v", err)
	}
	return mux
}
