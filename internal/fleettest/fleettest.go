// Package fleettest registers fleets for tests and benchmarks: device items written directly (no InfluxDB
// authorization per device, so 10,000 devices take seconds), and a minute of data per device and minute.
package fleettest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// IDs returns n device ids prefix-00000, prefix-00001, … (sorted as numbered).
func IDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%05d", prefix, i)
	}
	return ids
}

// Register writes a device item for each id into the state table (items only: the devices have no InfluxDB
// authorization, which the list, plan and coverage paths never read), in BatchWriteItem batches.
func Register(t testing.TB, table *store.Table, ids []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	now := time.Now().UTC()
	var batch []types.WriteRequest
	for i, id := range ids {
		at := now.Add(time.Duration(i) * time.Microsecond)
		it := registry.Item(registry.Device{ID: id, AuthorizationID: fmt.Sprintf("%016x", i+1),
			Token: config.Secret("bench-token-" + id), CreatedAt: at, UpdatedAt: at, Generation: 1})
		batch = append(batch, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
		if len(batch) == 25 || i == len(ids)-1 {
			req := map[string][]types.WriteRequest{table.Name: batch}
			for attempt := 0; len(req) > 0; attempt++ {
				if attempt == 20 {
					t.Fatalf("writing device items: still unprocessed after %d attempts", attempt)
				}
				out, err := table.DB.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: req})
				if err != nil {
					t.Fatalf("writing device items: %v", err)
				}
				req = out.UnprocessedItems
			}
			batch = nil
		}
	}
	if _, err := table.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &table.Name, Key: store.Key("COUNTER", "DEVICES"),
		UpdateExpression: aws.String("ADD n :n"), ExpressionAttributeValues: map[string]types.AttributeValue{":n": store.N(int64(len(ids)))}}); err != nil {
		t.Fatalf("counting the devices: %v", err)
	}
}

// WriteMinutes writes each device's generated points for the Unix minutes [from, to), in batches.
func WriteMinutes(t testing.TB, c *influx.Client, bucket string, gen sensors.Generator, ids []string, from, to int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var lp []byte
	lines := 0
	flush := func() {
		if err := c.WriteLines(ctx, bucket, lp); err != nil {
			t.Fatalf("writing points: %v", err)
		}
		lp, lines = lp[:0], 0
	}
	for _, id := range ids {
		line := sensors.NewLine(gen, id)
		for m := from; m < to; m++ {
			lp = line.Append(lp, m*60_000)
			if lines++; lines == 5000 {
				flush()
			}
		}
	}
	if lines > 0 {
		flush()
	}
}
