// Command purge is the PurgeFunction: the purge queue's (SQS) event source mapping runs it with a delete's second
// data pass once its delay has passed (registry.PurgeLate: the points a gateway instance still caching the old
// credential wrote after the first pass).
package main

import (
	"context"

	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
)

func main() {
	lambdaapp.Event(func(_ context.Context, d lambdaapp.Deps) (any, error) { return d.Registry().HandlePurge, nil })
}
