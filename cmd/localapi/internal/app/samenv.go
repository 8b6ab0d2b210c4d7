package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/samtpl"
	"github.com/iot-center/iot-center-serverless/internal/devstack"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/setup"
)

// SAMEnvOptions configure WriteSAMEnv.
type SAMEnvOptions struct {
	Path        string            // env.json to write (its other entries are kept)
	Template    string            // template.yaml
	Params      map[string]string // template parameter overrides (bucket names, ...)
	InfluxURL   string            // the InfluxDB as this host reaches it
	Org         string
	Token       string // the admin token
	SQSEndpoint string // the SQS (moto) the functions use, as SAM's containers reach it
	// DynamoEndpoint is the DynamoDB endpoint (DynamoDB Local, moto's server) as this host reaches it; the state
	// table is created there from the template, and the functions get it as the containers reach it. "none": a
	// real table in AWS (no endpoint; StateTable names it).
	DynamoEndpoint string
	StateTable     string // the table's name (default: the logical id, what `!Ref StateTable` is under sam local)
	Stdout         io.Writer
}

// containerURL is how SAM's containers reach a URL on this host: loopback names become host.docker.internal.
func containerURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	switch u.Hostname() {
	case "127.0.0.1", "localhost", "::1":
		host := "host.docker.internal"
		if p := u.Port(); p != "" {
			host += ":" + p
		}
		u.Host = host
	}
	return u.String()
}

// envJSONStore keeps role tokens in env.json: a role's token is the INFLUX_TOKEN of each function of that role.
type envJSONStore struct {
	sections map[string]map[string]any
	byRole   map[string][]string // role -> function ids
}

var _ setup.TokenStore = (*envJSONStore)(nil)

func (s *envJSONStore) Get(_ context.Context, role string) (string, error) {
	for _, id := range s.byRole[role] {
		if v, ok := s.sections[id]["INFLUX_TOKEN"].(string); ok && v != "" && !strings.HasPrefix(v, "<") {
			return v, nil
		}
	}
	return "", nil
}

func (s *envJSONStore) Put(_ context.Context, role, token string) error {
	for _, id := range s.byRole[role] {
		s.section(id)["INFLUX_TOKEN"] = token
	}
	return nil
}

func (s *envJSONStore) Delete(_ context.Context, role string) error {
	for _, id := range s.byRole[role] {
		delete(s.section(id), "INFLUX_TOKEN")
	}
	return nil
}

func (s *envJSONStore) section(id string) map[string]any {
	if s.sections[id] == nil {
		s.sections[id] = map[string]any{}
	}
	return s.sections[id]
}

