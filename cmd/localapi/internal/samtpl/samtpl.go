// Package samtpl reads the SAM template the way `sam local` needs it: intrinsic functions resolved by goformation
// (short forms included) with parameter overrides, Globals merged into each function, and only the few properties
// the local API uses copied into small structs.
package samtpl

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/awslabs/goformation/v7/intrinsics"
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

type rawTemplate struct {
	Parameters map[string]map[string]any `json:"Parameters"`
	Globals    struct {
		Function map[string]any `json:"Function"`
	} `json:"Globals"`
	Resources map[string]rawResource `json:"Resources"`
}

type rawResource struct {
	Type       string         `json:"Type"`
	Properties map[string]any `json:"Properties"`
}

type fnProps struct {
	Timeout     *float64 `json:"Timeout"`
	MemorySize  *float64 `json:"MemorySize"`
	Environment struct {
		Variables map[string]any `json:"Variables"`
	} `json:"Environment"`
	LoggingConfig struct {
		LogFormat string `json:"LogFormat"`
	} `json:"LoggingConfig"`
	Events            map[string]rawEvent `json:"Events"`
	EventInvokeConfig *struct {
		MaximumRetryAttempts *float64 `json:"MaximumRetryAttempts"`
		DestinationConfig    struct {
			OnFailure struct {
				Type        string `json:"Type"`
				Destination any    `json:"Destination"`
			} `json:"OnFailure"`
		} `json:"DestinationConfig"`
	} `json:"EventInvokeConfig"`
}

type rawEvent struct {
	Type       string `json:"Type"`
	Properties struct {
		ApiId  any    `json:"ApiId"`
		Method string `json:"Method"`
		Path   string `json:"Path"`
		Auth   *struct {
			Authorizer string `json:"Authorizer"`
		} `json:"Auth"`
	} `json:"Properties"`
}

type httpAPIProps struct {
	Auth struct {
		DefaultAuthorizer string `json:"DefaultAuthorizer"`
		Authorizers       map[string]struct {
			FunctionArn                    any  `json:"FunctionArn"`
			AuthorizerPayloadFormatVersion any  `json:"AuthorizerPayloadFormatVersion"`
			EnableSimpleResponses          bool `json:"EnableSimpleResponses"`
			JwtConfiguration               any  `json:"JwtConfiguration"`
			Identity                       *struct {
				Headers          []string `json:"Headers"`
				QueryStrings     []string `json:"QueryStrings"`
				ReauthorizeEvery *float64 `json:"ReauthorizeEvery"`
			} `json:"Identity"`
		} `json:"Authorizers"`
	} `json:"Auth"`
}

