package app

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/samtpl"
)

// FunctionEnv assembles a function's environment as Lambda would give it: the runtime's variables, the template's
// Environment.Variables, then env.json's entries for the function, then the local InfluxDB (with the function's own
// token) and keys, then the process environment's INFLUX_* and IOT_* variables (INFLUX_TOKEN excepted: the admin
// token is setup's and the few functions' that need it).
func FunctionEnv(f *samtpl.Function, envJSON map[string]string, db *influxInstance, token string, keys keyPair, environ []string, apiBase string, creds aws.Credentials) []string {
	getenv := lookup(environ)
	region := firstNonEmpty(getenv("AWS_REGION"), samtpl.Region)
	env := map[string]string{
		"PATH":                            "/usr/local/bin:/usr/bin:/bin",
		"TZ":                              ":UTC",
		"LANG":                            "en_US.UTF-8",
		"AWS_LAMBDA_FUNCTION_NAME":        f.LogicalID,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     strconv.Itoa(f.Timeout),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(f.MemorySize),
		"AWS_REGION":                      region,
		"AWS_DEFAULT_REGION":              region,
		// Local credentials: the SDK signs its calls to the local Invoke API with them (which checks the signature);
		// AWS does not know them.
		"AWS_ACCESS_KEY_ID":         creds.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":     creds.SecretAccessKey,
		"AWS_SESSION_TOKEN":         creds.SessionToken,
		"AWS_EC2_METADATA_DISABLED": "true",
	}
	if f.LogFormat != "" {
		env["AWS_LAMBDA_LOG_FORMAT"] = f.LogFormat
	}
	for k, v := range f.Env {
		env[k] = v
	}
	for k, v := range envJSON {
		env[k] = v
	}
	// The functions' Lambda calls come back here (the template declares the variable empty).
	if env["AWS_ENDPOINT_URL_LAMBDA"] == "" {
		env["AWS_ENDPOINT_URL_LAMBDA"] = apiBase
	}
	// A local SSM emulator (moto) may be used for the *_PARAMETER lookups.
	if v := getenv("AWS_ENDPOINT_URL_SSM"); v != "" && env["AWS_ENDPOINT_URL_SSM"] == "" {
		env["AWS_ENDPOINT_URL_SSM"] = v
	}
	// The local SQS (moto) carries the event source mappings' queues.
	if v := getenv("AWS_ENDPOINT_URL_SQS"); v != "" && env["AWS_ENDPOINT_URL_SQS"] == "" {
		env["AWS_ENDPOINT_URL_SQS"] = v
	}
	// The function's path on the IAM guard in front of the endpoint that holds the tables this run prepared: it
	// beats env.json's (make sam-env writes sam local's DynamoDB Local there), which would skip both.
	if v := getenv("AWS_ENDPOINT_URL_DYNAMODB"); v != "" {
		env["AWS_ENDPOINT_URL_DYNAMODB"] = v
	}
	if db != nil {
		env["INFLUX_URL"], env["INFLUX_ORG"] = db.URL, db.Org
	}
	if token != "" {
		env["INFLUX_TOKEN"] = token
	}
	if keys.Operator != "" {
		env["IOT_OPERATOR_KEY"] = keys.Operator
	}
	if keys.Device != "" {
		env["IOT_DEVICE_KEY"] = keys.Device
	}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if (strings.HasPrefix(k, "INFLUX_") || strings.HasPrefix(k, "IOT_")) && k != "INFLUX_TOKEN" && v != "" {
			env[k] = v
		}
	}
	if db != nil && db.local != nil {
		// The local influxd is authoritative for its own address.
		env["INFLUX_URL"], env["INFLUX_ORG"] = db.URL, db.Org
	}
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// samEnvVars is the `sam local start-api --env-vars` format.
type samEnvVars struct {
	Parameters map[string]string
	Functions  map[string]map[string]string
}

func readSAMEnvVars(path string) (samEnvVars, error) {
	out := samEnvVars{Parameters: map[string]string{}, Functions: map[string]map[string]string{}}
	if path == "" {
		return out, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return out, fmt.Errorf("-env-vars: %w", err)
	}
	var raw map[string]map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return out, fmt.Errorf("-env-vars %s: %w", path, err)
	}
	for name, vars := range raw {
		m := map[string]string{}
		for k, v := range vars {
			switch x := v.(type) {
			case string:
				m[k] = x
			case float64:
				m[k] = strconv.FormatFloat(x, 'f', -1, 64)
			case bool:
				m[k] = strconv.FormatBool(x)
			default:
				return out, fmt.Errorf("-env-vars %s: %s.%s must be a string, number or boolean", path, name, k)
			}
		}
		if name == "Parameters" {
			out.Parameters = m
		} else {
			out.Functions[name] = m
		}
	}
	return out, nil
}
