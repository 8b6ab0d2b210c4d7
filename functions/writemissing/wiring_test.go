package main

import (
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/routetest"
)

func TestRoutesMatchTemplate(t *testing.T) {
	env := map[string]string{"CHUNK_QUEUE_URL": "http://127.0.0.1:1/123456789012/ChunkQueue", "AWS_REGION": "us-east-1",
		"STATE_TABLE": "state"}
	routetest.Check(t, "WriteMissingFunction", handler(routetest.Deps(env)))
}
