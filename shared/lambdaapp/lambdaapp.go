// Package lambdaapp is the cold-start wiring every function shares: read the configuration once, build the one
// InfluxDB client, then hand requests to a plain net/http handler through the API Gateway (payload 2.0) adapter.
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
}

// coldStartTimeout bounds configuration loading (an SSM call) at init.
const coldStartTimeout = 10 * time.Second

// Init loads the configuration and builds the InfluxDB client; a bad configuration is reported and the process
// exits, which Lambda reports as an init error (nothing is served half-configured).
func Init() Deps {
	ctx, cancel := context.WithTimeout(context.Background(), coldStartTimeout)
	defer cancel()
	d, err := New(ctx, os.Getenv, nil)
	if err != nil {
		api.Exit("invalid configuration", err)
	}
	return d
}

// New is Init's work, for tests with their own environment and SSM (store nil: the default SSM client).
func New(ctx context.Context, getenv config.Getenv, store config.ParameterStore) (Deps, error) {
	cfg, err := config.Load(ctx, getenv, store)
	if err != nil {
		return Deps{}, err
	}
	d := Deps{Config: cfg, Getenv: getenv, Refresh: config.TokenSource(getenv, store)}
	d.Influx = d.NewInflux(influx.Options{})
	return d, nil
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

// Registry is the device registry over the function's client, configuration and state table (most functions read
// it).
func (d Deps) Registry() *registry.Registry { return registry.New(d.Influx, d.Config, d.Table()) }

// Table is the control-plane table (STATE_TABLE), built once per process; a function without it exits at cold
// start (a deployment fault).
func (d Deps) Table() *store.Table {
	ctx, cancel := context.WithTimeout(context.Background(), coldStartTimeout)
	defer cancel()
	t, err := store.FromEnv(ctx, d.Getenv)
	if err != nil {
		api.Exit("invalid configuration", err)
	}
	return t
}

// Env is a typed reader of function-specific variables; call Check after reading them.
func (d Deps) Env() *config.Env { return &config.Env{Get: d.Getenv} }

// Check exits at cold start if env recorded any problem.
func Check(env *config.Env) {
	if err := env.Err(); err != nil {
		api.Exit("invalid configuration", err)
	}
}
