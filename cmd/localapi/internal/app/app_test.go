package app

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/samtpl"
	"github.com/iot-center/iot-center-serverless/internal/devstack"
	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

func envMap(list []string) map[string]string {
	m := map[string]string{}
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func TestFunctionEnvPrecedence(t *testing.T) {
	f := &samtpl.Function{LogicalID: "QueryFunction", Timeout: 15, MemorySize: 256, LogFormat: "JSON",
		Env: map[string]string{"INFLUX_URL": "http://template", "INFLUX_BUCKET": "from-template", "QUERY_TIMEOUT": "12s", "A": "template"}}
	envJSON := map[string]string{"A": "env.json", "INFLUX_BUCKET": "from-env-json", "B": "env.json",
		"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000"}
	db := &influxInstance{URL: "http://127.0.0.1:8086", Token: "tok", Org: "org"}
	proc := []string{"INFLUX_BUCKET=from-process", "IOT_EXTRA=x", "HOME=/root", "SECRET_THING=no", "AWS_REGION=eu-west-1",
		"INFLUX_TOKEN=admin-token", "AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:9/QueryFunction"}
	got := envMap(FunctionEnv(f, envJSON, db, "query-token", keyPair{Operator: "op", Device: "dev"}, proc, "http://127.0.0.1:3000",
		aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret", SessionToken: "session"}))
	for k, want := range map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":    "QueryFunction",
		"AWS_LAMBDA_FUNCTION_TIMEOUT": "15",
		"AWS_LAMBDA_LOG_FORMAT":       "JSON",
		"AWS_REGION":                  "eu-west-1",
		"AWS_ENDPOINT_URL_LAMBDA":     "http://127.0.0.1:3000",
		"AWS_ACCESS_KEY_ID":           "AKID", // the credentials the Invoke API checks signatures with
		"AWS_SECRET_ACCESS_KEY":       "secret",
		"AWS_SESSION_TOKEN":           "session",
		"QUERY_TIMEOUT":               "12s",          // template
		"A":                           "env.json",     // env.json beats the template
		"B":                           "env.json",     // env.json adds
		"INFLUX_BUCKET":               "from-process", // the process environment beats both for INFLUX_*
		"INFLUX_URL":                  "http://127.0.0.1:8086",
		"INFLUX_TOKEN":                "query-token", // the function's own token, never the process's admin token
		"IOT_OPERATOR_KEY":            "op",
		"IOT_DEVICE_KEY":              "dev",
		"IOT_EXTRA":                   "x",
		// the run's own table endpoint (the IAM guard's path for the function), not sam local's from env.json
		"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:9/QueryFunction",
		"HOME":                      "", // nothing else leaks from the process environment
		"SECRET_THING":              "",
	} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
}

func TestReadSAMEnvVars(t *testing.T) {
	p := filepath.Join(t.TempDir(), "env.json")
	if err := os.WriteFile(p, []byte(`{"Parameters":{"DeviceAuth":"none","MaxDevices":5},"QueryFunction":{"QUERY_TIMEOUT":"3s","DEBUG":true}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readSAMEnvVars(p)
	if err != nil {
		t.Fatal(err)
	}
	if got.Parameters["DeviceAuth"] != "none" || got.Parameters["MaxDevices"] != "5" ||
		got.Functions["QueryFunction"]["QUERY_TIMEOUT"] != "3s" || got.Functions["QueryFunction"]["DEBUG"] != "true" {
		t.Errorf("got %+v", got)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	_ = os.WriteFile(bad, []byte(`{"QueryFunction":{"X":{"nested":1}}}`), 0o600)
	if _, err := readSAMEnvVars(bad); err == nil {
		t.Error("nested value accepted")
	}
}

func TestLoadKeysGeneratesOnceAndKeepsThemPrivate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keys.env")
	none := func(string) string { return "" }
	k1, err := loadKeys(p, none)
	if err != nil {
		t.Fatal(err)
	}
	if k1.Operator == "" || k1.Device == "" || k1.Operator == k1.Device {
		t.Fatalf("generated keys = %+v", k1)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("keys file mode = %v (%v), want 0600", st.Mode().Perm(), err)
	}
	k2, _ := loadKeys(p, none)
	if k2 != k1 {
		t.Errorf("second run keys = %+v, want the saved %+v", k2, k1)
	}
	k3, _ := loadKeys(p, func(k string) string { return map[string]string{"IOT_OPERATOR_KEY": "given"}[k] })
	if k3.Operator != "given" || k3.Device != k1.Device {
		t.Errorf("with IOT_OPERATOR_KEY given: %+v", k3)
	}
}

// TestLocalInfluxdKeepsStateAcrossRuns starts the real influxd twice on one data folder: the first run onboards
// and saves the token (0600), the second reuses both and still sees the first run's bucket.
func TestLocalInfluxdKeepsStateAcrossRuns(t *testing.T) {
	bin, err := influxtest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tokenFile := filepath.Join(state, "influx.env")
	db, err := startInfluxd(ctx, bin, filepath.Join(state, "influxd"), addr, tokenFile, "iot_center", os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	c := influx.New(db.URL, db.Token, db.Org, influx.Options{})
	if _, _, err := c.EnsureBucket(ctx, "kept_bucket", 0); err != nil {
		db.stop()
		t.Fatal(err)
	}
	c.Close()
	db.stop()
	if st, err := os.Stat(tokenFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v, want mode 0600", st, err)
	}

	db2, err := startInfluxd(ctx, bin, filepath.Join(state, "influxd"), addr, tokenFile, "iot_center", os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.stop()
	if db2.Token != db.Token {
		t.Errorf("second run token differs from the saved one")
	}
	c2 := influx.New(db2.URL, db2.Token, db2.Org, influx.Options{})
	defer c2.Close()
	if _, err := c2.BucketID(ctx, "kept_bucket"); err != nil {
		t.Errorf("bucket from the first run: %v", err)
	}
}

// TestEnvJSONAsSAMReadsIt: "Parameters" is every function's, a function's section overrides it, and only declared
// variables apply (as with sam local); host.docker.internal reads as this host.
func TestEnvJSONAsSAMReadsIt(t *testing.T) {
	e := samEnvVars{Parameters: map[string]string{"INFLUX_URL": "http://host.docker.internal:8086", "MAX_DEVICES": "5", "UNDECLARED": "x"},
		Functions: map[string]map[string]string{"QueryFunction": {"MAX_DEVICES": "7", "INFLUX_TOKEN": "q"}}}
	q := &samtpl.Function{LogicalID: "QueryFunction", Env: map[string]string{"INFLUX_URL": "", "MAX_DEVICES": "", "INFLUX_TOKEN": ""}}
	d := &samtpl.Function{LogicalID: "DevicesFunction", Env: map[string]string{"INFLUX_URL": "", "MAX_DEVICES": "", "INFLUX_TOKEN": ""}}
	for _, tc := range []struct {
		f    *samtpl.Function
		want map[string]string
	}{
		{q, map[string]string{"INFLUX_URL": "http://127.0.0.1:8086", "MAX_DEVICES": "7", "INFLUX_TOKEN": "q"}},
		{d, map[string]string{"INFLUX_URL": "http://127.0.0.1:8086", "MAX_DEVICES": "5"}},
	} {
		got := e.For(tc.f.LogicalID, tc.f, nil)
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.f.LogicalID, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", tc.f.LogicalID, k, got[k], v)
			}
		}
	}
}

func TestFunctionToken(t *testing.T) {
	tpl := &samtpl.Template{Parameters: map[string]string{"InfluxTokenParameter": "/iot/admin", "RoleTokenPrefix": "/iot/roles"}}
	db := &influxInstance{Token: "admin"}
	roles := map[string]string{"query": "q-token"}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for param, want := range map[string]string{"/iot/admin": "admin", "/iot/roles/query": "q-token", "": "",
		"/iot/roles/worker": "admin" /* no role token yet (-skip-setup): warned */} {
		f := &samtpl.Function{LogicalID: "F", Env: map[string]string{"INFLUX_TOKEN_PARAMETER": param}}
		if got := functionToken(f, tpl, db, roles, log); got != want {
			t.Errorf("INFLUX_TOKEN_PARAMETER=%q: got %q, want %q", param, got, want)
		}
	}
}
