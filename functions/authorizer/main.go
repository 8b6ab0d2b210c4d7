// Command authorizer is the HTTP API Lambda authorizer (payload 2.0, simple responses): operator key, provisioning
// key and device tokens, checked against the device registry (see shared/authz).
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/authz"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
)

func main() {
	d := lambdaapp.Init()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	keys, err := authz.LoadKeys(ctx, os.Getenv, nil)
	cancel()
	if err != nil {
		api.Exit("invalid authorizer configuration", err)
	}
	lambda.Start(authz.New(keys, d.Registry()).Handle)
}
