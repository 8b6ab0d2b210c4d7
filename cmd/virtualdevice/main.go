// Command virtualdevice behaves like a physical IoT Center device: it reads its configuration from
// GET /api/env/{id} (registering with the provisioning key the first time, then authenticating with its own token),
// writes one `environment` point every measurement_interval seconds with its own InfluxDB token through
// influxdb-client-go, and re-reads its configuration every configuration_refresh seconds (or at once when InfluxDB
// refuses its token), so a rotated token is picked up. It stops on SIGINT/SIGTERM.
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
	API      string        // base URL of the IoT Center API
	ID       string        // device id
	Key      string        // provisioning key (first registration) or operator key
	Token    string        // the device's own token, when already known
	Interval time.Duration // overrides measurement_interval (tests, demos); 0 = the server's
	Refresh  time.Duration // overrides configuration_refresh; 0 = the server's
	Count    int           // stop after this many points; 0 = until interrupted
}

func main() {
	var o options
	flag.StringVar(&o.API, "api", "http://127.0.0.1:3000", "IoT Center API base URL")
	flag.StringVar(&o.ID, "id", "", "device id (required)")
	flag.StringVar(&o.Key, "key", os.Getenv("IOT_DEVICE_KEY"), "provisioning key to register with (default $IOT_DEVICE_KEY)")
	flag.StringVar(&o.Token, "token", "", "the device's own token, if it already has one")
	flag.DurationVar(&o.Interval, "interval", 0, "override measurement_interval (e.g. 2s)")
	flag.DurationVar(&o.Refresh, "refresh", 0, "override configuration_refresh (e.g. 1m)")
	flag.IntVar(&o.Count, "count", 0, "stop after this many points (0: until interrupted)")
	flag.Parse()
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

// run writes points until ctx ends or o.Count points are written, and returns how many it wrote.
func run(ctx context.Context, o options, log *slog.Logger) (int, error) {
	if err := api.CheckDeviceID(o.ID); err != nil {
		return 0, fmt.Errorf("-id: %w", err)
	}
	d := &device{o: o, http: &http.Client{Timeout: 30 * time.Second}, log: log.With("deviceId", o.ID)}
	defer d.close()
	if err := d.configure(ctx); err != nil {
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
			if err := d.configure(ctx); err != nil {
				// keep writing with what we have; the next refresh tries again
				d.log.Warn("configuration refresh failed", "error", err.Error())
			}
			nextRefresh = time.Now().Add(d.refresh())
		}
		err := d.write(ctx)
		if isAuthError(err) {
			// the token was rotated or revoked: fetch the current one and write again
			d.log.Info("token refused by InfluxDB, re-reading configuration")
			if cerr := d.configure(ctx); cerr == nil {
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

// configure reads the configuration: with the device's own token when it has one (what the API's authorizer
// accepts for a registered device), else with the key (registration); a refused token falls back to the key.
func (d *device) configure(ctx context.Context) error {
	own := d.cfg.InfluxToken
	if own == "" {
		own = d.o.Token
	}
	bearer := own
	if bearer == "" {
		bearer = d.o.Key
	}
	var cfg envConfig
	status, err := d.fetch(ctx, bearer, &cfg)
	if (status == http.StatusUnauthorized || status == http.StatusForbidden) && own != "" && d.o.Key != "" {
		_, err = d.fetch(ctx, d.o.Key, &cfg)
	}
	if err != nil {
		return err
	}
	if cfg.InfluxURL == "" || cfg.InfluxToken == "" || cfg.InfluxBucket == "" || cfg.InfluxOrg == "" {
		return errors.New("configuration lacks influx_url, influx_token, influx_bucket or influx_org")
	}
	if cfg.InfluxToken != d.cfg.InfluxToken || cfg.InfluxURL != d.cfg.InfluxURL {
		if d.client != nil {
			d.client.Close()
		}
		d.client = influxdb2.NewClient(cfg.InfluxURL, cfg.InfluxToken)
		if d.cfg.InfluxToken != "" {
			d.log.Info("new token picked up")
		}
	}
	d.cfg = cfg
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
