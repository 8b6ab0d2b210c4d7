// Command delete is the DeleteFunction: DELETE /api/devices/{deviceId}, revoke and unregister (optionally delete the
// data, and queue the second data pass on the purge queue: see registry.PurgeLate).
package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/deviceapi"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

func main() { lambdaapp.HTTP(handler) }

// handler is the function's routes (wiring_test.go compares them with template.yaml).
func handler(ctx context.Context, d lambdaapp.Deps) (*api.Mux, error) {
	env := d.Env()
	url := env.String("PURGE_QUEUE_URL", "")
	delay := time.Duration(env.Int("PURGE_DELAY_SECONDS", 90, 1, int(registry.MaxPurgeDelay/time.Second))) * time.Second
	reg := d.Registry()
	switch schedule, err := registry.PurgeQueue(ctx, url, delay); {
	case errors.Is(err, registry.ErrNoPurgeQueue):
		api.BaseLogger().Warn("no purge queue: a delete with data makes its first pass only", slog.String("PURGE_QUEUE_URL", url))
	case err != nil:
		return nil, err
	default:
		reg.SchedulePurge, reg.PurgeDelay = schedule, delay
	}
	return deviceapi.NewService(reg).Routes().Only(deviceapi.RouteDelete), nil
}