// Parse resolves intrinsics (with parameter overrides) and extracts functions, routes and authorizers.
func Parse(data []byte, overrides map[string]string) (*Template, error) {
	// Resource names are needed by the Ref handler before processing: read them from a non-processed pass.
	unprocessed, err := intrinsics.ProcessYAML(data, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	var pre rawTemplate
	if err := json.Unmarshal(unprocessed, &pre); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	for name := range overrides {
		if _, ok := pre.Parameters[name]; !ok {
			return nil, fmt.Errorf("template: parameter override %s: no such parameter", name)
		}
	}
	po := map[string]any{}
	for k, v := range overrides {
		po[k] = v
	}
	opts := &intrinsics.ProcessorOptions{
		ParameterOverrides: po,
		EvaluateConditions: true,
		IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{
			"Ref":        refHandler(pre.Resources),
			"Fn::GetAtt": getAttHandler(pre.Resources),
		},
	}
	processed, err := intrinsics.ProcessYAML(data, opts)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	var raw rawTemplate
	if err := json.Unmarshal(processed, &raw); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	t := &Template{Functions: map[string]*Function{}, Parameters: map[string]string{}}
	for name, p := range raw.Parameters {
		if v, ok := p["Default"]; ok {
			if s, ok := scalar(v); ok {
				t.Parameters[name] = s
			}
		}
	}
	apis := map[string]httpAPIProps{}
	ids := sortedKeys(raw.Resources)
	for _, id := range ids {
		res := raw.Resources[id]
		if res.Type != "AWS::Serverless::HttpApi" {
			continue
		}
		var p httpAPIProps
		if err := remarshal(res.Properties, &p); err != nil {
			return nil, fmt.Errorf("template: %s: %w", id, err)
		}
		apis[id] = p
	}
	for _, id := range ids {
		res := raw.Resources[id]
		if res.Type != "AWS::Serverless::Function" {
			continue
		}
		merged := merge(raw.Globals.Function, res.Properties)
		var p fnProps
		if err := remarshal(merged, &p); err != nil {
			return nil, fmt.Errorf("template: %s: %w", id, err)
		}
		f := &Function{LogicalID: id, Timeout: 3, MemorySize: 128, LogFormat: p.LoggingConfig.LogFormat,
			Env: map[string]string{}, Async: AsyncConfig{MaximumRetryAttempts: 2}}
		if p.Timeout != nil {
			f.Timeout = int(*p.Timeout)
		}
		if p.MemorySize != nil {
			f.MemorySize = int(*p.MemorySize)
		}
		for k, v := range p.Environment.Variables {
			s, ok := scalar(v)
			if !ok {
				f.Unresolved = append(f.Unresolved, k)
				continue
			}
			f.Env[k] = s
		}
		sort.Strings(f.Unresolved)
		if c := p.EventInvokeConfig; c != nil {
			if c.MaximumRetryAttempts != nil {
				f.Async.MaximumRetryAttempts = int(*c.MaximumRetryAttempts)
			}
			f.Async.OnFailureType = c.DestinationConfig.OnFailure.Type
			f.Async.OnFailure, _ = scalar(c.DestinationConfig.OnFailure.Destination)
		}
		for _, ev := range sortedKeys(p.Events) {
			e := p.Events[ev]
			if e.Type != "HttpApi" {
				continue
			}
			r := Route{Method: strings.ToUpper(e.Properties.Method), Path: e.Properties.Path, Function: id, Event: ev}
			if r.Method == "" {
				r.Method = "ANY"
			}
			if r.Path == "" {
				return nil, fmt.Errorf("template: %s event %s: HttpApi without Path (the $default route is not supported locally)", id, ev)
			}
			apiID, _ := scalar(e.Properties.ApiId)
			api, hasAPI := apis[apiID]
			name := ""
			if hasAPI {
				name = api.Auth.DefaultAuthorizer
			}
			if e.Properties.Auth != nil && e.Properties.Auth.Authorizer != "" {
				name = e.Properties.Auth.Authorizer
			}
			if name != "" && name != "NONE" {
				a, ok := api.Auth.Authorizers[name]
				if !ok {
					return nil, fmt.Errorf("template: %s event %s: authorizer %q not declared on %s", id, ev, name, apiID)
				}
				if a.JwtConfiguration != nil {
					return nil, fmt.Errorf("template: %s event %s: JWT authorizers are not supported locally", id, ev)
				}
				arn, _ := scalar(a.FunctionArn)
				auth := &Authorizer{Name: name, Function: FunctionName(arn), SimpleResponses: a.EnableSimpleResponses}
				auth.PayloadVersion, _ = scalar(a.AuthorizerPayloadFormatVersion)
				if a.Identity != nil {
					for _, h := range a.Identity.Headers {
						auth.IdentitySources = append(auth.IdentitySources, "$request.header."+h)
					}
					for _, q := range a.Identity.QueryStrings {
						auth.IdentitySources = append(auth.IdentitySources, "$request.querystring."+q)
					}
					if a.Identity.ReauthorizeEvery != nil {
						auth.ReauthorizeEvery = int(*a.Identity.ReauthorizeEvery)
					}
				}
				r.Authorizer = auth
			}
			t.Routes = append(t.Routes, r)
		}
		t.Functions[id] = f
	}
	// Who invokes functions that have no route.
	for _, r := range t.Routes {
		if r.Authorizer != nil {
			if f, ok := t.Functions[r.Authorizer.Function]; ok && !contains(f.InvokedBy, "authorizer") {
				f.InvokedBy = append(f.InvokedBy, "authorizer")
			}
		}
	}
	for _, id := range ids {
		res := raw.Resources[id]
		switch {
		case res.Type == "AWS::CloudFormation::CustomResource" || strings.HasPrefix(res.Type, "Custom::"):
			tok, _ := scalar(res.Properties["ServiceToken"])
			if f, ok := t.Functions[FunctionName(tok)]; ok {
				f.InvokedBy = append(f.InvokedBy, "custom-resource:"+id)
			}
		case res.Type == "AWS::Serverless::Function":
			caller := t.Functions[id]
			for _, k := range sortedKeys(caller.Env) {
				if f, ok := t.Functions[FunctionName(caller.Env[k])]; ok && f.LogicalID != id {
					f.InvokedBy = append(f.InvokedBy, "env:"+id+"."+k)
				}
			}
		}
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
func (t *Template) IDs() []string { return sortedKeys(t.Functions) }

// refHandler resolves a resource's logical id to itself (as sam local does for a function name) and parameters to
// their values.
func refHandler(resources map[string]rawResource) intrinsics.IntrinsicHandler {
	return func(name string, input any, template any) any {
		if s, ok := input.(string); ok {
			if _, ok := resources[s]; ok {
				return s
			}
		}
		return intrinsics.Ref(name, input, template)
	}
}

// getAttHandler gives fake but well-formed values: ARNs for Arn, the logical id for names.
func getAttHandler(resources map[string]rawResource) intrinsics.IntrinsicHandler {
	return func(_ string, input any, _ any) any {
		var parts []string
		switch v := input.(type) {
		case string:
			parts = strings.SplitN(v, ".", 2)
		case []any:
			for _, p := range v {
				s, _ := p.(string)
				parts = append(parts, s)
			}
		}
		if len(parts) != 2 {
			return nil
		}
		id, attr := parts[0], parts[1]
		res, ok := resources[id]
		if !ok {
			return nil
		}
		switch {
		case attr == "Arn" && res.Type == "AWS::Serverless::Function":
			return FunctionARN(id)
		case attr == "Arn" && res.Type == "AWS::SQS::Queue":
			return "arn:aws:sqs:" + Region + ":" + AccountID + ":" + id
		case attr == "Arn":
			return "arn:aws:local:" + Region + ":" + AccountID + ":" + id
		default:
			return id
		}
	}
}

// merge returns globals overlaid by props: maps merge recursively (so Environment.Variables combine), anything
// else in props wins.
func merge(globals, props map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range globals {
		out[k] = v
	}
	for k, v := range props {
		gm, gok := out[k].(map[string]any)
		pm, pok := v.(map[string]any)
		if gok && pok {
			out[k] = merge(gm, pm)
			continue
		}
		out[k] = v
	}
	return out
}

// scalar turns a resolved template value into its string form; false for nil, maps and lists.
func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	default:
		return "", false
	}
}

func remarshal(in any, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
