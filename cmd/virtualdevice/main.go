// Command virtualdevice behaves like a physical IoT Center device: it is provisioned once (GET /api/env/{id} with
// the provisioning key), keeps the configuration and credential it was given in a state file (mode 0600) and uses
// them after a restart, writes one `environment` point every measurement_interval seconds to influx_url with its
// credential through influxdb-client-go (whatever the device-writes mode: the API's write gateway or InfluxDB), and
// re-reads its configuration with its credential every configuration_refresh seconds and at once when a write is
// refused. A rotated or revoked credential opens nothing: the device says so and waits for the configuration the
// operator hands over (-config file); it provisions again only when told to (-reprovision). It stops on
// SIGINT/SIGTERM.
//
//	go run ./cmd/virtualdevice -api http://127.0.0.1:3000 -id my-device -key "$IOT_DEVICE_KEY"
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	ihttp "github.com/influxdata/influxdb-client-go/v2/api/http"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/schema"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
)

type options struct {
	API         string        // base URL of the IoT Center API
	ID          string        // device id
	Key         string        // provisioning key (first registration) or operator key
	Token       string        // the device's own credential, when already known
	State       string        // state file; "" keeps nothing
	Handover    string        // configuration file the operator hands over; default <State without .json>.config.json
	Reprovision bool          // provision again with Key, ignoring the state file
	Interval    time.Duration // overrides measurement_interval (tests, demos); 0 = the server's
	Refresh     time.Duration // overrides configuration_refresh; 0 = the server's
	Poll        time.Duration // how often a waiting device looks for the handed-over configuration (default 2s)
	Count       int           // stop after this many points; 0 = until interrupted
}

func main() {
	var o options
	flag.StringVar(&o.API, "api", "http://127.0.0.1:3000", "IoT Center API base URL")
	flag.StringVar(&o.ID, "id", "", "device id (required)")
	flag.StringVar(&o.Key, "key", os.Getenv("IOT_DEVICE_KEY"), "provisioning key, used on first start and with -reprovision (default $IOT_DEVICE_KEY)")
	flag.StringVar(&o.Token, "token", "", "the device's own credential, if it already has one")
	flag.StringVar(&o.State, "state", "", "state file keeping the configuration and credential (default .local/devices/<id>.json)")
	flag.StringVar(&o.Handover, "config", "", "configuration file handed over by the operator (the JSON or text answer of /api/env or /rotate); read at start and while waiting after a refused credential (default <state>.config.json)")
	flag.BoolVar(&o.Reprovision, "reprovision", false, "provision again with -key, ignoring the state file (after the operator deleted the device)")
	flag.DurationVar(&o.Interval, "interval", 0, "override measurement_interval (e.g. 2s)")
	flag.DurationVar(&o.Refresh, "refresh", 0, "override configuration_refresh (e.g. 1m)")
	flag.IntVar(&o.Count, "count", 0, "stop after this many points (0: until interrupted)")
	flag.Parse()
	if o.State == "" && api.ValidDeviceID(o.ID) {
		o.State = filepath.Join(".local", "devices", o.ID+".json")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := run(ctx, o, log)
	log.Info("stopped", "points", n)
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("virtual device failed", "error", err.Error())
		os.Exit(1)
	}
}

// envConfig is the iot-center-v2 device configuration (the fields a device uses).
type envConfig struct {
	InfluxURL            string  `json:"influx_url"`
	InfluxOrg            string  `json:"influx_org"`
	InfluxToken          string  `json:"influx_token"`
	InfluxBucket         string  `json:"influx_bucket"`
	ID                   string  `json:"id"`
	DefaultLat           float64 `json:"default_lat"`
	DefaultLon           float64 `json:"default_lon"`
	MeasurementInterval  int     `json:"measurement_interval"`
	ConfigurationRefresh int     `json:"configuration_refresh"`
}

// device is the running client state.
type device struct {
	o      options
	http   *http.Client
	log    *slog.Logger
	cfg    envConfig
	client influxdb2.Client
}

