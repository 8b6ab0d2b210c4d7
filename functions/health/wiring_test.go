package main

import (
	"os"
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/routetest"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

func TestRoutesMatchTemplate(t *testing.T) {
	env := map[string]string{"INFLUX_URL": "http://127.0.0.1:8086"}
	routetest.Check(t, "HealthFunction", handler(func(k string) string { return env[k] }))
}

// TestRoles: the health route answers every caller (it is public), mounted as main mounts it.
func TestRoles(t *testing.T) {
	env := map[string]string{"INFLUX_URL": influxtest.Shared(t).URL}
	routetest.Roles(t, "HealthFunction", handler(func(k string) string { return env[k] }), nil)
}
