package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"gopkg.in/yaml.v3"

	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/setup"
)

// CheckOptions configure CheckDeploy.
type CheckOptions struct {
	Template  string
	Samconfig string            // samconfig.toml: its deploy parameter_overrides, when present
	Params    map[string]string // overrides (win over samconfig.toml)
	// Region is the one `sam deploy` uses: samconfig.toml's region ([default.deploy.parameters], else
	// [default.global.parameters]), else Region, else AWS_REGION / the profile's. The SSM checks run there.
	Region string
	SSM    config.ParameterStore
	Stdout io.Writer
}

// templateParam is what CloudFormation checks of a parameter value when it creates the change set.
type templateParam struct {
	Type           string   `yaml:"Type"`
	Default        *string  `yaml:"Default"`
	AllowedPattern string   `yaml:"AllowedPattern"`
	AllowedValues  []string `yaml:"AllowedValues"`
	MinLength      *int     `yaml:"MinLength"`
}

// CheckDeploy is `make check-deploy`: before `sam deploy`, it checks the parameter values as CloudFormation will
// (pattern, minimum length, allowed values), that the SSM SecureStrings the template names exist and are not empty,
// and that the admin token reaches InfluxUrl and can read what setup needs. It prints one line per check, never a
// secret, and fails when any check fails.
func CheckDeploy(ctx context.Context, o CheckOptions) error {
	b, err := os.ReadFile(o.Template)
	if err != nil {
		return err
	}
	var tpl struct {
		Parameters map[string]templateParam `yaml:"Parameters"`
	}
	if err := yaml.Unmarshal(b, &tpl); err != nil {
		return fmt.Errorf("%s: %w", o.Template, err)
	}
	values, err := samconfigOverrides(o.Samconfig)
	if err != nil {
		return err
	}
	for k, v := range o.Params {
		values[k] = v
	}
	var failed []string
	report := func(name string, err error) {
		if err != nil {
			failed = append(failed, name)
			fmt.Fprintf(o.Stdout, "FAIL %s: %v\n", name, err)
			return
		}
		fmt.Fprintf(o.Stdout, "ok   %s\n", name)
	}
	for _, name := range slices.Sorted(maps.Keys(tpl.Parameters)) {
		p := tpl.Parameters[name]
		v, given := values[name]
		if !given && p.Default != nil {
			v, given = *p.Default, true
		}
		report("parameter "+name, checkParam(p, v, given))
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d check(s) failed: %s", len(failed), strings.Join(failed, ", "))
	}
	value := func(name string) string {
		if v, ok := values[name]; ok {
			return v
		}
		return *tpl.Parameters[name].Default
	}
	fallback := o.Region
	if fallback == "" {
		if cfg, err := awsconfig.LoadDefaultConfig(ctx); err == nil {
			fallback = cfg.Region
		}
	}
	region, from, err := deployRegion(o.Samconfig, fallback)
	report("region "+region+" ("+from+")", err)
	if err != nil {
		return fmt.Errorf("%d check(s) failed: %s", len(failed), strings.Join(failed, ", "))
	}
	store := o.SSM
	if store == nil {
		cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
		if err != nil {
			return fmt.Errorf("loading AWS configuration: %w", err)
		}
		store = ssm.NewFromConfig(cfg)
	}
	secrets := map[string]string{}
	for _, name := range []string{"InfluxTokenParameter", "OperatorKeyParameter", "DeviceKeyParameter"} {
		v, err := readSecureString(ctx, store, value(name))
		secrets[name] = v
		report(fmt.Sprintf("SSM SecureString %s (%s)", value(name), name), err)
	}
	if secrets["InfluxTokenParameter"] != "" {
		c := influx.New(value("InfluxUrl"), secrets["InfluxTokenParameter"], value("InfluxOrg"), influx.Options{HTTPTimeout: 15 * time.Second})
		defer c.Close()
		_, version, err := c.Health(ctx)
		report("InfluxDB reachable at "+value("InfluxUrl")+" (version "+version+")", err)
		if err == nil {
			report("the admin token reads organization "+value("InfluxOrg")+" and what setup needs", setup.Preflight(ctx, c))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d check(s) failed: %s", len(failed), strings.Join(failed, ", "))
	}
	return nil
}

func checkParam(p templateParam, v string, given bool) error {
	if !given {
		return errors.New("no value and no default (give it with PARAMS=\"Name=value ...\" or sam deploy --guided)")
	}
	if p.MinLength != nil && len(v) < *p.MinLength {
		return fmt.Errorf("%q is shorter than %d", v, *p.MinLength)
	}
	if p.AllowedPattern != "" {
		re, err := regexp.Compile(p.AllowedPattern)
		if err != nil {
			return fmt.Errorf("the template's pattern does not compile: %v", err)
		}
		// CloudFormation matches the whole value
		if m := re.FindString(v); m != v {
			return fmt.Errorf("%q does not match %s", v, p.AllowedPattern)
		}
	}
	if len(p.AllowedValues) > 0 && !slices.Contains(p.AllowedValues, v) {
		return fmt.Errorf("%q is not one of %v", v, p.AllowedValues)
	}
	return nil
}

func readSecureString(ctx context.Context, store config.ParameterStore, name string) (string, error) {
	out, err := store.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	var nf *types.ParameterNotFound
	switch {
	case errors.As(err, &nf):
		return "", errors.New("missing: aws ssm put-parameter --type SecureString --name " + name + " --value ...")
	case err != nil:
		return "", err
	case out.Parameter.Type != types.ParameterTypeSecureString:
		return "", fmt.Errorf("is a %s, want a SecureString", out.Parameter.Type)
	case aws.ToString(out.Parameter.Value) == "":
		return "", errors.New("is empty")
	}
	return aws.ToString(out.Parameter.Value), nil
}

// overridePair is one Key=Value or Key="Value with spaces" of a parameter_overrides string.
var overridePair = regexp.MustCompile(`([A-Za-z0-9]+)=("(?:[^"\\]|\\.)*"|\S*)`)

// ParseOverrides reads `sam deploy --parameter-overrides` syntax: Key=Value pairs separated by spaces, values
// optionally in double quotes.
func ParseOverrides(s string) map[string]string {
	out := map[string]string{}
	for _, m := range overridePair.FindAllStringSubmatch(s, -1) {
		v := m[2]
		if strings.HasPrefix(v, `"`) && strings.HasSuffix(v, `"`) && len(v) >= 2 {
			v = strings.ReplaceAll(v[1:len(v)-1], `\"`, `"`)
		}
		out[m[1]] = v
	}
	return out
}

// deployRegion is the region `sam deploy` deploys to: samconfig.toml's (deploy section first, then global), else
// fallback (the AWS configuration's). from says where it came from.
func deployRegion(samconfig, fallback string) (region, from string, err error) {
	for _, section := range []string{"[default.deploy.parameters]", "[default.global.parameters]"} {
		v, err := samconfigValue(samconfig, section, "region")
		if err != nil {
			return "", "", err
		}
		if v != "" {
			from = "samconfig.toml " + section
			if fallback != "" && fallback != v {
				from += "; sam deploy ignores AWS_REGION/the profile's " + fallback
			}
			return v, from, nil
		}
	}
	if fallback == "" {
		return "(none)", "", errors.New("no region: set region in samconfig.toml or AWS_REGION")
	}
	return fallback, "AWS_REGION or the profile; samconfig.toml names none", nil
}

// samconfigOverrides reads parameter_overrides of [default.deploy.parameters] in samconfig.toml (what `sam deploy
// --guided` saves); a missing file or key is empty.
func samconfigOverrides(path string) (map[string]string, error) {
	out := map[string]string{}
	v, err := samconfigValue(path, "[default.deploy.parameters]", "parameter_overrides")
	if err != nil || v == "" {
		return out, err
	}
	return ParseOverrides(v), nil
}

// samconfigValue reads one string key of one section of samconfig.toml; a missing file or key is "".
func samconfigValue(path, section, key string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	current := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			current = line
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || current != section || strings.TrimSpace(k) != key {
			continue
		}
		if v = strings.TrimSpace(v); len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = strings.ReplaceAll(v[1:len(v)-1], `\"`, `"`) // a TOML basic string
		}
		return v, nil
	}
	return "", nil
}
