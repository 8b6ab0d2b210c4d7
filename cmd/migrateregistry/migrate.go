package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// oldRecords reads the registry bucket as the InfluxDB-backed registry stored it: measurement deviceauth, tags
// deviceId and authId, string fields authId, token, credHash, createdAt, updatedAt, one series per authorization.
// A device's record is its newest point (every point carries all fields), as that registry read it. A deleted
// device had its points deleted, so it has no record.
const oldRecords = `from(bucket: registryBucket)
  |> range(start: 0)
  |> filter(fn: (r) => r._measurement == "deviceauth")
  |> group(columns: ["deviceId", "_field"])
  |> sort(columns: ["_time"])
  |> last()
  |> keep(columns: ["deviceId", "_field", "_value"])`

// readOld returns the old registry's devices, sorted by id. Records with an invalid id or without a credential
// are skipped (reported through skipped).
func readOld(ctx context.Context, c *influx.Client, bucket string) (devs []registry.Device, skipped []string, err error) {
	byID := map[string]*registry.Device{}
	err = c.QueryRows(ctx, oldRecords, influx.Extern{"registryBucket": bucket}, func(v map[string]any) error {
		id, _ := v["deviceId"].(string)
		field, _ := v["_field"].(string)
		val, _ := v["_value"].(string)
		d := byID[id]
		if d == nil {
			d = &registry.Device{ID: id, Generation: 1}
			byID[id] = d
		}
		switch field {
		case "authId":
			d.AuthorizationID = val
		case "token":
			d.Token = config.Secret(val)
		case "credHash":
			d.CredentialHash = val
		case "createdAt":
			d.CreatedAt, _ = time.Parse(time.RFC3339Nano, val)
		case "updatedAt":
			d.UpdatedAt, _ = time.Parse(time.RFC3339Nano, val)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for id, d := range byID {
		if !api.ValidDeviceID(id) || d.AuthorizationID == "" || (d.Token.Empty() && d.CredentialHash == "") {
			skipped = append(skipped, id)
			continue
		}
		if d.CredentialHash != "" {
			d.Token = "" // gateway mode stored no credential
		}
		devs = append(devs, *d)
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i].ID < devs[j].ID })
	sort.Strings(skipped)
	return devs, skipped, nil
}

// counts is what a migration did.
type counts struct{ Read, Copied, Present, Skipped int }

// migrate copies every old record into the table with a conditional put (attribute_not_exists): a device already
// in the table (copied by an earlier run, or registered since) is left as it is, so a rerun resumes where a failed
// one stopped. It then sets the device counter to the number of device items, so the cap counts the copied devices.
func migrate(ctx context.Context, c *influx.Client, bucket string, t *store.Table, dryRun bool, log io.Writer) (counts, error) {
	devs, skipped, err := readOld(ctx, c, bucket)
	if err != nil {
		return counts{}, fmt.Errorf("reading the registry bucket %s: %w", bucket, err)
	}
	n := counts{Read: len(devs) + len(skipped), Skipped: len(skipped)}
	for _, id := range skipped {
		fmt.Fprintf(log, "skipped %q: no valid id or no credential in its record\n", id)
	}
	if dryRun {
		fmt.Fprintf(log, "dry run: %d devices would be copied\n", len(devs))
		return n, nil
	}
	for _, d := range devs {
		_, err := t.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: &t.Name, Item: registry.Item(d),
			ConditionExpression: aws.String("attribute_not_exists(pk)")})
		switch err = store.Classify(err); {
		case err == nil:
			n.Copied++
		case store.IsConditionFailed(err) != nil:
			n.Present++
		default:
			return n, fmt.Errorf("copying %s (rerun to resume): %w", d.ID, err)
		}
	}
	reg := registry.New(nil, config.Config{DeviceWrites: config.WritesGateway}, t)
	all, err := reg.List(ctx)
	if err != nil {
		return n, fmt.Errorf("counting the devices (rerun to resume): %w", err)
	}
	if _, err := t.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &t.Name, Key: store.Key("COUNTER", "DEVICES"),
		UpdateExpression:          aws.String("SET n = :n"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": store.N(int64(len(all)))}}); err != nil {
		return n, fmt.Errorf("setting the device counter (rerun to resume): %w", store.Classify(err))
	}
	fmt.Fprintf(log, "%d records read: %d copied, %d already in the table, %d skipped; the table holds %d devices\n",
		n.Read, n.Copied, n.Present, n.Skipped, len(all))
	return n, nil
}
