// Command fleethealth is the FleetHealthFunction: on a schedule (EventBridge) it counts the registered devices by
// status (online, late, silent) and emits them as CloudWatch EMF metrics; the SilentDevices alarm watches them.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/iot-center/iot-center-serverless/shared/fleet"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/metrics"
)

func main() {
	d := lambdaapp.Init()
	svc := fleet.NewService(d.Registry(), d.Influx, d.Config)
	svc.Metrics = metrics.Stdout
	lambda.Start(func(ctx context.Context, _ events.CloudWatchEvent) (fleet.Counts, error) {
		return svc.Check(ctx)
	})
}
