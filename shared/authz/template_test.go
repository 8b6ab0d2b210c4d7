package authz

import (
	"fmt"
	"strings"
	"testing"
)

// samFunctions reads each function's policies and environment from template.yaml.
type samFunctions struct {
	Resources map[string]struct {
		Type       string `yaml:"Type"`
		Properties struct {
			Timeout  int   `yaml:"Timeout"`
			Policies []any `yaml:"Policies"`
		} `yaml:"Properties"`
	} `yaml:"Resources"`
}

// statements flattens a function's inline policy statements; policy templates (maps without Statement) are
// returned by name.
func statements(policies []any) (stmts []map[string]any, templates []string) {
	for _, p := range policies {
		m, ok := p.(map[string]any)
		if !ok {
			templates = append(templates, fmt.Sprint(p))
			continue
		}
		if s, ok := m["Statement"].([]any); ok {
			for _, st := range s {
				if sm, ok := st.(map[string]any); ok {
					stmts = append(stmts, sm)
				}
			}
			continue
		}
		for name := range m {
			templates = append(templates, name)
		}
	}
	return stmts, templates
}

func asList(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}

func TestTemplateLeastPrivilege(t *testing.T) {
	var tpl samFunctions
	readYAML(t, "template.yaml", &tpl)
	// which functions may read which SSM parameters (by the template parameter naming them)
	wantSSM := map[string][]string{
		"AuthorizerFunction":     {"InfluxTokenParameter", "OperatorKeyParameter", "DeviceKeyParameter"},
		"EnvConfigFunction":      {"InfluxTokenParameter"},
		"RegisterFunction":       {"InfluxTokenParameter"},
		"DevicesFunction":        {"InfluxTokenParameter"},
		"DeleteFunction":         {"InfluxTokenParameter"},
		"WriteMissingFunction":   {"InfluxTokenParameter"},
		"BackfillWorkerFunction": {"InfluxTokenParameter"},
		"QueryFunction":          {"InfluxTokenParameter"},
		"SetupFunction":          {"InfluxTokenParameter"},
		"HealthFunction":         nil,
		"UiFunction":             nil,
	}
	seen := 0
	for name, res := range tpl.Resources {
		if res.Type != "AWS::Serverless::Function" {
			continue
		}
		seen++
		want, known := wantSSM[name]
		if !known {
			t.Errorf("%s: not in this test's table; decide what it may read", name)
			continue
		}
		stmts, _ := statements(res.Properties.Policies)
		var got []string
		for _, st := range stmts {
			actions, resources := asList(st["Action"]), asList(st["Resource"])
			for _, a := range actions {
				if strings.Contains(a, "*") {
					t.Errorf("%s: wildcard action %q", name, a)
				}
			}
			for _, r := range resources {
				if r == "*" {
					t.Errorf("%s: action %v on every resource", name, actions)
				}
			}
			if st["Effect"] == "Allow" && len(actions) == 1 && actions[0] == "ssm:GetParameter" {
				for _, r := range resources {
					got = append(got, r)
				}
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: may read %d SSM parameters %v, want %d %v", name, len(got), got, len(want), want)
			continue
		}
		for i, p := range want {
			if !strings.HasSuffix(got[i], ":parameter${"+p+"}") {
				t.Errorf("%s: SSM resource %q, want the parameter named by %s", name, got[i], p)
			}
		}
	}
	if seen != len(wantSSM) {
		t.Errorf("template.yaml has %d functions, this test knows %d", seen, len(wantSSM))
	}
}
