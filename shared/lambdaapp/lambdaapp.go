// Package lambdaapp is the cold-start wiring every function shares: read the configuration once, build the
// clients once, then hand requests to a plain net/http handler (HTTP) or events to a handler (Event).
package lambdaapp

import (
	"context"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// Deps is what a function builds its handler from.
type Deps struct {
	Config config.Config
	Influx *influx.Client
	Getenv config.Getenv
	// Refresh re-reads the token from SSM after a 401 (nil for a token given in INFLUX_TOKEN).
	Refresh influx.TokenSource

	table *store.Table // nil: STATE_TABLE's, built on first use
	env   *config.Env
}

// coldStartTimeout bounds configuration loading and client construction (SSM and AWS calls) at cold start.
const coldStartTimeout = 10 * time.Second

// HTTP is an HTTP function's main: the configuration and clients, then build's routes served as an API Gateway
// HTTP API (payload 2.0) function. A build error or a bad variable read through Env exits at cold start.
func HTTP(build func(context.Context, Deps) (*api.Mux, error)) {
	StartHTTP(coldStart(build))
}

// Event is an event function's main (SQS, schedule, authorizer): build returns the handler lambda.Start takes.
func Event(build func(context.Context, Deps) (any, error)) {
	lambda.Start(coldStart(build))
}

// coldStart loads the configuration and runs build under the cold-start deadline. Any error exits the process,
// which Lambda reports as an init error: nothing is served half-configured.
func coldStart[H any](build func(context.Context, Deps) (H, error)) H {
	ctx, cancel := context.WithTimeout(context.Background(), coldStartTimeout)
	defer cancel()
	d, err := New(ctx, os.Getenv, nil)
	var h H
	if err == nil {
		h, err = build(ctx, d)
	}
	if err == nil {
		err = d.env.Err()
	}
	if err != nil {
		api.Exit("invalid configuration", err)
	}
	return h
}

// New reads the configuration (store nil: the default SSM client) and builds the InfluxDB client.
func New(ctx context.Context, getenv config.Getenv, store config.ParameterStore) (Deps, error) {
	cfg, err := config.Load(ctx, getenv, store)
	if err != nil {
		return Deps{}, err
	}
	d := Deps{Config: cfg, Getenv: getenv, Refresh: config.TokenSource(getenv, store), env: &config.Env{Get: getenv}}
	d.Influx = d.NewInflux(influx.Options{})
	return d, nil
}

// NewDeps are the deps of a test that brings its own configuration, client and state table.
func NewDeps(cfg config.Config, c *influx.Client, t *store.Table, getenv config.Getenv) Deps {
	return Deps{Config: cfg, Influx: c, Getenv: getenv, table: t, env: &config.Env{Get: getenv}}
}

// NewInflux is a client with the function's token that re-reads it after a 401 (a deploy replaced it).
func (d Deps) NewInflux(o influx.Options) *influx.Client {
	o.Refresh = d.Refresh
	return influx.New(d.Config.InfluxURL, d.Config.Token.Reveal(), d.Config.Org, o)
}

// StartHTTP serves h as an API Gateway HTTP API (payload 2.0) function.
func StartHTTP(h http.Handler) {
	lambda.Start(httpadapter.NewV2(api.Handler(h)).ProxyWithContext)
}

// Registry is the device registry over the function's client, configuration and state table.
func (d Deps) Registry() *registry.Registry { return registry.New(d.Influx, d.Config, d.Table()) }

// Table is the control-plane table (STATE_TABLE), one client per process; a function without it exits at cold
// start (a deployment fault).
func (d Deps) Table() *store.Table {
	if d.table != nil {
		return d.table
	}
	ctx, cancel := context.WithTimeout(context.Background(), coldStartTimeout)
	defer cancel()
	t, err := store.FromEnv(ctx, d.Getenv)
	if err != nil {
		api.Exit("invalid configuration", err)
	}
	return t
}

// Env reads function-specific variables; HTTP and Event exit at cold start if one was invalid.
func (d Deps) Env() *config.Env {
	if d.env == nil {
		return &config.Env{Get: d.Getenv}
	}
	return d.env
}
