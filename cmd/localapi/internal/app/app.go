// Package app wires the local API: InfluxDB (external or a local influxd), its setup, the keys, the template,
// the function builds, the emulator pools and the gateway, and stops all of it when the context ends.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/httpapi"
	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/lambdarun"
	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/samtpl"
	"github.com/iot-center/iot-center-serverless/internal/devstack"
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
	AllowHosts []string          // Host names answered besides the loopback names
	Environ    []string          // the process environment (default os.Environ())
	Stdout     io.Writer         // banner and walkthrough
	Stderr     io.Writer         // logs and function output
	// Ready, when set, receives the base URL once the API serves.
	Ready chan<- string
}

// Run starts everything, serves until ctx ends, then stops everything it started.
func Run(ctx context.Context, o Options) error {
	o = o.withDefaults()
	getenv := lookup(o.Environ)
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
	for k, v := range o.Params {
		params[k] = v
	}

	db, err := openInflux(ctx, o, getenv, params, state, lambdarun.NewPrefixWriter(o.Stderr, &outMu, "influxd"), log)
	if err != nil {
		return err
	}
	defer db.stop()
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
	// moto's own output is one access-log line per request (the pollers ask every second): not shown
	evs, err := prepareEventSources(ctx, tpl, getenv, log, io.Discard)
	if err != nil {
		return err
	}
	defer evs.stop()
	tables, err := prepareTables(ctx, tpl, o.Template, state, getenv, log, io.Discard)
	if err != nil {
		return err
	}
	defer tables.stop()
	keys, err := loadKeys(filepath.Join(state, "keys.env"), getenv)
	if err != nil {
		return err
	}
	// Role tokens: setup keeps one scoped token per role in the state folder; each function gets its own.
	roleStore := &setup.FileStore{Path: filepath.Join(state, "tokens.env")}
	if !o.SkipSetup {
		if err := runSetup(ctx, db, tpl, getenv, log, roleStore, "local "+state); err != nil {
			return err
		}
	}
	roleTokens, err := roleStore.All()
	if err != nil {
		return err
	}

	// The functions' AWS credentials, fresh per run: the Invoke API accepts only calls signed with them, so a web
	// page (or anything else that cannot read a function's environment) cannot invoke a function directly.
	creds := aws.Credentials{AccessKeyID: "ASIALOCAL" + strings.ToUpper(devstack.RandomHex(6)), SecretAccessKey: devstack.RandomHex(20),
		SessionToken: devstack.RandomHex(24), Source: "localapi"}
	specs, failed := buildFunctions(ctx, o, tpl, state, func(id string) []string {
		f := tpl.Functions[id]
		return FunctionEnv(f, envFile.For(id, f, log), db, functionToken(f, tpl, db, roleTokens, log), keys, tables.environ(id, evs.environ(o.Environ)), base, creds)
	}, &outMu, log)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	runner := lambdarun.NewRunner(specs)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		runner.Close(cctx)
	}()
	gw := httpapi.New(httpapi.Config{Routes: tpl.Routes, Functions: tpl.Functions, Invoker: runner, Logger: log,
		DeadLetterDir: filepath.Join(state, "dead-letter"), Credentials: creds, AllowHosts: o.AllowHosts})
	gctx, gcancel := context.WithCancel(ctx)
	gw.Start(gctx)
	evs.start(gctx, tpl, runner, log)
	defer func() { gcancel(); gw.Close() }()

	return serve(ctx, ln, gw, func() {
		printBanner(o.Stdout, base, db, keys, tpl, failed, state)
		if o.Ready != nil {
			o.Ready <- base
		}
	}, log)
}

