package authz

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/iot-center/iot-center-serverless/shared/setup"
)

// samFunction is a function's policies and environment in template.yaml.
type samFunction struct {
	Type       string `yaml:"Type"`
	Properties struct {
		Timeout     int   `yaml:"Timeout"`
		Policies    []any `yaml:"Policies"`
		Environment struct {
			Variables map[string]any `yaml:"Variables"`
		} `yaml:"Environment"`
	} `yaml:"Properties"`
}

// templateFunctions reads template.yaml's AWS::Serverless::Function resources by logical id.
func templateFunctions(t *testing.T) map[string]samFunction {
	t.Helper()
	var tpl struct {
		Resources map[string]samFunction `yaml:"Resources"`
	}
	readYAML(t, "template.yaml", &tpl)
	fns := map[string]samFunction{}
	for name, res := range tpl.Resources {
		if res.Type == "AWS::Serverless::Function" {
			fns[name] = res
		}
	}
	return fns
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
	fns := templateFunctions(t)
	// which SSM parameters each function may read: its own token's (setup.FunctionRoles: the admin token's
	// parameter, or its role's under RoleTokenPrefix), and the authorizer its keys
	wantSSM := map[string][]string{}
	for fn, role := range setup.FunctionRoles {
		switch role {
		case "":
			wantSSM[fn] = nil
		case setup.AdminRole:
			wantSSM[fn] = []string{"${InfluxTokenParameter}"}
		default:
			wantSSM[fn] = []string{"${RoleTokenPrefix}/" + role}
		}
	}
	wantSSM["AuthorizerFunction"] = append(wantSSM["AuthorizerFunction"], "${OperatorKeyParameter}", "${DeviceKeyParameter}")
	// setup writes the role tokens: it reads (and writes, and deletes) under the prefix
	wantSSM["SetupFunction"] = append(wantSSM["SetupFunction"], "${RoleTokenPrefix}/*")
	if _, ok := fns["WriteGatewayFunction"]; !ok {
		delete(wantSSM, "WriteGatewayFunction") // (not in this template yet)
	}
	seen := 0
	for name, res := range fns {
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
			if st["Effect"] == "Allow" && slices.Contains(actions, "ssm:GetParameter") {
				got = append(got, resources...)
			}
			if (slices.Contains(actions, "ssm:PutParameter") || slices.Contains(actions, "ssm:DeleteParameter")) && name != "SetupFunction" {
				t.Errorf("%s: may write SSM parameters %v; only SetupFunction writes the role tokens", name, resources)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: may read %d SSM parameters %v, want %d %v", name, len(got), got, len(want), want)
			continue
		}
		for i, p := range want {
			if !strings.HasSuffix(got[i], ":parameter"+p) {
				t.Errorf("%s: SSM resource %q, want the parameter %s", name, got[i], p)
			}
		}
		// the function reads the parameter its policy allows (and no other): INFLUX_TOKEN_PARAMETER agrees
		wantParam := ""
		switch role := setup.FunctionRoles[name]; role {
		case "":
		case setup.AdminRole:
			wantParam = "InfluxTokenParameter" // !Ref
		default:
			wantParam = "${RoleTokenPrefix}/" + role // !Sub
		}
		if got := fmt.Sprint(res.Properties.Environment.Variables["INFLUX_TOKEN_PARAMETER"]); got != wantParam &&
			!(wantParam == "" && (got == "" || got == "<nil>")) {
			t.Errorf("%s: INFLUX_TOKEN_PARAMETER %q, want %q", name, got, wantParam)
		}
	}
	if seen != len(wantSSM) {
		t.Errorf("template.yaml has %d functions, this test knows %d", seen, len(wantSSM))
	}
}

// tableAccess is each function's access to the state table: what it may read (any item) and what it may write,
// and the partition keys its writes are confined to (dynamodb:LeadingKeys). Only register, delete and envconfig
// write device items; the worker writes job items only; the gateway and the authorizer only read.
var tableAccess = map[string]struct {
	read, write []string
	keys        []string
	attrs       []string // the attributes its writes may touch (dynamodb:Attributes); nil: any of its items'
}{
	"AuthorizerFunction": {read: []string{"GetItem", "Query"}},
	// Query: a device's credential and series items together; BatchGetItem: the revocation items; the series
	// budgets share the DEVICE#<id> partition with the credential item: their attributes only
	"WriteGatewayFunction": {read: []string{"GetItem", "BatchGetItem", "Query"}, write: []string{"UpdateItem"}, keys: []string{"DEVICE#*", "COUNTER"},
		attrs: []string{"pk", "sk", "s", "n"}},
	"QueryFunction": {read: []string{"GetItem", "Query"}},
	// the device list: the counter items and the device indexes
	"DevicesFunction": {read: []string{"BatchGetItem", "Query"}},
	// fleet health: a device item's health attributes only, the counters and the positions snapshot
	"FleetHealthFunction": {read: []string{"GetItem", "BatchGetItem", "Query", "Query"}, write: []string{"UpdateItem", "PutItem"},
		keys: []string{"DEVICE#*", "COUNTER", "POSITIONS"}, attrs: []string{"pk", "sk", "id", "deleted", "status", "st", "seen", "sh", "lastSeen", "lat", "lon"}},
	"OverviewFunction":       {read: []string{"GetItem", "Query", "BatchGetItem"}},
	"EnvConfigFunction":      {read: []string{"GetItem", "Query"}, write: []string{"PutItem", "UpdateItem"}, keys: []string{"DEVICE#*", "COUNTER", "REVOKED#*", "REGISTERED#*"}},
	"RegisterFunction":       {read: []string{"GetItem", "BatchGetItem", "Query"}, write: []string{"PutItem", "UpdateItem"}, keys: []string{"DEVICE#*", "COUNTER", "REVOKED#*", "REGISTERED#*"}},
	"DeleteFunction":         {read: []string{"GetItem", "Query"}, write: []string{"PutItem", "UpdateItem", "DeleteItem"}, keys: []string{"DEVICE#*", "COUNTER", "REVOKED#*"}},
	"WriteMissingFunction":   {read: []string{"GetItem", "BatchGetItem", "Query", "Scan"}, write: []string{"PutItem", "UpdateItem"}, keys: []string{"JOB#*", "JOBREQ#*", "JOBS"}},
	"BackfillWorkerFunction": {read: []string{"GetItem", "BatchGetItem", "Scan"}, write: []string{"UpdateItem"}, keys: []string{"JOB#*"}},
	// the delete's second pass: reads the tombstone, clears its pending mark under a generation condition
	"PurgeFunction":  {read: []string{"GetItem"}, write: []string{"UpdateItem"}, keys: []string{"DEVICE#*"}, attrs: []string{"pk", "sk", "purgeAt", "generation"}},
	"HealthFunction": {},
	"UiFunction":     {},
	"SetupFunction":  {},
}

