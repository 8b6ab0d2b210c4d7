package main

import (
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/app"
	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/samtpl"
	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/testfn"
	"github.com/iot-center/iot-center-serverless/internal/devstack"
	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/setup"
)

// envName is the shape of an environment variable name.
var envName = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$`)

// sdkVariables are read by the AWS SDK's default configuration, not by this project's code: the template declares
// them (empty) so that `sam local --env-vars` can point the functions at local services.
var sdkVariables = map[string]bool{"AWS_ENDPOINT_URL": true, "AWS_ENDPOINT_URL_LAMBDA": true, "AWS_ENDPOINT_URL_SSM": true,
	"AWS_ENDPOINT_URL_SQS": true, "AWS_ENDPOINT_URL_CLOUDWATCH": true, "AWS_ENDPOINT_URL_DYNAMODB": true}

// codeReads lists the environment variables the functions' code reads: env-shaped string literals passed to a call
// (os.Getenv, config.Env's readers, LoadSecret, ...) and env-shaped string constants, in every non-test Go file
// under functions/ and shared/.
func codeReads(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{} // name -> where
	fset := token.NewFileSet()
	for _, dir := range []string{"functions", "shared"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			note := func(lit *ast.BasicLit) {
				if lit == nil || lit.Kind != token.STRING {
					return
				}
				if v, err := strconv.Unquote(lit.Value); err == nil && envName.MatchString(v) {
					rel, _ := filepath.Rel(root, fset.Position(lit.Pos()).Filename)
					out[v] = rel
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.CallExpr:
					for _, a := range x.Args {
						lit, _ := a.(*ast.BasicLit)
						note(lit)
					}
				case *ast.ValueSpec:
					for _, v := range x.Values {
						lit, _ := v.(*ast.BasicLit)
						note(lit)
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestTemplateDeclaresWhatTheCodeReads: `sam local --env-vars` overrides only variables the template declares, so
// every variable the code reads is declared (empty when it has no value in AWS), and nothing is declared that no
// code reads.
func TestTemplateDeclaresWhatTheCodeReads(t *testing.T) {
	tpl := loadTemplate(t)
	declared := map[string]bool{}
	for _, f := range tpl.Functions {
		for k := range f.Env {
			declared[k] = true
		}
	}
	reads := codeReads(t, testfn.Root())
	if len(reads) < 10 {
		t.Fatalf("found only %d variables in the code: the scan is broken", len(reads))
	}
	t.Logf("%d variables read by the code, %d declared", len(reads), len(declared))
	var missing, unread []string
	for name, where := range reads {
		if !declared[name] {
			missing = append(missing, name+" ("+where+")")
		}
	}
	for name := range declared {
		if _, ok := reads[name]; !ok && !sdkVariables[name] {
			unread = append(unread, name)
		}
	}
	sort.Strings(missing)
	sort.Strings(unread)
	if len(missing) > 0 {
		t.Errorf("read by the code but not declared in template.yaml (sam local cannot set them): %v", missing)
	}
	if len(unread) > 0 {
		t.Errorf("declared in template.yaml but read by no code: %v", unread)
	}
}

// secretVariables must never sit in env.json's "Parameters" section, which SAM CLI gives every function.
var secretVariables = []string{"INFLUX_TOKEN", "IOT_OPERATOR_KEY", "IOT_DEVICE_KEY"}

// CheckEnvJSON checks an env.json as SAM CLI reads it: one JSON object whose members are "Parameters" (every
// function's variables) or a function's logical id, each an object of string, number or boolean values naming
// variables the template declares for that function; secrets only in the sections of the functions that need them,
// and each function's INFLUX_TOKEN the one of its role (checkToken decides what that means for a value).
func CheckEnvJSON(t *testing.T, b []byte, tpl *samtpl.Template, checkToken func(fn, role, value string) bool) {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("not a JSON object: %v", err)
	}
	for section, body := range raw {
		var vars map[string]any
		if err := json.Unmarshal(body, &vars); err != nil {
			t.Errorf("%s: not an object of variables: %v", section, err)
			continue
		}
		f := tpl.Functions[section]
		if section != "Parameters" && f == nil {
			t.Errorf("section %s names no function of template.yaml (SAM CLI ignores it)", section)
			continue
		}
		for k, v := range vars {
			switch v.(type) {
			case string, float64, bool:
			default:
				t.Errorf("%s.%s: %T; SAM CLI takes strings, numbers and booleans", section, k, v)
			}
			if section == "Parameters" {
				for _, s := range secretVariables {
					if k == s {
						t.Errorf("Parameters.%s: a secret every function would get; put it in the sections of the functions that need it", k)
					}
				}
				declaredAnywhere := false
				for _, fn := range tpl.Functions {
					_, ok := fn.Env[k]
					declaredAnywhere = declaredAnywhere || ok
				}
				if !declaredAnywhere {
					t.Errorf("Parameters.%s: declared by no function (SAM CLI ignores it)", k)
				}
				continue
			}
			if _, ok := f.Env[k]; !ok {
				t.Errorf("%s.%s: not declared for the function (SAM CLI ignores it)", section, k)
			}
		}
		if f != nil {
			role := setup.FunctionRoles[section]
			tok, has := vars["INFLUX_TOKEN"].(string)
			if role == "" && has {
				t.Errorf("%s reads no InfluxDB token but env.json gives it one", section)
			}
			if role != "" && (!has || !checkToken(section, role, tok)) {
				t.Errorf("%s: INFLUX_TOKEN %q is not its %s role's token", section, tok, role)
			}
			_, op := vars["IOT_OPERATOR_KEY"]
			if op != (section == "AuthorizerFunction") {
				t.Errorf("%s: IOT_OPERATOR_KEY present %v; only the authorizer holds the keys", section, op)
			}
		}
	}
	for id := range tpl.Functions {
		if role := setup.FunctionRoles[id]; role != "" {
			if _, ok := raw[id]; !ok {
				t.Errorf("no section for %s (it needs its %s token)", id, role)
			}
		}
	}
}

// TestEnvExampleJSON: the shipped env.example.json is what SAM CLI reads, with a placeholder per role token.
func TestEnvExampleJSON(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testfn.Root(), "env.example.json"))
	if err != nil {
		t.Fatal(err)
	}
	CheckEnvJSON(t, b, loadTemplate(t), func(_, role, v string) bool { return v == "<"+role+" token>" })
}

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

// TestSAMEnvSetup runs the one-time `sam local` setup (-sam-env) against the real InfluxDB twice: env.json is what
// SAM CLI reads, each function holds only its own role's token (which works), the admin token only the functions
// the template gives it, the keys only the authorizer; the second run keeps every token and key.
func TestSAMEnvSetup(t *testing.T) {
	srv := influxtest.Shared(t)
	admin := srv.Client(t)
	id := influxtest.RandomID(4)
	buckets := map[string]string{setup.DataBucket: "samdata_" + id, setup.DownsampledBucket: "samds_" + id}
	path := filepath.Join(t.TempDir(), "env.json")
	dyn := testenv.StartDynamo(t) // stands in for DynamoDB Local
	o := app.SAMEnvOptions{Path: path, DynamoEndpoint: dyn.URL, StateTable: "sam-state", Template: filepath.Join(testfn.Root(), "template.yaml"), InfluxURL: srv.URL, Org: srv.Org,
		Token: srv.Token, Params: map[string]string{"InfluxBucket": buckets[setup.DataBucket],
			"InfluxBucketDownsampled": buckets[setup.DownsampledBucket]}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		as, _ := admin.ListAuthorizations(ctx)
		for _, a := range as {
			if strings.Contains(a.Description, path) {
				_ = admin.DeleteAuthorization(ctx, a.ID)
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := app.WriteSAMEnv(ctx, o); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("env.json %v (%v), want mode 0600", st, err)
	}
	first, _ := os.ReadFile(path)
	tpl := loadTemplate(t)
	CheckEnvJSON(t, first, tpl, func(fn, role, tok string) bool {
		if role == setup.AdminRole {
			return tok == srv.Token
		}
		r, ok := setup.RoleByName(role)
		if !ok || tok == "" || tok == srv.Token {
			return false
		}
		for _, g := range r.Grants {
			if g.Action == "read" { // the token reads its bucket
				c := influx.New(srv.URL, tok, srv.Org, influx.Options{})
				defer c.Close()
				_, err := c.BucketID(ctx, buckets[g.Bucket])
				return err == nil
			}
		}
		return true
	})
	var env map[string]map[string]any
	_ = json.Unmarshal(first, &env)
	if got := env["Parameters"]["INFLUX_URL"]; !strings.HasPrefix(fmt.Sprint(got), "http://host.docker.internal:") {
		t.Errorf("Parameters.INFLUX_URL %v, want the InfluxDB as SAM's containers reach it", got)
	}
	wantDynamo := strings.Replace(dyn.URL, "127.0.0.1", "host.docker.internal", 1)
	if got := env["Parameters"]["AWS_ENDPOINT_URL_DYNAMODB"]; got != wantDynamo || env["Parameters"]["STATE_TABLE"] != "sam-state" {
		t.Errorf("Parameters: AWS_ENDPOINT_URL_DYNAMODB %v, STATE_TABLE %v; want %s, sam-state", got, env["Parameters"]["STATE_TABLE"], wantDynamo)
	}
	tables, err := devstack.DynamoClient(dyn.URL, os.Getenv("AWS_REGION")).ListTables(ctx, &dynamodb.ListTablesInput{})
	if err != nil || !slices.Contains(tables.TableNames, "sam-state") {
		t.Errorf("tables at the endpoint %v (%v), want sam-state created from the template", tables, err)
	}
	if err := app.WriteSAMEnv(ctx, o); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(path)
	if string(second) != string(first) {
		t.Errorf("a second run changed env.json:\n%s\nwant\n%s", second, first)
	}
}