// serve answers on ln until ctx ends (then shuts the server down gracefully) or the server fails; ready runs once
// the server accepts requests.
func serve(ctx context.Context, ln net.Listener, h http.Handler, ready func(), log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	ready()
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

func (o Options) withDefaults() Options {
	if o.Environ == nil {
		o.Environ = os.Environ()
	}
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
	return o
}

// openInflux returns the InfluxDB in INFLUX_URL/INFLUX_TOKEN, else starts a local influxd with its data in the
// state folder (stop it with stop).
func openInflux(ctx context.Context, o Options, getenv func(string) string, params map[string]string, state string, out io.Writer, log *slog.Logger) (*influxInstance, error) {
	db := &influxInstance{URL: getenv("INFLUX_URL"), Token: getenv("INFLUX_TOKEN"), Org: getenv("INFLUX_ORG")}
	if db.URL != "" && db.Token != "" {
		if db.Org == "" {
			return nil, errors.New("INFLUX_ORG is required with INFLUX_URL and INFLUX_TOKEN")
		}
		log.Info("using the InfluxDB from INFLUX_URL", "url", db.URL, "org", db.Org)
		return db, nil
	}
	bin, err := devstack.InfluxdBinary(ctx, o.Root, getenv, o.Stderr)
	if err != nil {
		return nil, err
	}
	bucket := firstNonEmpty(getenv("INFLUX_BUCKET"), params["InfluxBucket"], "iot_center")
	db, err = startInfluxd(ctx, bin, filepath.Join(state, "influxd"), o.InfluxAddr, filepath.Join(state, "influx.env"), bucket, out)
	if err != nil {
		return nil, err
	}
	log.Info("local influxd running", "url", db.URL, "org", db.Org, "data", filepath.Join(state, "influxd"))
	return db, nil
}

// buildFunctions builds every function once, two at a time (the machine has 2 cores), and returns the emulator
// pool of each; a failed build only disables its routes (listed in failed).
func buildFunctions(ctx context.Context, o Options, tpl *samtpl.Template, state string, env func(id string) []string, outMu *sync.Mutex, log *slog.Logger) (specs []lambdarun.Spec, failed []string) {
	log.Info("building functions", "count", len(tpl.Functions), "goarch", o.GOARCH)
	t0 := time.Now()
	builds := lambdarun.Build(ctx, o.Root, filepath.Join(state, "build"), o.GOARCH, tpl.IDs(), 2)
	if ctx.Err() != nil {
		return nil, nil
	}
	for _, id := range tpl.IDs() {
		f := tpl.Functions[id]
		b := builds[id]
		if b.Err != nil {
			failed = append(failed, id)
			log.Error("build failed: its routes answer 502", "function", id, "error", b.Err.Error())
			_, _ = io.WriteString(lambdarun.NewPrefixWriter(o.Stderr, outMu, "build "+id), b.Output+"\n")
		}
		if len(f.Unresolved) > 0 {
			log.Warn("environment variables without a value (give the parameter with -parameter-overrides)", "function", id, "vars", strings.Join(f.Unresolved, ","))
		}
		size := o.Pool
		n, explicit := o.PoolFor[id]
		if explicit && n > 0 {
			size = n
		}
		size = poolSize(f, size, explicit)
		specs = append(specs, lambdarun.Spec{
			Name: id, Bootstrap: b.Bootstrap, BuildErr: b.Err, PoolSize: size,
			Timeout: time.Duration(f.Timeout) * time.Second,
			Env:     env(id),
			Output:  lambdarun.NewPrefixWriter(o.Stderr, outMu, id),
		})
	}
	log.Info("builds done", "ms", time.Since(t0).Milliseconds(), "failed", strings.Join(failed, ","))
	return specs, failed
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
		saved["IOT_OPERATOR_KEY"] = "op-" + devstack.RandomHex(20)
	}
	if saved["IOT_DEVICE_KEY"] == "" {
		saved["IOT_DEVICE_KEY"] = "dev-" + devstack.RandomHex(20)
	}
	if err := writeEnvFile(path, saved); err != nil {
		return keyPair{}, err
	}
	k.Operator = firstNonEmpty(k.Operator, saved["IOT_OPERATOR_KEY"])
	k.Device = firstNonEmpty(k.Device, saved["IOT_DEVICE_KEY"])
	return k, nil
}

// runSetup prepares InfluxDB with the same code the SetupFunction custom resource runs in AWS.
func runSetup(ctx context.Context, db *influxInstance, tpl *samtpl.Template, getenv func(string) string, log *slog.Logger, roles setup.TokenStore, owner string) error {
	c := influx.New(db.URL, db.Token, db.Org, influx.Options{})
	defer c.Close()
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	res, err := setup.Run(sctx, c, setupOptions(tpl, getenv, roles, owner))
	if err != nil {
		return fmt.Errorf("preparing InfluxDB (buckets, task, dashboard): %w", err)
	}
	log.Info("influxdb ready", "buckets", strings.Join(slices.Sorted(maps.Keys(res.BucketIDs)), ","), "created", strings.Join(res.Created, ","))
	return nil
}

// setupOptions are the custom resource's options as the template (and INFLUX_BUCKET* overrides) give them.
func setupOptions(tpl *samtpl.Template, getenv func(string) string, roles setup.TokenStore, owner string) setup.Options {
	days := func(param string) time.Duration {
		n, err := strconv.Atoi(tpl.Parameters[param])
		if err != nil || n <= 0 {
			return 0
		}
		return time.Duration(n) * 24 * time.Hour
	}
	return setup.Options{
		Bucket:               firstNonEmpty(getenv("INFLUX_BUCKET"), tpl.Parameters["InfluxBucket"]),
		BucketDownsampled:    firstNonEmpty(getenv("INFLUX_BUCKET_DOWNSAMPLED"), tpl.Parameters["InfluxBucketDownsampled"]),
		DataRetention:        days("DataRetentionDays"),
		DownsampledRetention: days("DownsampledRetentionDays"),
		Roles:                roles,
		Owner:                owner,
		RoleNames:            templateRoles(tpl),
	}
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
