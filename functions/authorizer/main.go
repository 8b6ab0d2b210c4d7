// Command authorizer is the HTTP API Lambda authorizer (payload 2.0, simple responses): operator key, provisioning
// key and device tokens, checked against the device registry (see shared/authz).
package main

import (
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/wiring"
)

func main() { lambdaapp.Event(wiring.Authorizer) }
