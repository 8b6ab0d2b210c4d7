// Command authorizer is the HTTP API Lambda authorizer (payload 2.0, simple responses): operator key, provisioning
// key and device tokens, checked against the device registry (see shared/authz).
package main

import (
	"context"

	"github.com/iot-center/iot-center-serverless/shared/authz"
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
)

func main() { lambdaapp.Event(handler) }

func handler(ctx context.Context, d lambdaapp.Deps) (any, error) {
	keys, err := authz.LoadKeys(ctx, d.Getenv, nil)
	if err != nil {
		return nil, err
	}
	return authz.New(keys, d.Registry()).Handle, nil
}
