// Command fleethealth is the FleetHealthFunction: on a schedule (EventBridge) it keeps the devices' status, lastSeen
// and position in the state table (writing only what changed), the counts per status and the positions snapshot,
// and writes the counts to InfluxDB (measurement fleet) and as CloudWatch EMF metrics (the SilentDevices alarm).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/iot-center/iot-center-serverless/shared/fleet"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/metrics"
)

func main() { lambdaapp.Event(handler) }

func handler(_ context.Context, d lambdaapp.Deps) (any, error) {
	svc := fleet.NewService(d.Table(), d.Influx, d.Config)
	svc.Metrics = metrics.Stdout
	return func(ctx context.Context, _ events.CloudWatchEvent) (fleet.Counts, error) { return svc.Check(ctx) }, nil
}
