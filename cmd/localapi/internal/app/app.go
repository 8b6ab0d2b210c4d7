// Package app wires the local API: InfluxDB (external or a local influxd), its setup, the keys, the template,
// the function builds, the emulator pools and the gateway, and stops all of it when the context ends.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/gateway"
	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/lambdarun"
	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/samtpl"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/setup"
)

// Options configure Run (main fills them from flags).
type Options struct {
	Root       string            // repository root: template.yaml and the Makefile
	Template   string            // template path (default <Root>/template.yaml)
	Addr       string            // listen address, 127.0.0.1:3000
	State      string            // state folder (.local)
	InfluxAddr string            // address of the local influxd, 127.0.0.1:8086
	Pool       int               // emulator processes per function
	PoolFor    map[string]int    // per-function pool sizes
	EnvVars    string            // SAM-format env.json, optional
	Params     map[string]string // parameter overrides
	GOARCH     string            // architecture of the local builds
	SkipSetup  bool              // do not run the InfluxDB setup (buckets, task, dashboard)
	Environ    []string          // the process environment (default os.Environ())
	Stdout     io.Writer         // banner and walkthrough
	Stderr     io.Writer         // logs and function output
	// Ready, when set, receives the base URL once the API serves.
	Ready chan<- string
}

// Run starts everything, serves until ctx ends, then stops everything it started.
func Run(ctx context.Context, o Options) error {
	if o.Environ == nil {
		o.Environ = os.Environ()
	}
	getenv := lookup(o.Environ)
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Template == "" {
		o.Template = filepath.Join(o.Root, "template.yaml")
	}
	if o.Pool < 1 {
		o.Pool = 2
	}
	var outMu sync.Mutex
	logw := lambdarun.NewPrefixWriter(o.Stderr, &outMu, "localapi")
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo}))

	if err := os.MkdirAll(o.State, 0o700); err != nil {
		return err
	}
	state, err := filepath.Abs(o.State)
	if err != nil {
		return err
	}

	// The listener first: its address goes into every function's AWS_ENDPOINT_URL_LAMBDA.
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.Addr, err)
	}
	defer ln.Close()
	base := "http://" + ln.Addr().String()

	envFile, err := readSAMEnvVars(o.EnvVars)
	if err != nil {
		return err
	}
	params := map[string]string{}
	for k, v := range envFile.Parameters {
		params[k] = v
	}
	for k, v := range o.Params {
		params[k] = v
	}

	// InfluxDB: the one in INFLUX_URL/INFLUX_TOKEN, else a local influxd with its data in the state folder.
	db := &influxInstance{URL: getenv("INFLUX_URL"), Token: getenv("INFLUX_TOKEN"), Org: getenv("INFLUX_ORG")}
	if db.URL != "" && db.Token != "" {
		if db.Org == "" {
			return errors.New("INFLUX_ORG is required with INFLUX_URL and INFLUX_TOKEN")
		}
		log.Info("using the InfluxDB from INFLUX_URL", "url", db.URL, "org", db.Org)
	} else {
		bin, err := testenv.InfluxdBinary(ctx, o.Root, getenv, o.Stderr)
		if err != nil {
			return err
		}
		bucket := firstNonEmpty(getenv("INFLUX_BUCKET"), params["InfluxBucket"], "iot_center")
		db, err = startInfluxd(ctx, bin, filepath.Join(state, "influxd"), o.InfluxAddr, filepath.Join(state, "influx.env"), bucket,
			lambdarun.NewPrefixWriter(o.Stderr, &outMu, "influxd"))
		if err != nil {
			return err
		}
		defer db.stop()
		log.Info("local influxd running", "url", db.URL, "org", db.Org, "data", filepath.Join(state, "influxd"))
	}
	if _, ok := params["InfluxUrl"]; !ok {
		params["InfluxUrl"] = db.URL
	}
	if _, ok := params["InfluxOrg"]; !ok {
		params["InfluxOrg"] = db.Org
	}

	tpl, err := samtpl.Load(o.Template, params)
	if err != nil {
		return err
	}

	for id := range o.PoolFor {
		if tpl.Functions[id] == nil {
			return fmt.Errorf("-pool-for %s: no such function in %s", id, o.Template)
		}
	}

	keys, err := loadKeys(filepath.Join(state, "keys.env"), getenv)
	if err != nil {
		return err
	}

	if !o.SkipSetup {
		if err := runSetup(ctx, db, tpl, getenv, log); err != nil {
			return err
		}
	}

	rie, err := testenv.RIE(o.Root, getenv)
	if err != nil {
		return err
	}

	// Build every function once, two at a time (the machine has 2 cores); a failed build only disables its routes.
	log.Info("building functions", "count", len(tpl.Functions), "goarch", o.GOARCH)
	t0 := time.Now()
	builds := lambdarun.Build(ctx, o.Root, filepath.Join(state, "build"), o.GOARCH, tpl.IDs(), 2)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var specs []lambdarun.Spec
	var failed []string
	for _, id := range tpl.IDs() {
		f := tpl.Functions[id]
		b := builds[id]
		if b.Err != nil {
			failed = append(failed, id)
			log.Error("build failed: its routes answer 502", "function", id, "error", b.Err.Error())
			_, _ = io.WriteString(lambdarun.NewPrefixWriter(o.Stderr, &outMu, "build "+id), b.Output+"\n")
		}
		if len(f.Unresolved) > 0 {
			log.Warn("environment variables without a value (give the parameter with -parameter-overrides)", "function", id, "vars", strings.Join(f.Unresolved, ","))
		}
		size := o.Pool
		if n, ok := o.PoolFor[id]; ok && n > 0 {
			size = n
		}
		specs = append(specs, lambdarun.Spec{
			Name: id, Bootstrap: b.Bootstrap, BuildErr: b.Err, PoolSize: size,
			Timeout: time.Duration(f.Timeout) * time.Second,
			Env:     FunctionEnv(f, envFile.Functions[id], db, keys, o.Environ, base),
			Output:  lambdarun.NewPrefixWriter(o.Stderr, &outMu, id),
		})
	}
	log.Info("builds done", "ms", time.Since(t0).Milliseconds(), "failed", strings.Join(failed, ","))

	runner := lambdarun.NewRunner(rie, specs)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		runner.Close(cctx)
	}()
	gw := gateway.New(gateway.Config{Routes: tpl.Routes, Functions: tpl.Functions, Invoker: runner, Logger: log,
		DeadLetterDir: filepath.Join(state, "dead-letter")})
	gctx, gcancel := context.WithCancel(ctx)
	gw.Start(gctx)
	defer func() { gcancel(); gw.Close() }()

	srv := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	printBanner(o.Stdout, base, db, keys, tpl, failed, state)
	if o.Ready != nil {
		o.Ready <- base
	}
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return err
	}
	log.Info("stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

// FunctionEnv assembles a function's environment as Lambda would give it: the runtime's variables, the template's
// Environment.Variables, then env.json's entries for the function, then the local InfluxDB and keys, then the
// process environment's INFLUX_* and IOT_* variables.
func FunctionEnv(f *samtpl.Function, envJSON map[string]string, db *influxInstance, keys keyPair, environ []string, apiBase string) []string {
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
		// Fake credentials: the SDK signs requests to the local endpoints and never reaches AWS with them.
		"AWS_ACCESS_KEY_ID":         "local",
		"AWS_SECRET_ACCESS_KEY":     "local",
		"AWS_SESSION_TOKEN":         "local",
		"AWS_EC2_METADATA_DISABLED": "true",
		"AWS_ENDPOINT_URL_LAMBDA":   apiBase,
	}
	if f.LogFormat != "" {
		env["AWS_LAMBDA_LOG_FORMAT"] = f.LogFormat
	}
	// A local SSM emulator (moto) may be used for the *_PARAMETER lookups.
	if v := getenv("AWS_ENDPOINT_URL_SSM"); v != "" {
		env["AWS_ENDPOINT_URL_SSM"] = v
	}
	for k, v := range f.Env {
		env[k] = v
	}
	for k, v := range envJSON {
		env[k] = v
	}
	if db != nil {
		env["INFLUX_URL"], env["INFLUX_TOKEN"], env["INFLUX_ORG"] = db.URL, db.Token, db.Org
	}
	if keys.Operator != "" {
		env["IOT_OPERATOR_KEY"] = keys.Operator
	}
	if keys.Device != "" {
		env["IOT_DEVICE_KEY"] = keys.Device
	}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if (strings.HasPrefix(k, "INFLUX_") || strings.HasPrefix(k, "IOT_")) && v != "" {
			env[k] = v
		}
	}
	if db != nil && db.local != nil {
		// The local influxd is authoritative for its own address and token.
		env["INFLUX_URL"], env["INFLUX_TOKEN"], env["INFLUX_ORG"] = db.URL, db.Token, db.Org
	}
	out := make([]string, 0, len(env))
	for _, k := range sortedKeys(env) {
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

type keyPair struct{ Operator, Device string }

// loadKeys takes IOT_OPERATOR_KEY / IOT_DEVICE_KEY from the environment, else from the state file, else generates
// them on first run and keeps them there (mode 0600).
func loadKeys(path string, getenv func(string) string) (keyPair, error) {
	saved, err := readEnvFile(path)
	if err != nil {
		return keyPair{}, err
	}
	k := keyPair{Operator: firstNonEmpty(getenv("IOT_OPERATOR_KEY"), saved["IOT_OPERATOR_KEY"]),
		Device: firstNonEmpty(getenv("IOT_DEVICE_KEY"), saved["IOT_DEVICE_KEY"])}
	if saved["IOT_OPERATOR_KEY"] != "" && saved["IOT_DEVICE_KEY"] != "" {
		return k, nil
	}
	if saved["IOT_OPERATOR_KEY"] == "" {
		saved["IOT_OPERATOR_KEY"] = "op-" + testenv.RandomHex(20)
	}
	if saved["IOT_DEVICE_KEY"] == "" {
		saved["IOT_DEVICE_KEY"] = "dev-" + testenv.RandomHex(20)
	}
	if err := writeEnvFile(path, saved); err != nil {
		return keyPair{}, err
	}
	k.Operator = firstNonEmpty(k.Operator, saved["IOT_OPERATOR_KEY"])
	k.Device = firstNonEmpty(k.Device, saved["IOT_DEVICE_KEY"])
	return k, nil
}

// runSetup prepares InfluxDB with the same code the SetupFunction custom resource runs in AWS.
func runSetup(ctx context.Context, db *influxInstance, tpl *samtpl.Template, getenv func(string) string, log *slog.Logger) error {
	c := influx.New(db.URL, db.Token, db.Org, influx.Options{})
	defer c.Close()
	days := func(param string) time.Duration {
		n, err := strconv.Atoi(tpl.Parameters[param])
		if err != nil || n <= 0 {
			return 0
		}
		return time.Duration(n) * 24 * time.Hour
	}
	opts := setup.Options{
		Bucket:               firstNonEmpty(getenv("INFLUX_BUCKET"), tpl.Parameters["InfluxBucket"]),
		BucketAuth:           firstNonEmpty(getenv("INFLUX_BUCKET_AUTH"), tpl.Parameters["InfluxBucketAuth"]),
		BucketDownsampled:    firstNonEmpty(getenv("INFLUX_BUCKET_DOWNSAMPLED"), tpl.Parameters["InfluxBucketDownsampled"]),
		DataRetention:        days("DataRetentionDays"),
		DownsampledRetention: days("DownsampledRetentionDays"),
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	res, err := setup.Run(sctx, c, opts)
	if err != nil {
		return fmt.Errorf("preparing InfluxDB (buckets, task, dashboard): %w", err)
	}
	log.Info("influxdb ready", "buckets", strings.Join(sortedKeys(res.BucketIDs), ","), "created", strings.Join(res.Created, ","))
	return nil
}

func printBanner(w io.Writer, base string, db *influxInstance, keys keyPair, tpl *samtpl.Template, failed []string, state string) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nIoT Center local API on %s  (InfluxDB %s, org %s; state in %s)\n", base, db.URL, db.Org, state)
	fmt.Fprintf(&b, "Keys (kept in %s, mode 0600):\n  IOT_OPERATOR_KEY=%s\n  IOT_DEVICE_KEY=%s\n", filepath.Join(state, "keys.env"), keys.Operator, keys.Device)
	b.WriteString("Routes:\n")
	routes := append([]samtpl.Route(nil), tpl.Routes...)
	sort.Slice(routes, func(i, j int) bool { return routes[i].Path+routes[i].Method < routes[j].Path+routes[j].Method })
	for _, r := range routes {
		auth := "key"
		if r.Authorizer == nil {
			auth = "public"
		}
		fmt.Fprintf(&b, "  %-7s %-42s %-22s %s\n", r.Method, r.Path, r.Function, auth)
	}
	if len(failed) > 0 {
		fmt.Fprintf(&b, "NOT BUILT (their routes answer 502): %s\n", strings.Join(failed, ", "))
	}
	fmt.Fprintf(&b, `Try it:
  export OP="Authorization: Bearer %s"
  curl -s %s/api/health
  curl -s -X POST -H "$OP" %s/api/devices/dev1                  # register a device
  curl -s -H "$OP" %s/api/env/dev1                              # its configuration and token
  curl -s -X POST -H "$OP" "%s/api/devices/dev1/write-missing"  # backfill missing data
  curl -s -H "$OP" "%s/api/devices/dev1/write-missing"          # coverage
  curl -s -H "$OP" "%s/api/devices/dev1/measurements"           # dashboard data
  curl -s -X DELETE -H "$OP" %s/api/devices/dev1                # remove it
Ctrl-C stops everything.
`, keys.Operator, base, base, base, base, base, base, base)
	_, _ = io.WriteString(w, b.String())
}

// lookup reads a KEY=VALUE list like os.Getenv (the last entry wins, as in exec).
func lookup(environ []string) func(string) string {
	m := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(k string) string { return m[k] }
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
