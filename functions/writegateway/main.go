// Command writegateway is the WriteGatewayFunction: POST /api/v2/write, InfluxDB's write API for devices, checked
// against the schema and written with the gateway's own token (see shared/gateway).
package main

import (
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/wiring"
)

func main() { lambdaapp.HTTP(wiring.WriteGateway) }
