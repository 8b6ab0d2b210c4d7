// Package config turns the environment into a typed, validated Config once per cold start. Secrets come from the
// environment (local runs) or from SSM SecureString parameters (AWS), and are held as Secret so they never print.
package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// Secret is a string that refuses to be printed, logged or marshalled; Reveal is the one way to read it.
type Secret string

func (s Secret) String() string                { return "[redacted]" }
func (s Secret) GoString() string              { return "[redacted]" }
func (s Secret) LogValue() slog.Value          { return slog.StringValue("[redacted]") }
func (s Secret) MarshalJSON() ([]byte, error)  { return []byte(`"[redacted]"`), nil }
func (s Secret) MarshalText() ([]byte, error)  { return []byte("[redacted]"), nil }
func (s Secret) Reveal() string                { return string(s) }
func (s Secret) Empty() bool                   { return s == "" }
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte("[redacted]")) }

// Defaults of the iot-center-v2 contract.
const (
	DefaultBucket               = "iot_center"
	DefaultBucketDownsampled    = "iot_center_1h"
	DefaultLat                  = 50.0873254
	DefaultLon                  = 14.4071543
	DefaultMeasurementInterval  = 60
	DefaultConfigurationRefresh = 3600
	DefaultMaxDevices           = 10000
)

// Config is what every function needs to reach InfluxDB and to answer devices.
type Config struct {
	InfluxURL            string // the URL the functions use
	InfluxPublicURL      string // the URL handed to devices
	Org                  string
	Bucket               string // measurements; devices get read+write here only
	BucketDownsampled    string // hourly aggregates written by the downsampling task
	Token                Secret // the admin token
	DefaultLat           float64
	DefaultLon           float64
	MeasurementInterval  int // seconds
	ConfigurationRefresh int // seconds
	MaxDevices           int
	// DeviceWrites is how devices write: WritesGateway (through the API's write gateway with a device credential
	// that is not an InfluxDB token) or WritesDirect (straight to InfluxDB with a device-scoped InfluxDB token).
	// The zero value is direct; Load defaults to gateway.
	DeviceWrites string
	// OpenEnv is DEVICE_AUTH=none: GET /api/env/{id} needs no key (implies direct writes).
	OpenEnv bool
	// PublicAPIURL is the API's base URL handed to devices as influx_url in gateway mode; "" derives it from the
	// request (Host and X-Forwarded-Proto).
	PublicAPIURL string
}

// Device write modes (DEVICE_WRITES).
const (
	WritesGateway = "gateway"
	WritesDirect  = "direct"
)

// Gateway reports whether devices write through the API's write gateway with hashed device credentials.
func (c Config) Gateway() bool { return c.DeviceWrites == WritesGateway }

// Getenv reads one variable; os.Getenv in main, a map in tests.
type Getenv func(string) string

// Load reads and validates the configuration. ssm may be nil: it is only built (lazily) when the admin token
// has to come from SSM.
func Load(ctx context.Context, getenv Getenv, store ParameterStore) (Config, error) {
	e := &Env{Get: getenv}
	c := Config{
		InfluxURL:            e.String("INFLUX_URL", ""),
		Org:                  e.String("INFLUX_ORG", ""),
		Bucket:               e.String("INFLUX_BUCKET", DefaultBucket),
		BucketDownsampled:    e.String("INFLUX_BUCKET_DOWNSAMPLED", DefaultBucketDownsampled),
		DefaultLat:           e.Float("DEFAULT_LAT", DefaultLat, -90, 90),
		DefaultLon:           e.Float("DEFAULT_LON", DefaultLon, -180, 180),
		MeasurementInterval:  e.Int("MEASUREMENT_INTERVAL", DefaultMeasurementInterval, 1, 86400),
		ConfigurationRefresh: e.Int("CONFIGURATION_REFRESH", DefaultConfigurationRefresh, 1, 7*86400),
		MaxDevices:           e.Int("MAX_DEVICES", DefaultMaxDevices, 1, 1_000_000),
	}
	c.InfluxPublicURL = e.String("INFLUX_PUBLIC_URL", c.InfluxURL)
	c.OpenEnv, c.DeviceWrites, c.PublicAPIURL = deviceMode(e)
	e.URL("INFLUX_URL", c.InfluxURL)
	e.URL("INFLUX_PUBLIC_URL", c.InfluxPublicURL)
	if c.Org == "" {
		e.fail("INFLUX_ORG is required")
	}
	if c.BucketDownsampled == c.Bucket {
		e.fail("INFLUX_BUCKET_DOWNSAMPLED must differ from INFLUX_BUCKET")
	}
	if err := e.Err(); err != nil {
		return Config{}, err
	}
	tok, err := LoadSecret(ctx, getenv, store, "INFLUX_TOKEN", "INFLUX_TOKEN_PARAMETER")
	if err != nil {
		return Config{}, err
	}
	if tok.Empty() {
		return Config{}, errors.New("config: set INFLUX_TOKEN or INFLUX_TOKEN_PARAMETER (an SSM SecureString name)")
	}
	c.Token = tok
	return c, nil
}

