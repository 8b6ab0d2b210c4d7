package main

import (
	"github.com/iot-center/iot-center-serverless/shared/api"
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/routetest"
)

func mount(t *testing.T) *api.Mux {
	t.Helper()
	h, err := handler()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestRoutesMatchTemplate(t *testing.T) {
	routetest.Check(t, "UiFunction", mount(t))
}

// TestRoles: the dashboard's routes answer every caller (they are public), mounted as main mounts them.
func TestRoles(t *testing.T) {
	routetest.Roles(t, "UiFunction", mount(t), nil)
}
