package samtpl

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/devstack"
)

func repoTemplate(t *testing.T) string {
	t.Helper()
	root, err := devstack.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "template.yaml")
}

func TestLoadRealTemplate(t *testing.T) {
	tpl, err := Load(repoTemplate(t), map[string]string{"InfluxUrl": "http://127.0.0.1:8086", "InfluxOrg": "my-org", "MaxDevices": "5"})
	if err != nil {
		t.Fatal(err)
	}
	wantFns := []string{"AuthorizerFunction", "BackfillWorkerFunction", "DeleteFunction", "DevicesFunction", "EnvConfigFunction",
		"FleetHealthFunction", "HealthFunction", "OverviewFunction", "PurgeFunction", "QueryFunction", "RegisterFunction", "SetupFunction", "UiFunction",
		"WriteGatewayFunction", "WriteMissingFunction"}
	if got := tpl.IDs(); len(got) != len(wantFns) {
		t.Fatalf("functions = %v, want %v", got, wantFns)
	}
	for _, id := range wantFns {
		if tpl.Functions[id] == nil {
			t.Errorf("function %s missing", id)
		}
	}

	wm := tpl.Functions["WriteMissingFunction"]
	envTests := []struct{ fn, key, want string }{
		{"WriteMissingFunction", "INFLUX_URL", "http://127.0.0.1:8086"}, // Globals, parameter override
		{"WriteMissingFunction", "INFLUX_ORG", "my-org"},
		{"WriteMissingFunction", "INFLUX_BUCKET", "iot_center"},   // parameter default
		{"WriteMissingFunction", "MAX_DEVICES", "5"},              // number parameter, override
		{"WriteMissingFunction", "CHUNK_QUEUE_URL", "ChunkQueue"}, // !Ref of a resource: its logical id (the local API maps queues to URLs)
		{"BackfillWorkerFunction", "CHUNK_MINUTES", "1440"},       // number default
		{"BackfillWorkerFunction", "DEFAULT_LAT", "50.0873254"},   // function's own variable
		{"AuthorizerFunction", "DEVICE_AUTH", "key"},
		{"AuthorizerFunction", "INFLUX_TOKEN_PARAMETER", "/iot-center/roles/data-read"}, // !Sub of a parameter
		{"EnvConfigFunction", "INFLUX_TOKEN_PARAMETER", "/iot-center/influx-token"},
		{"QueryFunction", "INFLUX_TOKEN", ""}, // declared empty (sam local --env-vars sets it)
		{"QueryFunction", "QUERY_TIMEOUT", "12s"},
		{"WriteGatewayFunction", "INFLUX_TOKEN_PARAMETER", "/iot-center/roles/gateway"},
		{"WriteGatewayFunction", "DATA_RETENTION_DAYS", "30"},
	}
	for _, tc := range envTests {
		if got := tpl.Functions[tc.fn].Env[tc.key]; got != tc.want {
			t.Errorf("%s env %s = %q, want %q", tc.fn, tc.key, got, tc.want)
		}
	}
	if wm.Timeout != 29 {
		t.Errorf("WriteMissingFunction timeout = %d, want 29", wm.Timeout)
	}
	if got := tpl.Functions["HealthFunction"].Timeout; got != 5 {
		t.Errorf("HealthFunction timeout = %d, want 5", got)
	}
	if got := tpl.Functions["DevicesFunction"].Timeout; got != 10 {
		t.Errorf("DevicesFunction timeout = %d, want 10 (Globals)", got)
	}
	bw := tpl.Functions["BackfillWorkerFunction"]
	wantSQS := SQSEvent{Name: "ChunkQueue", Queue: "ChunkQueue", BatchSize: 1, MaximumConcurrency: 4, ReportItemFailures: true, Enabled: true}
	if len(bw.SQS) != 1 || bw.SQS[0] != wantSQS {
		t.Errorf("BackfillWorkerFunction SQS events = %+v, want [%+v]", bw.SQS, wantSQS)
	}
	if len(bw.InvokedBy) != 1 || bw.InvokedBy[0] != "sqs:ChunkQueue" {
		t.Errorf("BackfillWorkerFunction invoked by %v", bw.InvokedBy)
	}
	q := tpl.Queues["ChunkQueue"]
	if q == nil || q.DeadLetter != "BackfillDeadLetterQueue" || q.MaxReceiveCount != 10 || q.VisibilityTimeout != 720 {
		t.Errorf("ChunkQueue = %+v, want a redrive to BackfillDeadLetterQueue after 10 receives, visibility 720 s", q)
	}
	if got := tpl.Functions["SetupFunction"].InvokedBy; len(got) != 1 || got[0] != "custom-resource:InfluxSetup" {
		t.Errorf("SetupFunction invoked by %v", got)
	}
	if got := tpl.Functions["AuthorizerFunction"].InvokedBy; len(got) != 1 || got[0] != "authorizer" {
		t.Errorf("AuthorizerFunction invoked by %v", got)
	}

	routes := map[string]Route{}
	for _, r := range tpl.Routes {
		routes[r.Key()] = r
	}
	routeTests := []struct {
		key, fn string
		authed  bool
	}{
		{"GET /api/env/{deviceId}", "EnvConfigFunction", true},
		{"POST /api/devices/{deviceId}/rotate", "RegisterFunction", true},
		{"GET /api/write-missing", "WriteMissingFunction", true},
		{"GET /api/health", "HealthFunction", false},
		{"GET /", "UiFunction", false},
		{"GET /assets/{proxy+}", "UiFunction", false},
		{"DELETE /api/devices/{deviceId}", "DeleteFunction", true},
		{"POST /api/v2/write", "WriteGatewayFunction", false}, // authenticates the device credential itself
		{"POST /api/devices", "RegisterFunction", true},
		{"GET /api/devices/counts", "DevicesFunction", true},
	}
	for _, tc := range routeTests {
		r, ok := routes[tc.key]
		if !ok {
			t.Errorf("route %s missing", tc.key)
			continue
		}
		if r.Function != tc.fn || (r.Authorizer != nil) != tc.authed {
			t.Errorf("route %s = %s authed %v, want %s authed %v", tc.key, r.Function, r.Authorizer != nil, tc.fn, tc.authed)
		}
		if r.Authorizer != nil {
			a := r.Authorizer
			if a.Function != "AuthorizerFunction" || !a.SimpleResponses || a.PayloadVersion != "2.0" || a.ReauthorizeEvery != 0 || len(a.IdentitySources) != 0 {
				t.Errorf("route %s authorizer = %+v", tc.key, *a)
			}
		}
	}
	if len(tpl.Routes) != 23 {
		t.Errorf("got %d routes, want 23", len(tpl.Routes))
	}
}

