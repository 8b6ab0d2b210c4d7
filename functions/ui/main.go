// Command ui is the UiFunction: it serves the dashboard's front end, built by `make ui` into dist/ and embedded
// here. It needs no InfluxDB and no secrets (the page's data calls go to the API with the operator key).
package main

import (
	"embed"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/ui"
)

// all: keeps dist/.keep, so a clean clone compiles before the front end is built.
//
//go:embed all:dist
var dist embed.FS

func main() {
	h, err := handler()
	if err != nil {
		api.Exit("ui: preparing files", err)
	}
	lambdaapp.StartHTTP(h)
}

// handler is the function's routes over the embedded files (wiring_test.go compares them with template.yaml).
func handler() (*api.Mux, error) {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		return nil, fmt.Errorf("embedded files: %w", err)
	}
	s, err := ui.NewService(sub)
	if err != nil {
		return nil, err
	}
	api.BaseLogger().Info("ui ready", slog.Int("assets", len(s.Assets())))
	return s.Routes(), nil
}
