package main

import (
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/routetest"
)

func TestRoutesMatchTemplate(t *testing.T) {
	routetest.Check(t, "EnvConfigFunction", routetest.Mount(t, handler, routetest.Deps(nil)))
}

// TestRoles: every route answers every caller as routetest.Access says, mounted as main mounts it.
func TestRoles(t *testing.T) {
	d := routetest.Live(t, nil)
	routetest.Roles(t, "EnvConfigFunction", routetest.Mount(t, handler, d), &d)
}
