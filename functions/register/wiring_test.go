package main

import (
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/routetest"
)

func TestRoutesMatchTemplate(t *testing.T) {
	routetest.Check(t, "RegisterFunction", routetest.Mount(t, handler, routetest.Deps(nil)))
}
