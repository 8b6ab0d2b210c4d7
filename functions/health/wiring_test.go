package main

import (
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/routetest"
)

func TestRoutesMatchTemplate(t *testing.T) {
	env := map[string]string{"INFLUX_URL": "http://127.0.0.1:8086"}
	routetest.Check(t, "HealthFunction", handler(func(k string) string { return env[k] }))
}