// deviceMode reads DEVICE_AUTH, DEVICE_WRITES and PUBLIC_API_URL. DEVICE_AUTH=none implies direct writes: a
// gateway credential is stored only as a hash, so it cannot be handed out again to a caller that shows no key.
func deviceMode(e *Env) (open bool, writes, publicAPI string) {
	switch auth := e.String("DEVICE_AUTH", "key"); auth {
	case "key":
	case "none":
		open = true
	default:
		e.fail("DEVICE_AUTH must be key or none, got %q", auth)
	}
	def := WritesGateway
	if open {
		def = WritesDirect
	}
	writes = e.String("DEVICE_WRITES", def)
	switch {
	case writes != WritesGateway && writes != WritesDirect:
		e.fail("DEVICE_WRITES must be gateway or direct, got %q", writes)
	case open && writes == WritesGateway:
		e.fail("DEVICE_AUTH=none needs DEVICE_WRITES=direct: a gateway credential is kept only as a hash and cannot be handed out to callers without a key")
	}
	if publicAPI = strings.TrimRight(e.String("PUBLIC_API_URL", ""), "/"); publicAPI != "" {
		e.URL("PUBLIC_API_URL", publicAPI)
	}
	return open, writes, publicAPI
}

// ParameterStore is the part of the SSM client config needs.
type ParameterStore interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

var _ ParameterStore = (*ssm.Client)(nil)

// LoadSecret returns the secret from the environment variable valueVar, else from the SSM SecureString named by
// paramVar (decrypted), else "". When store is nil an SSM client is built from the default AWS configuration
// (AWS_ENDPOINT_URL_SSM points it at a local emulator).
func LoadSecret(ctx context.Context, getenv Getenv, store ParameterStore, valueVar, paramVar string) (Secret, error) {
	if v := getenv(valueVar); v != "" {
		return Secret(v), nil
	}
	name := getenv(paramVar)
	if name == "" {
		return "", nil
	}
	if store == nil {
		s, err := DefaultSSM(ctx)
		if err != nil {
			return "", err
		}
		store = s
	}
	out, err := store.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		// the error names the parameter, never its value
		return "", fmt.Errorf("config: reading SSM parameter %s (from %s): %w", name, paramVar, err)
	}
	if out.Parameter == nil || aws.ToString(out.Parameter.Value) == "" {
		return "", fmt.Errorf("config: SSM parameter %s is empty", name)
	}
	return Secret(aws.ToString(out.Parameter.Value)), nil
}

// TokenSource re-reads the function's InfluxDB token from its SSM parameter (influx.Options.Refresh), or is nil when
// the token is not read from SSM (INFLUX_TOKEN set: local runs) and cannot change under the function.
func TokenSource(getenv Getenv, store ParameterStore) func(ctx context.Context) (string, error) {
	if getenv("INFLUX_TOKEN") != "" || getenv("INFLUX_TOKEN_PARAMETER") == "" {
		return nil
	}
	return func(ctx context.Context) (string, error) {
		s, err := LoadSecret(ctx, getenv, store, "INFLUX_TOKEN", "INFLUX_TOKEN_PARAMETER")
		return s.Reveal(), err
	}
}

var (
	ssmOnce   sync.Once
	ssmClient *ssm.Client
	ssmErr    error
)

// DefaultSSM builds one SSM client per process from the default AWS configuration.
func DefaultSSM(ctx context.Context) (*ssm.Client, error) {
	ssmOnce.Do(func() {
		cfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			ssmErr = fmt.Errorf("config: loading AWS configuration: %w", err)
			return
		}
		ssmClient = ssm.NewFromConfig(cfg)
	})
	return ssmClient, ssmErr
}

// Env reads typed variables and collects every problem, so a bad cold start reports them all at once.
type Env struct {
	Get  Getenv
	errs []string
}

func (e *Env) fail(format string, args ...any) { e.errs = append(e.errs, fmt.Sprintf(format, args...)) }

// Err returns every problem found so far, or nil.
func (e *Env) Err() error {
	if len(e.errs) == 0 {
		return nil
	}
	return errors.New("config: " + strings.Join(e.errs, "; "))
}

// String returns the variable or def when it is unset or empty.
func (e *Env) String(name, def string) string {
	if v := strings.TrimSpace(e.Get(name)); v != "" {
		return v
	}
	return def
}

// Int returns the variable as an int in [min, max], or def when unset.
func (e *Env) Int(name string, def, min, max int) int {
	return bounded(e, name, def, min, max, "an integer", strconv.Atoi)
}

// Float returns the variable as a float in [min, max], or def when unset.
func (e *Env) Float(name string, def, min, max float64) float64 {
	return bounded(e, name, def, min, max, "a number", func(v string) (float64, error) { return strconv.ParseFloat(v, 64) })
}

// Duration returns the variable as a Go duration in [min, max], or def when unset.
func (e *Env) Duration(name string, def, min, max time.Duration) time.Duration {
	return bounded(e, name, def, min, max, "a duration", time.ParseDuration)
}

// bounded reads the variable with parse and keeps it only in [min, max]: def when unset, and def with a problem
// recorded (naming kind and the bounds) when it does not parse or is out of range.
func bounded[T int | float64 | time.Duration](e *Env, name string, def, min, max T, kind string, parse func(string) (T, error)) T {
	v := strings.TrimSpace(e.Get(name))
	if v == "" {
		return def
	}
	x, err := parse(v)
	if err != nil || x < min || x > max {
		e.fail("%s must be %s in [%v, %v], got %q", name, kind, min, max, v)
		return def
	}
	return x
}

// URL checks that v is an absolute http(s) URL.
func (e *Env) URL(name, v string) {
	if v == "" {
		e.fail("%s is required", name)
		return
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		e.fail("%s must be an http(s) URL", name)
	}
}
