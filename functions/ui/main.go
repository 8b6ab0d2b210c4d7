// Command ui is the UiFunction: it serves the dashboard's front end, built by `make ui` into dist/ and embedded
// here. It needs no InfluxDB and no secrets (the page's data calls go to the API with the operator key).
package main

import (
	"embed"
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

func main() { lambdaapp.StartHTTP(handler()) }

// handler is the function's routes over the embedded files (wiring_test.go compares them with template.yaml).
func handler() *ui.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		api.Exit("ui: embedded files", err)
	}
	h, err := ui.New(sub)
	if err != nil {
		api.Exit("ui: preparing files", err)
	}
	api.BaseLogger().Info("ui ready", slog.Int("assets", len(h.Assets())))
	return h
}
