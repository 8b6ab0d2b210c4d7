// Command localapi is `sam local start-api` without Docker: it reads template.yaml, builds every function with its
// Makefile target, runs each bootstrap under the Lambda Runtime Interface Emulator, and serves the HTTP API (with
// its Lambda authorizer) and the Lambda Invoke API on one local port, over a real InfluxDB.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/app"
	"github.com/iot-center/iot-center-serverless/internal/devstack"
)

func main() {
	var o app.Options
	var params, poolFor, allowHosts, samEnv, sqsEndpoint, dynamoEndpoint, stateTable string
	var checkDeploy bool
	flag.StringVar(&o.Root, "root", "", "repository root (default: the folder holding go.mod above the working directory)")
	flag.StringVar(&o.Template, "template", "", "SAM template (default <root>/template.yaml)")
	flag.StringVar(&o.Addr, "addr", "127.0.0.1:3000", "listen address of the local API")
	flag.StringVar(&o.State, "state", ".local", "state folder: influxd data, token, keys, builds, dead letters")
	flag.StringVar(&o.InfluxAddr, "influx-addr", "127.0.0.1:8086", "address of the local influxd (unused when INFLUX_URL and INFLUX_TOKEN are set)")
	flag.IntVar(&o.Pool, "pool", 2, "emulator processes per function")
	flag.StringVar(&poolFor, "pool-for", "", "per-function pool sizes, e.g. EnvConfigFunction=4,QueryFunction=3")
	flag.StringVar(&o.EnvVars, "env-vars", "", "JSON file in the `sam local --env-vars` format")
	flag.StringVar(&params, "parameter-overrides", os.Getenv("LOCALAPI_PARAMETER_OVERRIDES"), "template parameters, Key=Value separated by spaces or commas")
	flag.StringVar(&o.GOARCH, "goarch", runtime.GOARCH, "architecture of the local builds (the host's)")
	flag.StringVar(&allowHosts, "allow-host", "", "Host names to answer besides 127.0.0.1, localhost and [::1], comma-separated (other names get 403: DNS rebinding)")
	flag.BoolVar(&o.SkipSetup, "skip-setup", false, "do not prepare InfluxDB (buckets, downsampling task, dashboard)")
	flag.StringVar(&samEnv, "sam-env", "", "instead of serving: prepare the InfluxDB in INFLUX_URL/INFLUX_ORG/INFLUX_TOKEN (admin) for `sam local` and write this env.json (each function's own token), then exit")
	flag.StringVar(&sqsEndpoint, "sam-sqs-endpoint", "", "with -sam-env: the SQS (moto) as SAM's containers reach it (default http://host.docker.internal:5000)")
	flag.StringVar(&dynamoEndpoint, "sam-dynamodb-endpoint", "", "with -sam-env: the DynamoDB endpoint as this host reaches it, where the state table is created (default http://127.0.0.1:8000, DynamoDB Local; none: a real table)")
	flag.StringVar(&stateTable, "sam-state-table", "", "with -sam-env: the state table's name (default StateTable)")
	flag.BoolVar(&checkDeploy, "check-deploy", false, "instead of serving: check the deploy parameters (samconfig.toml, -parameter-overrides), their SSM SecureStrings and that the admin token reaches InfluxUrl, then exit")
	flag.Parse()

	o.AllowHosts = strings.FieldsFunc(allowHosts, func(r rune) bool { return r == ',' || r == ' ' })
	var err error
	// (-check-deploy reads sam deploy's syntax, quotes included, below)
	if o.Params, err = pairs(params); err != nil && !checkDeploy {
		fail(fmt.Errorf("-parameter-overrides: %w", err))
	}
	sizes, err := pairs(poolFor)
	if err != nil {
		fail(fmt.Errorf("-pool-for: %w", err))
	}
	o.PoolFor = map[string]int{}
	for k, v := range sizes {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			fail(fmt.Errorf("-pool-for %s=%s: want 1..64", k, v))
		}
		o.PoolFor[k] = n
	}
	if o.Pool < 1 || o.Pool > 64 {
		fail(fmt.Errorf("-pool %d: want 1..64", o.Pool))
	}
	if o.Root == "" {
		if o.Root, err = devstack.ModuleRoot(); err != nil {
			fail(err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if checkDeploy {
		err := app.CheckDeploy(ctx, app.CheckOptions{Template: firstSet(o.Template, filepath.Join(o.Root, "template.yaml")),
			Samconfig: filepath.Join(o.Root, "samconfig.toml"), Params: app.ParseOverrides(params), Stdout: os.Stdout})
		if err != nil {
			fail(err)
		}
		return
	}
	if samEnv != "" {
		err := app.WriteSAMEnv(ctx, app.SAMEnvOptions{Path: samEnv, Template: firstSet(o.Template, filepath.Join(o.Root, "template.yaml")),
			Params: o.Params, InfluxURL: os.Getenv("INFLUX_URL"), Org: os.Getenv("INFLUX_ORG"), Token: os.Getenv("INFLUX_TOKEN"),
			SQSEndpoint: sqsEndpoint, DynamoEndpoint: dynamoEndpoint, StateTable: stateTable, Stdout: os.Stdout})
		if err != nil {
			fail(err)
		}
		return
	}
	if err := app.Run(ctx, o); err != nil && ctx.Err() == nil {
		fail(err)
	}
}

func firstSet(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// pairs parses "A=1 B=2" or "A=1,B=2".
func pairs(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not Key=Value", f)
		}
		out[k] = v
	}
	return out, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "localapi:", err)
	os.Exit(1)
}
