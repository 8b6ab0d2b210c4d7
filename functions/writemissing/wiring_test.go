package main

import (
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/routetest"
)

func TestRoutesMatchTemplate(t *testing.T) {
	env := map[string]string{"WORKER_FUNCTION": "BackfillWorkerFunction", "AWS_REGION": "us-east-1"}
	routetest.Check(t, "WriteMissingFunction", handler(routetest.Deps(env)))
}
