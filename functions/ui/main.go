// Command ui is the UiFunction: it serves the dashboard's front end, built by `make ui` into dist/ and embedded
// here. It needs no InfluxDB and no secrets (the page's data calls go to the API with the operator key).
package main

import (
	"embed"
	"io/fs"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/wiring"
)

// all: keeps dist/.keep, so a clean clone compiles before the front end is built.
//
//go:embed all:dist
var dist embed.FS

func main() {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		api.Exit("ui: embedded files", err)
	}
	h, err := wiring.UI(sub)
	if err != nil {
		api.Exit("ui: embedded files", err)
	}
	lambdaapp.StartHTTP(h)
}
