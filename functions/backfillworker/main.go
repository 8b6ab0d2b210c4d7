// Command backfillworker is the BackfillWorkerFunction: the chunk queue's (SQS) event source mapping runs it, one
// task at a time, at most ScalingConfig.MaximumConcurrency at once. It plans jobs and writes chunks of generated
// points; a task that keeps failing ends on the dead-letter queue (the redrive policy).
package main

import (
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/wiring"
)

func main() { lambdaapp.Event(wiring.BackfillWorker) }
