package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/testfn"
)

// node returns the child of a mapping node at path (nil when missing).
func node(n *yaml.Node, path ...string) *yaml.Node {
	for _, key := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

func templateRoot(t *testing.T) *yaml.Node {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testfn.Root(), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

// TestFunctionsLogWithRetention: every function logs to a log group of the template that has a retention.
func TestFunctionsLogWithRetention(t *testing.T) {
	root := templateRoot(t)
	res := node(root, "Resources")
	n := 0
	for i := 0; i+1 < len(res.Content); i += 2 {
		id, r := res.Content[i].Value, res.Content[i+1]
		if node(r, "Type").Value != "AWS::Serverless::Function" {
			continue
		}
		n++
		lg := node(r, "Properties", "LoggingConfig", "LogGroup")
		if lg == nil || lg.Tag != "!Ref" {
			t.Errorf("%s: no LoggingConfig.LogGroup: !Ref <a log group of this template>", id)
			continue
		}
		g := node(res, lg.Value)
		if g == nil || node(g, "Type").Value != "AWS::Logs::LogGroup" || node(g, "Properties", "RetentionInDays") == nil {
			t.Errorf("%s: log group %s is not an AWS::Logs::LogGroup with RetentionInDays", id, lg.Value)
		}
	}
	if n == 0 {
		t.Fatal("no function found in template.yaml")
	}
}

// TestSSMParameterNamesStartWithSlash: the policies build ARNs as "...:parameter${Name}", which is only right for
// names with their leading slash.
func TestSSMParameterNamesStartWithSlash(t *testing.T) {
	params := node(templateRoot(t), "Parameters")
	for i := 0; i+1 < len(params.Content); i += 2 {
		name := params.Content[i].Value
		if !strings.HasSuffix(name, "Parameter") {
			continue
		}
		p := node(params, name, "AllowedPattern")
		if p == nil || !strings.HasPrefix(p.Value, "^/") {
			t.Errorf("%s: AllowedPattern = %v, want one requiring a leading /", name, p)
		}
		if d := node(params, name, "Default"); d == nil || !strings.HasPrefix(d.Value, "/") {
			t.Errorf("%s: default %v does not start with /", name, d)
		}
	}
}

// TestSetupRerunsOnInfluxChange: the custom resource carries the InfluxDB it prepares, so changing it updates the
// resource and runs setup again.
func TestSetupRerunsOnInfluxChange(t *testing.T) {
	props := node(templateRoot(t), "Resources", "InfluxSetup", "Properties")
	for _, p := range []string{"InfluxUrl", "InfluxOrg", "InfluxTokenParameter"} {
		if v := node(props, p); v == nil || v.Tag != "!Ref" || v.Value != p {
			t.Errorf("InfluxSetup.%s = %v, want !Ref %s", p, v, p)
		}
	}
}

// TestMakefileArchitecture: build-<LogicalId> builds for template.yaml's architecture (its Architectures
// parameter's default) even when the shell exports another GOARCH (SAM runs make in the caller's environment);
// LAMBDA_ARCHITECTURE (the parameter's value) or LAMBDA_GOARCH on the command line change it.
func TestMakefileArchitecture(t *testing.T) {
	root := templateRoot(t)
	arch := node(root, "Globals", "Function", "Architectures")
	if arch == nil || len(arch.Content) != 1 || arch.Content[0].Tag != "!Ref" {
		t.Fatalf("Globals.Function.Architectures = %v, want [!Ref Architectures]", arch)
	}
	def := node(root, "Parameters", arch.Content[0].Value, "Default")
	if def == nil || def.Value != "arm64" {
		t.Fatalf("the Architectures parameter's default is %v, want arm64 (the deployed functions')", def)
	}
	want := "GOARCH=arm64"
	dryRun := func(env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command("make", append([]string{"-n", "--no-print-directory", "build-HealthFunction"}, args...)...)
		cmd.Dir = testfn.Root()
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make -n: %v\n%s", err, out)
		}
		return string(out)
	}
	for _, goarch := range []string{"amd64", "arm64", "386"} {
		if out := dryRun([]string{"GOARCH=" + goarch}); !strings.Contains(out, want+" ") {
			t.Errorf("with GOARCH=%s exported, make builds %q, want %s", goarch, out, want)
		}
	}
	if out := dryRun(nil, "LAMBDA_GOARCH=amd64"); !strings.Contains(out, "GOARCH=amd64 ") {
		t.Errorf("with LAMBDA_GOARCH=amd64, make builds %q, want GOARCH=amd64", out)
	}
	for env, want := range map[string]string{"x86_64": "GOARCH=amd64 ", "arm64": "GOARCH=arm64 "} {
		if out := dryRun([]string{"LAMBDA_ARCHITECTURE=" + env}); !strings.Contains(out, want) {
			t.Errorf("with LAMBDA_ARCHITECTURE=%s, make builds %q, want %s", env, out, want)
		}
	}
	cmd := exec.Command("make", "-n", "build-HealthFunction", "LAMBDA_ARCHITECTURE=amd64")
	cmd.Dir = testfn.Root()
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "must be arm64 or x86_64") {
		t.Errorf("LAMBDA_ARCHITECTURE=amd64: %v %s, want make to refuse it", err, out)
	}
}

