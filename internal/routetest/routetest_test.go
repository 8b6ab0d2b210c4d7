package routetest

import (
	"slices"
	"testing"
)

func TestRouteKey(t *testing.T) {
	for _, tc := range []struct{ pattern, want string }{
		{"GET /api/devices/{deviceId}", "GET /api/devices/{deviceId}"},
		{"GET /{$}", "GET /"},
		{"GET /assets/{proxy...}", "GET /assets/{proxy+}"},
		{"/api/x", "ANY /api/x"},
		{"/", ""},
	} {
		if got := RouteKey(tc.pattern); got != tc.want {
			t.Errorf("RouteKey(%q) = %q, want %q", tc.pattern, got, tc.want)
		}
	}
}

func TestTemplateRoutesHasEveryFunctionWithEvents(t *testing.T) {
	routes := TemplateRoutes(t)
	if got := routes["HealthFunction"]; len(got) != 1 || got[0] != "GET /api/health" {
		t.Errorf("HealthFunction routes = %q, want [GET /api/health]", got)
	}
	if _, ok := routes["BackfillWorkerFunction"]; ok {
		t.Errorf("BackfillWorkerFunction has routes %q, want none (it is invoked, not routed)", routes["BackfillWorkerFunction"])
	}
}

// TestCompare: the exact set passes; one route too many, too few, or with another method fails.
func TestCompare(t *testing.T) {
	routes := map[string][]string{"HealthFunction": {"GET /api/health"}}
	for name, tc := range map[string]struct {
		patterns []string
		ok       bool
	}{
		"exact":   {[]string{"GET /api/health", "/"}, true},
		"extra":   {[]string{"GET /api/health", "POST /api/health"}, false},
		"missing": {nil, false},
		"method":  {[]string{"POST /api/health"}, false},
	} {
		err := compare("HealthFunction", tc.patterns, routes)
		if (err == nil) != tc.ok {
			t.Errorf("%s: compare(%q) = %v, want ok=%v", name, tc.patterns, err, tc.ok)
		}
	}
	if err := compare("NoRoutesFunction", []string{"GET /x"}, routes); err == nil {
		t.Error("compare for a function without events = nil, want an error")
	}
}

// Access names exactly template.yaml's routes: a new route cannot be mounted without saying who may use it.
func TestAccessCoversTheTemplate(t *testing.T) {
	var routes []string
	for _, rs := range TemplateRoutes(t) {
		routes = append(routes, rs...)
	}
	for _, r := range routes {
		if _, ok := Access[r]; !ok {
			t.Errorf("%s: in template.yaml, not in Access", r)
		}
	}
	for r, callers := range Access {
		if !slices.Contains(routes, r) {
			t.Errorf("%s: in Access, not in template.yaml", r)
		}
		for _, c := range callers {
			if !slices.Contains(Callers, c) {
				t.Errorf("%s: caller %q is not one of %q", r, c, Callers)
			}
		}
	}
}

// Pattern undoes RouteKey for every route of the template.
func TestPatternIsRouteKeysInverse(t *testing.T) {
	for _, key := range AuthorizedRoutes(t) {
		if got := RouteKey(Pattern(key)); got != key {
			t.Errorf("RouteKey(Pattern(%q)) = %q", key, got)
		}
	}
	for _, key := range []string{"GET /", "GET /assets/{proxy+}"} {
		if got := RouteKey(Pattern(key)); got != key {
			t.Errorf("RouteKey(Pattern(%q)) = %q", key, got)
		}
	}
	if n := len(AuthorizedRoutes(t)); n < 10 {
		t.Errorf("%d authorized routes: the template scan is broken", n)
	}
}
