// Command setup is the CloudFormation custom resource (InfluxSetup in template.yaml) that prepares InfluxDB on
// every deploy: buckets, the hourly downsampling task and the dashboard.
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/iot-center/iot-center-serverless/shared/setup"
)

func main() {
	lambda.Start(setup.NewCustomResource(setup.EnvLoader(os.Getenv, nil)).Handle)
}
