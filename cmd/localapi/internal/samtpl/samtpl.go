// Package samtpl reads the SAM template the way `sam local` needs it: intrinsic functions resolved by goformation
// (short forms included) with parameter overrides, Globals merged into each function, and only the few properties
// the local API uses copied into small structs.
package samtpl

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
)

// Local values of the pseudo parameters, as goformation resolves them.
const (
	Region    = "us-east-1"
	AccountID = "123456789012"
)

// FunctionARN is the fake ARN `!GetAtt X.Arn` resolves to for a function X.
func FunctionARN(id string) string {
	return "arn:aws:lambda:" + Region + ":" + AccountID + ":function:" + id
}

// ResourceARN is the fake ARN `!GetAtt X.Arn` resolves to for another resource X (a DynamoDB table's among them).
func ResourceARN(id string) string { return "arn:aws:local:" + Region + ":" + AccountID + ":" + id }

// FunctionName returns the function name inside a name, partial or full ARN (qualifier dropped).
func FunctionName(nameOrARN string) string {
	s := nameOrARN
	if i := strings.Index(s, ":function:"); i >= 0 {
		s = s[i+len(":function:"):]
	} else if strings.HasPrefix(s, "function:") {
		s = strings.TrimPrefix(s, "function:")
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	return s
}

// Template is what the local API runs.
type Template struct {
	Functions map[string]*Function // by logical id
	Routes    []Route              // every HttpApi event of every function
	// Parameters holds the resolved parameter values (defaults with overrides applied).
	Parameters map[string]string
	// Queues are the AWS::SQS::Queue resources, by logical id (events.go).
	Queues map[string]*Queue
	// Tables are the logical ids of the AWS::DynamoDB::Table resources (a Ref to one resolves to its logical id,
	// which is the local table's name).
	Tables []string
}

// Function is one AWS::Serverless::Function with Globals merged.
type Function struct {
	LogicalID  string
	Timeout    int // seconds
	MemorySize int // MB
	LogFormat  string
	Env        map[string]string // Environment.Variables, resolved
	// Unresolved lists environment variables whose value resolved to nothing (a parameter without a value).
	Unresolved []string
	Async      AsyncConfig
	// InvokedBy names what invokes the function other than an HTTP route: "authorizer", "custom-resource:<id>",
	// "env:<FunctionId>.<VAR>".
	InvokedBy []string
	// SQS and Schedules are the function's SQS and Schedule events (events.go).
	SQS       []SQSEvent
	Schedules []Schedule
	// Policies is the resolved Policies property (the local IAM stand-in evaluates its DynamoDB statements).
	Policies any
}

// AsyncConfig is the function's EventInvokeConfig.
type AsyncConfig struct {
	MaximumRetryAttempts int    // 0..2; Lambda's default is 2
	OnFailureType        string // SQS, SNS, Lambda, EventBridge, S3 or ""
	OnFailure            string // destination ARN or ""
}

// Route is one HttpApi event.
type Route struct {
	Method     string // upper case; ANY matches every method
	Path       string
	Function   string
	Event      string
	Authorizer *Authorizer // nil when the route is public (Auth: Authorizer: NONE or no authorizer)
}

// Key is the API Gateway route key, "GET /api/devices".
func (r Route) Key() string { return r.Method + " " + r.Path }

// Authorizer is an HTTP API Lambda authorizer.
type Authorizer struct {
	Name            string
	Function        string // logical id of the authorizer function
	PayloadVersion  string
	SimpleResponses bool
	// IdentitySources are the request parts that must be present (401 when missing); empty: none required.
	IdentitySources  []string
	ReauthorizeEvery int
}

// Load reads and resolves the template file.
func Load(path string, overrides map[string]string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b, overrides)
}

// Parse resolves intrinsics (with parameter overrides) and extracts functions, routes and authorizers.
func Parse(data []byte, overrides map[string]string) (*Template, error) {
	raw, err := resolve(data, overrides)
	if err != nil {
		return nil, err
	}
	t := &Template{Functions: map[string]*Function{}, Parameters: map[string]string{}}
	for name, p := range raw.Parameters {
		if v, ok := p["Default"]; ok {
			if s, ok := scalar(v); ok {
				t.Parameters[name] = s
			}
		}
	}
	ids := slices.Sorted(maps.Keys(raw.Resources))
	apis, err := httpAPIs(raw.Resources, ids)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		res := raw.Resources[id]
		if res.Type == "AWS::DynamoDB::Table" {
			t.Tables = append(t.Tables, id)
		}
		if res.Type != "AWS::Serverless::Function" {
			continue
		}
		f, routes, err := parseFunction(id, merge(raw.Globals.Function, res.Properties), apis)
		if err != nil {
			return nil, err
		}
		t.Functions[id] = f
		t.Routes = append(t.Routes, routes...)
	}
	t.linkInvokers(raw.Resources, ids)
	if err := addEventSources(t, raw.Resources); err != nil {
		return nil, err
	}
	for _, r := range t.Routes {
		if r.Authorizer != nil {
			if _, ok := t.Functions[r.Authorizer.Function]; !ok {
				return nil, fmt.Errorf("template: route %s: authorizer function %q is not a function of the template", r.Key(), r.Authorizer.Function)
			}
		}
	}
	return t, nil
}

// IDs returns the function logical ids, sorted.
func (t *Template) IDs() []string { return slices.Sorted(maps.Keys(t.Functions)) }
