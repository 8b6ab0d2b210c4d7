// Command register is the RegisterFunction: explicit device registration (one id or up to 1,000 at once) and
// token rotation.
package main

import (
	"github.com/iot-center/iot-center-serverless/shared/lambdaapp"
	"github.com/iot-center/iot-center-serverless/shared/wiring"
)

func main() { lambdaapp.HTTP(wiring.Register) }