// WriteSAMEnv is `sam local`'s one-time setup: it prepares the InfluxDB with the custom resource's code (buckets,
// task, dashboard, one scoped token per role) and writes env.json for `sam local start-api --env-vars env.json`:
// Parameters (every function's: InfluxDB URL and org as the containers reach them, the SQS endpoint) and
// one section per function with its own token only (the admin token for the functions the template gives it, the
// keys for the authorizer). Run again, it keeps working tokens and keys.
func WriteSAMEnv(ctx context.Context, o SAMEnvOptions) error {
	if o.InfluxURL == "" || o.Org == "" || o.Token == "" {
		return errors.New("set INFLUX_URL, INFLUX_ORG and INFLUX_TOKEN (the admin token) for the InfluxDB the functions use")
	}
	params := map[string]string{"InfluxUrl": o.InfluxURL, "InfluxOrg": o.Org}
	for k, v := range o.Params {
		params[k] = v
	}
	tpl, err := samtpl.Load(o.Template, params)
	if err != nil {
		return err
	}
	sections := map[string]map[string]any{}
	if b, err := os.ReadFile(o.Path); err == nil {
		if err := json.Unmarshal(b, &sections); err != nil {
			return fmt.Errorf("%s: %w", o.Path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	store := &envJSONStore{sections: sections, byRole: map[string][]string{}}
	db := &influxInstance{URL: o.InfluxURL, Org: o.Org, Token: o.Token}
	for _, id := range tpl.IDs() {
		role := functionRole(tpl.Functions[id], tpl)
		store.byRole[role] = append(store.byRole[role], id)
		if role == "" && sections[id] != nil {
			delete(sections[id], "INFLUX_TOKEN") // a function that reads no token gets none
		}
	}
	abs, err := filepath.Abs(o.Path)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c := influx.New(db.URL, db.Token, db.Org, influx.Options{})
	defer c.Close()
	if _, err := setup.Run(sctx, c, setupOptions(tpl, func(string) string { return "" }, store, "sam local "+abs)); err != nil {
		return fmt.Errorf("preparing InfluxDB: %w", err)
	}
	for _, id := range store.byRole[setup.AdminRole] {
		store.section(id)["INFLUX_TOKEN"] = o.Token
	}
	auth := store.section("AuthorizerFunction")
	for k, prefix := range map[string]string{"IOT_OPERATOR_KEY": "op-", "IOT_DEVICE_KEY": "dev-"} {
		if v, _ := auth[k].(string); v == "" || strings.HasPrefix(v, "<") {
			auth[k] = prefix + devstack.RandomHex(20)
		}
	}
	global := store.section("Parameters")
	for _, k := range secretVariables {
		delete(global, k) // every function would get it
	}
	global["INFLUX_URL"], global["INFLUX_ORG"] = containerURL(o.InfluxURL), o.Org
	if _, ok := global["AWS_ENDPOINT_URL_SQS"]; !ok || o.SQSEndpoint != "" {
		global["AWS_ENDPOINT_URL_SQS"] = firstNonEmpty(o.SQSEndpoint, "http://host.docker.internal:5000")
	}
	if err := samStateTable(ctx, o, tpl, global); err != nil {
		return err
	}
	b, err := json.MarshalIndent(sections, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.Path+".tmp", append(b, '\n'), 0o600); err != nil {
		return err
	}
	if err := os.Rename(o.Path+".tmp", o.Path); err != nil {
		return err
	}
	if o.Stdout != nil {
		fmt.Fprintf(o.Stdout, "InfluxDB %s (org %s) prepared; %s written (mode 0600): each function's own token, the keys in AuthorizerFunction's section.\n"+
			"Next: make sam-local (sam build and sam local start-api --env-vars %s for this machine's architecture)\n", o.InfluxURL, o.Org, o.Path, o.Path)
	}
	return nil
}

// samStateTable puts the state table's endpoint and name into env.json's Parameters and creates the table from
// the template at a local endpoint (DynamoDB Local on 127.0.0.1:8000 unless DynamoEndpoint says otherwise).
func samStateTable(ctx context.Context, o SAMEnvOptions, tpl *samtpl.Template, global map[string]any) error {
	if len(tpl.Tables) == 0 {
		return nil
	}
	name := firstNonEmpty(o.StateTable, devstack.StateTableID)
	global["STATE_TABLE"] = name
	endpoint := firstNonEmpty(o.DynamoEndpoint, "http://127.0.0.1:8000")
	if endpoint == "none" {
		global["AWS_ENDPOINT_URL_DYNAMODB"] = ""
		return nil
	}
	global["AWS_ENDPOINT_URL_DYNAMODB"] = containerURL(endpoint)
	spec, err := devstack.ReadTableSpec(o.Template, devstack.StateTableID)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	// sam local gives the functions the template's region unless AWS_REGION is set
	if err := devstack.CreateTable(cctx, devstack.DynamoClient(endpoint, firstNonEmpty(os.Getenv("AWS_REGION"), samtpl.Region)), name, spec); err != nil {
		return fmt.Errorf("creating the state table %s at %s (start DynamoDB Local there, or give -sam-dynamodb-endpoint): %w", name, endpoint, err)
	}
	return nil
}

// secretVariables never belong in env.json's Parameters, which SAM CLI gives every function.
var secretVariables = []string{"INFLUX_TOKEN", "IOT_OPERATOR_KEY", "IOT_DEVICE_KEY"}

// templateRoles lists the roles (not the admin) the template's functions read tokens of.
func templateRoles(tpl *samtpl.Template) []string {
	out := []string{}
	for _, id := range tpl.IDs() {
		if r := functionRole(tpl.Functions[id], tpl); r != "" && r != setup.AdminRole && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// functionRole is the role whose token a function reads, from its INFLUX_TOKEN_PARAMETER in the template:
// setup.AdminRole for the admin token's parameter, "" for none.
func functionRole(f *samtpl.Function, tpl *samtpl.Template) string {
	param := f.Env["INFLUX_TOKEN_PARAMETER"]
	switch {
	case param == "":
		return ""
	case param == tpl.Parameters["InfluxTokenParameter"]:
		return setup.AdminRole
	}
	role, _ := strings.CutPrefix(param, strings.TrimRight(tpl.Parameters["RoleTokenPrefix"], "/")+"/")
	return role
}
