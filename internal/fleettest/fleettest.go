// Package fleettest registers fleets for tests and benchmarks: registry records written directly (no InfluxDB
// authorization per device, so 10,000 devices take seconds), and a minute of data per device and minute.
package fleettest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
)

// IDs returns n device ids prefix-00000, prefix-00001, … (sorted as numbered).
func IDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%05d", prefix, i)
	}
	return ids
}

// Register writes a registry record for each id into bucket (records only: the devices have no authorization,
// which the list, plan and coverage paths never read).
func Register(t testing.TB, c *influx.Client, bucket string, ids []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	now := time.Now().UTC()
	var lp []byte
	for i, id := range ids {
		at := now.Add(time.Duration(i) * time.Microsecond)
		lp = append(lp, registry.RecordLine(registry.Device{ID: id, AuthorizationID: fmt.Sprintf("%016x", i+1),
			Token: config.Secret("bench-token-" + id), CreatedAt: at, UpdatedAt: at}, at)...)
		if (i+1)%5000 == 0 || i == len(ids)-1 {
			if err := c.WriteLines(ctx, bucket, lp); err != nil {
				t.Fatalf("writing registry records: %v", err)
			}
			lp = lp[:0]
		}
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
