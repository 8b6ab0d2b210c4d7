package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"

	"github.com/iot-center/iot-center-serverless/internal/npmtest"
	"github.com/iot-center/iot-center-serverless/shared/deviceapi"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// writeWithNPM runs the npm client configured from env (an /api/env answer) and returns its error output.
func writeWithNPM(t *testing.T, env deviceapi.EnvConfig, points int) (string, error) {
	t.Helper()
	js, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	node := exec.CommandContext(ctx, "node", "write.mjs", strconv.Itoa(points))
	node.Dir = npmtest.Install(t, filepath.Join("testdata", "npmclient"), "gateway-npmclient", "write.mjs")
	node.Env = append(os.Environ(), "IOT_ENV="+string(js))
	var stderr strings.Builder
	node.Stderr = &stderr
	out, err := node.Output()
	if err == nil && strings.TrimSpace(string(out)) != strconv.Itoa(points) {
		err = fmt.Errorf("the npm client printed %q, want %d", out, points)
	}
	return stderr.String(), err
}

// writeWithGo writes like the seed's device with influxdb-client-go configured from env: clientId as a default tag,
// 5,000-point batches, gzip, millisecond precision.
func writeWithGo(t *testing.T, env deviceapi.EnvConfig, points int) error {
	t.Helper()
	opts := influxdb2.DefaultOptions().SetBatchSize(5000).SetUseGZip(true).SetPrecision(time.Millisecond).
		SetMaxRetries(0).AddDefaultTag("clientId", env.ID)
	c := influxdb2.NewClientWithOptions(env.InfluxURL, env.InfluxToken, opts)
	defer c.Close()
	w := c.WriteAPI(env.InfluxOrg, env.InfluxBucket)
	errs := w.Errors()
	end := time.Now().Truncate(time.Minute).Add(-time.Minute)
	for i := points - 1; i >= 0; i-- {
		w.WritePoint(influxdb2.NewPoint("environment",
			map[string]string{"TemperatureSensor": "virtual_TemperatureSensor", "GPSSensor": "virtual_GPSSensor"},
			map[string]any{"Temperature": 20 + float64(i%10)/10, "Humidity": 40.5, "Pressure": 1000.5, "CO2": int64(400 + i%100),
				"TVOC": int64(300), "Lat": env.DefaultLat, "Lon": env.DefaultLon},
			end.Add(-time.Duration(i)*time.Minute)))
	}
	w.Flush()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// countOf counts a device's Temperature values in bucket.
func countOf(t *testing.T, c *influx.Client, bucket, device string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int64
	err := c.QueryRows(ctx, `from(bucket: b) |> range(start: 0)
  |> filter(fn: (r) => r._measurement == "environment" and r._field == "Temperature" and r.clientId == id) |> count()`,
		influx.Extern{"b": bucket, "id": device}, func(v map[string]any) error {
			n += v["_value"].(int64)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestClientLibrariesWriteThroughGateway: the npm client and influxdb-client-go, configured from an /api/env answer
// that points at the gateway, write 12,000 points each (5,000-point gzip batches) unchanged.
func TestClientLibrariesWriteThroughGateway(t *testing.T) {
	f := newFixture(t, Options{Rate: -1, PointRate: -1})
	hs := httptest.NewServer(f.h)
	t.Cleanup(hs.Close)
	f.creds.set("cred-go-0123456789abcdef0123456789abcdef", "dev-go")
	env := func(id, cred string) deviceapi.EnvConfig {
		return deviceapi.EnvConfig{InfluxURL: hs.URL, InfluxOrg: f.srv.Org, InfluxToken: cred, InfluxBucket: f.bucket, ID: id,
			DefaultLat: 50.0873254, DefaultLon: 14.4071543, MeasurementInterval: 60}
	}
	const points = 12_000
	if stderr, err := writeWithNPM(t, env(devA, credA), points); err != nil {
		t.Errorf("npm client: %v: %s", err, stderr)
	}
	if err := writeWithGo(t, env("dev-go", "cred-go-0123456789abcdef0123456789abcdef"), points); err != nil {
		t.Errorf("influxdb-client-go: %v", err)
	}
	for _, id := range []string{devA, "dev-go"} {
		if got := countOf(t, f.admin, f.bucket, id); got != points {
			t.Errorf("%s: %d Temperature points in InfluxDB, want %d", id, got, points)
		}
	}
}