// Each function's policy names exactly the table actions it uses, on the table only, its writes confined to its
// own items' partition keys; a function with table actions gets STATE_TABLE, one without does not.
func TestTemplateTableActions(t *testing.T) {
	for name, res := range templateFunctions(t) {
		want, known := tableAccess[name]
		if !known {
			t.Errorf("%s: not in tableAccess; decide what it may do on the state table", name)
			continue
		}
		stmts, templates := statements(res.Properties.Policies)
		for _, tp := range templates {
			if strings.Contains(tp, "DynamoDB") {
				t.Errorf("%s: policy template %s (broader than the actions it uses)", name, tp)
			}
		}
		var reads, writes, keys, attrs []string
		for _, st := range stmts {
			var table []string
			for _, a := range asList(st["Action"]) {
				if strings.HasPrefix(a, "dynamodb:") {
					table = append(table, strings.TrimPrefix(a, "dynamodb:"))
				}
			}
			if len(table) == 0 {
				continue
			}
			// Query may also read the device list's indexes
			if r := asList(st["Resource"]); len(r) != 1 || (r[0] != "StateTable.Arn" && !(r[0] == "${StateTable.Arn}/index/*" && slices.Equal(table, []string{"Query"}))) {
				t.Errorf("%s: table actions %v on %v, want the state table only", name, table, r)
			}
			cond, _ := st["Condition"].(map[string]any)
			like, _ := cond["ForAllValues:StringLike"].(map[string]any)
			if like == nil {
				reads = append(reads, table...)
				continue
			}
			writes = append(writes, table...)
			keys = append(keys, asList(like["dynamodb:LeadingKeys"])...)
			if eq, _ := cond["ForAllValues:StringEquals"].(map[string]any); eq != nil {
				attrs = append(attrs, asList(eq["dynamodb:Attributes"])...)
			}
		}
		for _, c := range []struct {
			what      string
			got, want []string
		}{{"read actions", reads, want.read}, {"write actions", writes, want.write}, {"write keys", keys, want.keys},
			{"written attributes", attrs, want.attrs}} {
			slices.Sort(c.got)
			w := slices.Sorted(slices.Values(c.want))
			if !slices.Equal(c.got, w) {
				t.Errorf("%s: %s %v, want %v", name, c.what, c.got, w)
			}
		}
		for _, a := range reads {
			if a == "PutItem" || a == "UpdateItem" || a == "DeleteItem" || a == "BatchWriteItem" {
				t.Errorf("%s: %s without a partition-key condition", name, a)
			}
		}
		_, hasEnv := res.Properties.Environment.Variables["STATE_TABLE"]
		if uses := len(reads)+len(writes) > 0; uses != hasEnv {
			t.Errorf("%s: table actions %v but STATE_TABLE set %v", name, uses, hasEnv)
		}
	}
}

// A function that is given a queue's URL may send to that queue, and to no other: its SQSSendMessagePolicy names
// exactly the queues of its *_QUEUE_URL variables.
func TestTemplateQueueSends(t *testing.T) {
	for name, res := range templateFunctions(t) {
		var given, sends []string
		for k, v := range res.Properties.Environment.Variables {
			if strings.HasSuffix(k, "_QUEUE_URL") {
				given = append(given, fmt.Sprint(v)) // !Ref Queue reads as "Queue"
			}
		}
		for _, p := range res.Properties.Policies {
			if m, ok := p.(map[string]any); ok {
				if q, ok := m["SQSSendMessagePolicy"].(map[string]any); ok {
					sends = append(sends, strings.TrimSuffix(fmt.Sprint(q["QueueName"]), ".QueueName"))
				}
			}
		}
		slices.Sort(given)
		slices.Sort(sends)
		if !slices.Equal(given, sends) {
			t.Errorf("%s: given the URLs of queues %v, may send to %v", name, given, sends)
		}
	}
}
