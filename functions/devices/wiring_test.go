package main

import (
	"os"
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/routetest"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

func TestRoutesMatchTemplate(t *testing.T) {
	routetest.Check(t, "DevicesFunction", routetest.Mount(t, handler, routetest.Deps(nil)))
}

// TestRoles: every route answers every caller as routetest.Access says, mounted as main mounts it.
func TestRoles(t *testing.T) {
	d := routetest.Live(t, nil)
	routetest.Roles(t, "DevicesFunction", routetest.Mount(t, handler, d), &d)
}
