// Command purge is the PurgeFunction: the purge queue's (SQS) event source mapping runs it with a delete's second
// data pass once its delay has passed (registry.PurgeLate: the points a gateway instance still caching the old
// credential wrote after the first pass).
package main

import (
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/wiring"
)

func main() { lambdaapp.Event(wiring.Purge) }
