// Command fleethealth is the FleetHealthFunction: on a schedule (EventBridge) it keeps the devices' status, lastSeen
// and position in the state table (writing only what changed), the counts per status and the positions snapshot,
// and writes the counts to InfluxDB (measurement fleet) and as CloudWatch EMF metrics (the SilentDevices alarm).
package main

import (
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/wiring"
)

func main() { lambdaapp.Event(wiring.FleetHealth) }