// TestRouteFunctionsAnswerBeforeTheIntegrationLimit: HTTP API gives an integration 30 s, then answers 503 itself;
// every function behind a route has a timeout below that, so its own deadline handling answers first.
func TestRouteFunctionsAnswerBeforeTheIntegrationLimit(t *testing.T) {
	root := templateRoot(t)
	global, err := strconv.Atoi(node(root, "Globals", "Function", "Timeout").Value)
	if err != nil {
		t.Fatal(err)
	}
	res := node(root, "Resources")
	routed := 0
	for i := 0; i+1 < len(res.Content); i += 2 {
		id, r := res.Content[i].Value, res.Content[i+1]
		if node(r, "Type").Value != "AWS::Serverless::Function" {
			continue
		}
		events := node(r, "Properties", "Events")
		http := false
		for j := 0; events != nil && j+1 < len(events.Content); j += 2 {
			http = http || node(events.Content[j+1], "Type").Value == "HttpApi"
		}
		if !http {
			continue
		}
		routed++
		timeout := global
		if v := node(r, "Properties", "Timeout"); v != nil {
			if timeout, err = strconv.Atoi(v.Value); err != nil {
				t.Fatalf("%s: Timeout %q", id, v.Value)
			}
		}
		if timeout >= 30 {
			t.Errorf("%s: Timeout %d s, want under HTTP API's 30 s integration limit", id, timeout)
		}
	}
	if routed == 0 {
		t.Errorf("no function with an HttpApi event found")
	}
}

// TestAlarmsWatchTheStacksMetrics: the alarms on the functions' own (EMF) metrics watch the namespace the functions
// write (Globals' METRICS_NAMESPACE, one per stack), so two stacks never share a metric or an alarm's data.
func TestAlarmsWatchTheStacksMetrics(t *testing.T) {
	root := templateRoot(t)
	want := node(root, "Globals", "Function", "Environment", "Variables", "METRICS_NAMESPACE")
	if want == nil || want.Tag != "!Sub" || !strings.Contains(want.Value, "${AWS::StackName}") {
		t.Fatalf("METRICS_NAMESPACE = %v, want a !Sub naming the stack", want)
	}
	res := node(root, "Resources")
	seen := map[string]bool{}
	for i := 0; i+1 < len(res.Content); i += 2 {
		id, r := res.Content[i].Value, res.Content[i+1]
		if node(r, "Type").Value != "AWS::CloudWatch::Alarm" {
			continue
		}
		check := func(ns, metric *yaml.Node) {
			if ns == nil || strings.HasPrefix(ns.Value, "AWS/") {
				return
			}
			if ns.Tag != want.Tag || ns.Value != want.Value {
				t.Errorf("%s watches namespace %s %q, want the functions' %s %q", id, ns.Tag, ns.Value, want.Tag, want.Value)
			}
			seen[metric.Value] = true
		}
		p := node(r, "Properties")
		check(node(p, "Namespace"), node(p, "MetricName"))
		metrics := node(p, "Metrics")
		for j := 0; metrics != nil && j < len(metrics.Content); j++ {
			m := node(metrics.Content[j], "MetricStat", "Metric")
			check(node(m, "Namespace"), node(m, "MetricName"))
		}
	}
	for _, m := range []string{"SilentDevices", "TasksRetried", "ChunksFailed"} {
		if !seen[m] {
			t.Errorf("no alarm watches %s", m)
		}
	}
}
