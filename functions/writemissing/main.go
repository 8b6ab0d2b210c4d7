// Command writemissing is the WriteMissingFunction: it records write-missing jobs and queues their plan task on
// the chunk queue (SQS), reports jobs, and reports coverage.
package main

import (
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/wiring"
)

func main() { lambdaapp.HTTP(wiring.WriteMissing) }
