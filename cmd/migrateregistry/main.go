// Command migrateregistry copies the device registry of a stack deployed before the state table (the InfluxDB
// registry bucket, iot_center_auth by default) into the table, once, before the upgraded functions serve. It is
// safe to run again: devices already in the table are left as they are, so a failed run resumes. It reads the
// bucket with the admin token and writes the table with the AWS credentials of the shell (README: Upgrading).
//
//	INFLUX_URL=https://... INFLUX_ORG=my-org INFLUX_TOKEN=$ADMIN_TOKEN \
//	  go run ./cmd/migrateregistry -table <the stack's StateTable name> [-bucket iot_center_auth] [-dry-run]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

func main() {
	bucket := flag.String("bucket", "iot_center_auth", "the old registry bucket (the stack's InfluxBucketAuth parameter)")
	table := flag.String("table", os.Getenv(store.EnvTable), "the state table's name (the stack's StateTable; default $STATE_TABLE)")
	dryRun := flag.Bool("dry-run", false, "read and report, write nothing")
	flag.Parse()
	url, org, token := os.Getenv("INFLUX_URL"), os.Getenv("INFLUX_ORG"), os.Getenv("INFLUX_TOKEN")
	if url == "" || org == "" || token == "" || *table == "" {
		fail(fmt.Errorf("set INFLUX_URL, INFLUX_ORG, INFLUX_TOKEN (the admin token) and -table"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	cfg, err := awsconfig.LoadDefaultConfig(ctx) // region, credentials, AWS_ENDPOINT_URL_DYNAMODB
	if err != nil {
		fail(err)
	}
	c := influx.New(url, token, org, influx.Options{})
	defer c.Close()
	if _, err := migrate(ctx, c, *bucket, store.New(cfg, *table), *dryRun, os.Stdout); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "migrateregistry:", err)
	os.Exit(1)
}
