package config_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/iot-center/iot-center-serverless/shared/config"
)

func env(m map[string]string) config.Getenv { return func(k string) string { return m[k] } }

func base() map[string]string {
	return map[string]string{"INFLUX_URL": "http://127.0.0.1:8086", "INFLUX_ORG": "org", "INFLUX_TOKEN": "tok-SECRET"}
}

func TestLoadDefaults(t *testing.T) {
	c, err := config.Load(context.Background(), env(base()), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Config{InfluxURL: "http://127.0.0.1:8086", InfluxPublicURL: "http://127.0.0.1:8086", Org: "org",
		Bucket: "iot_center", BucketDownsampled: "iot_center_1h", Token: "tok-SECRET",
		DefaultLat: 50.0873254, DefaultLon: 14.4071543, MeasurementInterval: 60, ConfigurationRefresh: 3600, MaxDevices: 10000,
		DeviceWrites: config.WritesGateway}
	if c != want {
		t.Errorf("Load = %+v, want %+v", c, want)
	}
}

func TestLoadRejectsBadConfiguration(t *testing.T) {
	tests := []struct {
		name    string
		set     map[string]string
		wantErr string
	}{
		{"same buckets", map[string]string{"INFLUX_BUCKET_DOWNSAMPLED": "iot_center"}, "INFLUX_BUCKET_DOWNSAMPLED must differ"},
		{"no url", map[string]string{"INFLUX_URL": ""}, "INFLUX_URL is required"},
		{"bad url", map[string]string{"INFLUX_URL": "ftp://x"}, "INFLUX_URL must be an http(s) URL"},
		{"no org", map[string]string{"INFLUX_ORG": ""}, "INFLUX_ORG is required"},
		{"bad lat", map[string]string{"DEFAULT_LAT": "91"}, "DEFAULT_LAT must be a number"},
		{"bad interval", map[string]string{"MEASUREMENT_INTERVAL": "0"}, "MEASUREMENT_INTERVAL must be an integer"},
		{"bad device auth", map[string]string{"DEVICE_AUTH": "open"}, "DEVICE_AUTH must be key or none"},
		{"bad device writes", map[string]string{"DEVICE_WRITES": "proxy"}, "DEVICE_WRITES must be gateway or direct"},
		{"open env with gateway writes", map[string]string{"DEVICE_AUTH": "none", "DEVICE_WRITES": "gateway"}, "DEVICE_AUTH=none needs DEVICE_WRITES=direct"},
		{"bad public api url", map[string]string{"PUBLIC_API_URL": "api.example.com"}, "PUBLIC_API_URL must be an http(s) URL"},
		{"no token", map[string]string{"INFLUX_TOKEN": ""}, "set INFLUX_TOKEN or INFLUX_TOKEN_PARAMETER"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			for k, v := range tc.set {
				m[k] = v
			}
			_, err := config.Load(context.Background(), env(m), nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Load error = %v, want it to contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "tok-SECRET") {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
}

func TestDeviceWritesMode(t *testing.T) {
	tests := []struct {
		name       string
		set        map[string]string
		wantWrites string
		wantOpen   bool
		wantAPI    string
	}{
		{"default is the gateway", nil, config.WritesGateway, false, ""},
		{"direct", map[string]string{"DEVICE_WRITES": "direct"}, config.WritesDirect, false, ""},
		{"open env implies direct", map[string]string{"DEVICE_AUTH": "none"}, config.WritesDirect, true, ""},
		{"public api url", map[string]string{"PUBLIC_API_URL": "https://api.example.com/"}, config.WritesGateway, false, "https://api.example.com"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			for k, v := range tc.set {
				m[k] = v
			}
			c, err := config.Load(context.Background(), env(m), nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.DeviceWrites != tc.wantWrites || c.OpenEnv != tc.wantOpen || c.PublicAPIURL != tc.wantAPI {
				t.Errorf("got writes %q open %v api %q, want %q %v %q", c.DeviceWrites, c.OpenEnv, c.PublicAPIURL, tc.wantWrites, tc.wantOpen, tc.wantAPI)
			}
			if c.Gateway() != (tc.wantWrites == config.WritesGateway) {
				t.Errorf("Gateway() = %v with writes %q", c.Gateway(), c.DeviceWrites)
			}
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := config.Secret("tok-SECRET")
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "token", s, "cfg", config.Config{Token: s})
	js, _ := json.Marshal(config.Config{Token: s})
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", s), "%s": fmt.Sprintf("%s", s), "%+v struct": fmt.Sprintf("%+v", config.Config{Token: s}),
		"%#v": fmt.Sprintf("%#v", s), "%q": fmt.Sprintf("%q", s), "json": string(js), "slog": logs.String(),
	} {
		if strings.Contains(out, "SECRET") {
			t.Errorf("%s prints the secret: %s", name, out)
		}
	}
	if s.Reveal() != "tok-SECRET" {
		t.Errorf("Reveal = %q", s.Reveal())
	}
}