func TestRateEvery(t *testing.T) {
	tests := []struct {
		expr string
		want time.Duration
		ok   bool
	}{
		{"rate(5 minutes)", 5 * time.Minute, true},
		{"rate(1 minute)", time.Minute, true},
		{"rate(2 hours)", 2 * time.Hour, true},
		{"rate(1 day)", 24 * time.Hour, true},
		{"rate(0 minutes)", 0, false},
		{"rate(5 weeks)", 0, false},
		{"cron(0 * * * ? *)", 0, false},
		{"rate(99999999999999999999 minutes)", 0, false},
	}
	for _, tc := range tests {
		got, err := RateEvery(tc.expr)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("RateEvery(%q) = %v, %v; want %v, ok %v", tc.expr, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseErrors(t *testing.T) {
	if _, err := Load(repoTemplate(t), map[string]string{"NoSuchParameter": "x"}); err == nil {
		t.Error("override of an unknown parameter accepted")
	}
	if _, err := Parse([]byte("Resources: [\n"), nil); err == nil {
		t.Error("invalid YAML accepted")
	}
}

func TestUnresolvedParameterReported(t *testing.T) {
	tpl, err := Load(repoTemplate(t), nil) // InfluxUrl and InfluxOrg have no default
	if err != nil {
		t.Fatal(err)
	}
	got := tpl.Functions["HealthFunction"].Unresolved
	if len(got) != 2 || got[0] != "INFLUX_ORG" || got[1] != "INFLUX_URL" {
		t.Errorf("unresolved = %v, want [INFLUX_ORG INFLUX_URL]", got)
	}
}

func TestFunctionName(t *testing.T) {
	for in, want := range map[string]string{
		"BackfillWorkerFunction":                                     "BackfillWorkerFunction",
		"arn:aws:lambda:us-east-1:123456789012:function:Foo":         "Foo",
		"arn:aws:lambda:us-east-1:123456789012:function:Foo:$LATEST": "Foo",
		"123456789012:function:Bar":                                  "Bar",
		"Foo:prod":                                                   "Foo",
	} {
		if got := FunctionName(in); got != want {
			t.Errorf("FunctionName(%q) = %q, want %q", in, got, want)
		}
	}
}