// errRefused: the API refused the device's credential (401/403): rotated or revoked.
var errRefused = errors.New("the API refuses this device's credential (rotated or revoked)")

// run writes points until ctx ends or o.Count points are written, and returns how many it wrote.
func run(ctx context.Context, o options, log *slog.Logger) (int, error) {
	if err := api.CheckDeviceID(o.ID); err != nil {
		return 0, fmt.Errorf("-id: %w", err)
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	d := &device{o: o, http: &http.Client{Timeout: 30 * time.Second}, log: log.With("deviceId", o.ID)}
	defer d.close()
	if err := d.start(ctx); err != nil {
		return 0, err
	}
	written := 0
	nextRefresh := time.Now().Add(d.refresh())
	tick := time.NewTimer(0)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return written, ctx.Err()
		case <-tick.C:
		}
		if time.Now().After(nextRefresh) {
			if err := d.reread(ctx); err != nil {
				// keep writing with what we have; the next refresh (or a refused write) tries again
				d.log.Warn("configuration refresh failed", "error", err.Error())
			}
			nextRefresh = time.Now().Add(d.refresh())
		}
		err := d.write(ctx)
		if isAuthError(err) {
			d.log.Info("credential refused by the write endpoint, re-reading the configuration")
			if err = d.recover(ctx); err == nil {
				err = d.write(ctx)
			}
			nextRefresh = time.Now().Add(d.refresh())
		}
		if err != nil {
			if ctx.Err() != nil {
				return written, ctx.Err()
			}
			d.log.Warn("write failed", "error", err.Error())
		} else {
			written++
			if o.Count > 0 && written >= o.Count {
				return written, nil
			}
		}
		tick.Reset(d.interval())
	}
}

func (d *device) interval() time.Duration {
	if d.o.Interval > 0 {
		return d.o.Interval
	}
	return time.Duration(max(d.cfg.MeasurementInterval, 1)) * time.Second
}

func (d *device) refresh() time.Duration {
	if d.o.Refresh > 0 {
		return d.o.Refresh
	}
	return time.Duration(max(d.cfg.ConfigurationRefresh, 1)) * time.Second
}

func (d *device) handoverPath() string {
	if d.o.Handover != "" || d.o.State == "" {
		return d.o.Handover
	}
	return strings.TrimSuffix(d.o.State, ".json") + ".config.json"
}

// start finds the device's credential: a configuration handed over, else the state file, else -token, else it
// provisions with the key (and only then, or with -reprovision, uses the key).
func (d *device) start(ctx context.Context) error {
	if !d.o.Reprovision {
		if p := d.handoverPath(); p != "" {
			cfg, err := readHandover(p, d.o.ID)
			if err != nil {
				return err
			}
			if cfg != nil {
				d.log.Info("configuration handed over by the operator", "file", p)
				return d.adopt(*cfg)
			}
		}
		if d.o.State != "" {
			cfg, err := loadState(d.o.State, d.o.ID)
			if err != nil {
				return err
			}
			if cfg != nil {
				d.log.Info("credential kept from the last run", "state", d.o.State)
				if err := d.adopt(*cfg); err != nil {
					return err
				}
				return d.recover(ctx)
			}
		}
		if d.o.Token != "" {
			d.cfg.InfluxToken = d.o.Token
			return d.recover(ctx)
		}
	}
	// (without a key: an API with DeviceAuth=none provisions whoever asks, as iot-center-v2 did)
	var cfg envConfig
	if status, err := d.fetch(ctx, d.o.Key, &cfg); err != nil {
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			err = fmt.Errorf("%w (no state file, -config or -token: the provisioning key, -key, provisions a new id)", err)
		}
		return fmt.Errorf("provisioning: %w", err)
	}
	d.log.Info("provisioned", "state", d.o.State)
	return d.adopt(cfg)
}

// reread reads the configuration with the device's own credential; errRefused when the API refuses it.
func (d *device) reread(ctx context.Context) error {
	var cfg envConfig
	status, err := d.fetch(ctx, d.cfg.InfluxToken, &cfg)
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		return errRefused
	}
	if err != nil {
		return err
	}
	return d.adopt(cfg)
}

