package main

import (
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/routetest"
)

func TestRoutesMatchTemplate(t *testing.T) {
	routetest.Check(t, "UiFunction", handler())
}

// TestRoles: the dashboard's routes answer every caller (they are public), mounted as main mounts them.
func TestRoles(t *testing.T) {
	routetest.Roles(t, "UiFunction", handler(), nil)
}
