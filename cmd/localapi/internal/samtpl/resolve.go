package samtpl

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/awslabs/goformation/v7/intrinsics"
)

// The template as JSON after goformation resolved its intrinsics; only the parts the local API reads.
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
	Policies          any                 `json:"Policies"`
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

// resolve checks the overrides name declared parameters and resolves every intrinsic function of the template.
func resolve(data []byte, overrides map[string]string) (*rawTemplate, error) {
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
			"Fn::Sub":    subHandler(pre.Resources),
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
	return &raw, nil
}

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
			return ResourceARN(id)
		default:
			return id
		}
	}
}

// subVar is a ${Resource.Attribute} or ${AWS::Partition} reference in a Fn::Sub string.
var subVar = regexp.MustCompile(`\$\{([A-Za-z0-9]+)\.([A-Za-z0-9.]+)\}|\$\{AWS::Partition\}`)

// subHandler resolves ${Resource.Attribute} with getAttHandler (the library's Fn::Sub would strip it, turning
// "${StateTable.Arn}/index/*" into "/index/*") and ${AWS::Partition} to aws, then leaves the rest to the library.
func subHandler(resources map[string]rawResource) intrinsics.IntrinsicHandler {
	getAtt := getAttHandler(resources)
	return func(name string, input any, template any) any {
		if s, ok := input.(string); ok {
			input = subVar.ReplaceAllStringFunc(s, func(m string) string {
				g := subVar.FindStringSubmatch(m)
				if g[1] == "" {
					return "aws"
				}
				if v, ok := getAtt("", g[1]+"."+g[2], template).(string); ok {
					return v
				}
				return m
			})
		}
		return intrinsics.FnSub(name, input, template)
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