// recover re-reads the configuration; a refused credential means waiting for the operator's handover.
func (d *device) recover(ctx context.Context) error {
	err := d.reread(ctx)
	if errors.Is(err, errRefused) {
		return d.waitForHandover(ctx)
	}
	if err != nil && d.cfg.complete() == nil {
		// the API is unreachable: go on with the configuration the device has
		d.log.Warn("configuration not re-read, going on with the kept one", "error", err.Error())
		return nil
	}
	return err
}

// waitForHandover waits (until ctx ends) for the operator to hand over a configuration with another credential.
func (d *device) waitForHandover(ctx context.Context) error {
	p := d.handoverPath()
	if p == "" {
		return fmt.Errorf("%w; no -config file to wait for", errRefused)
	}
	d.log.Warn(errRefused.Error()+": waiting for the operator to hand over the new configuration (POST /api/devices/{id}/rotate answers it)", "file", p)
	t := time.NewTicker(d.o.Poll)
	defer t.Stop()
	for {
		cfg, err := readHandover(p, d.o.ID)
		switch {
		case err != nil:
			d.log.Warn("handed-over configuration unusable", "error", err.Error())
		case cfg != nil && cfg.InfluxToken != d.cfg.InfluxToken:
			d.log.Info("configuration handed over by the operator", "file", p)
			return d.adopt(*cfg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// adopt takes a configuration: a new client when the endpoint or credential changed, and the state file updated.
func (d *device) adopt(cfg envConfig) error {
	if err := cfg.complete(); err != nil {
		return err
	}
	if cfg.ID == "" {
		cfg.ID = d.o.ID
	}
	if cfg.InfluxToken != d.cfg.InfluxToken || cfg.InfluxURL != d.cfg.InfluxURL || d.client == nil {
		if d.client != nil {
			d.client.Close()
			d.log.Info("new credential picked up")
		}
		d.client = influxdb2.NewClient(cfg.InfluxURL, cfg.InfluxToken)
	}
	changed := cfg != d.cfg
	d.cfg = cfg
	if changed && d.o.State != "" {
		if err := saveState(d.o.State, d.o.API, cfg); err != nil {
			return fmt.Errorf("keeping the configuration: %w", err)
		}
	}
	return nil
}

// fetch is one GET /api/env/{id}.
func (d *device) fetch(ctx context.Context, bearer string, cfg *envConfig) (int, error) {
	u := strings.TrimRight(d.o.API, "/") + "/api/env/" + url.PathEscape(d.o.ID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET /api/env/%s: %w", d.o.ID, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		// the body is the API's {"error": ...}; it never holds a token
		return resp.StatusCode, fmt.Errorf("GET /api/env/%s answered %d: %.200s", d.o.ID, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, cfg); err != nil {
		return resp.StatusCode, fmt.Errorf("GET /api/env/%s: %w", d.o.ID, err)
	}
	return resp.StatusCode, nil
}

// write sends one point, now, with the device's own token.
func (d *device) write(ctx context.Context) error {
	now := time.Now()
	g := sensors.Generator{Lat: d.cfg.DefaultLat, Lon: d.cfg.DefaultLon}
	r := g.At(sensors.SeedOf(d.o.ID), now.UnixMilli())
	p := influxdb2.NewPoint(schema.Measurement, sensors.TagMap(d.o.ID), r.Fields(), now)
	return d.client.WriteAPIBlocking(d.cfg.InfluxOrg, d.cfg.InfluxBucket).WritePoint(ctx, p)
}

func (d *device) close() {
	if d.client != nil {
		d.client.Close()
	}
}

// isAuthError reports InfluxDB refusing the token (401/403).
func isAuthError(err error) bool {
	var he *ihttp.Error
	return errors.As(err, &he) && (he.StatusCode == http.StatusUnauthorized || he.StatusCode == http.StatusForbidden)
}
