// Package overviewtest seeds a fleet for the overview's tests, benchmark and browser test: a positions snapshot of
// n devices spread over six continents (virtual devices all report one default position) and a day of fleet
// counts in measurement `fleet`, as the fleet-health run writes them.
package overviewtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/positions"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// box is a lat/lon rectangle mostly on land.
type box struct{ lat0, lat1, lon0, lon1 float64 }

// Continents the seeded devices are spread over (Europe, North America, South America, Africa, Asia, Australia).
var continents = []box{
	{42, 55, -2, 28}, {32, 47, -118, -78}, {-30, -5, -68, -42}, {-25, 8, 15, 35}, {22, 40, 78, 118}, {-34, -22, 117, 148},
}

// ID is the id of seeded device i.
func ID(i int) string { return fmt.Sprintf("ov-%06d", i) }

// Devices is a deterministic fleet of n devices at now: about 85% online, 5% late, 10% silent (a tenth of
// those never seen), each at a position on one of the continents.
func Devices(n int, now time.Time) []positions.Device {
	r := rand.New(rand.NewPCG(uint64(n), 25))
	out := make([]positions.Device, n)
	for i := range out {
		b := continents[i%len(continents)]
		d := positions.Device{ID: ID(i), Lat: b.lat0 + r.Float64()*(b.lat1-b.lat0), Lon: b.lon0 + r.Float64()*(b.lon1-b.lon0)}
		switch x := r.IntN(100); {
		case x < 85:
			d.Status, d.LastSeen = positions.Online, now.Add(-time.Duration(r.IntN(60))*time.Second)
		case x < 90:
			d.Status, d.LastSeen = positions.Late, now.Add(-time.Duration(3+r.IntN(6))*time.Minute)
		case x == 99:
			d.Status = positions.Silent
		default:
			d.Status, d.LastSeen = positions.Silent, now.Add(-time.Duration(15+r.IntN(60*24*20))*time.Minute)
		}
		out[i] = d
	}
	return out
}

// Tally counts devs by status.
func Tally(devs []positions.Device) (online, late, silent int) {
	for _, d := range devs {
		switch d.Status {
		case positions.Online:
			online++
		case positions.Late:
			late++
		default:
			silent++
		}
	}
	return online, late, silent
}

// Counts writes a point of measurement fleet every 5 minutes over the day before now, the last one matching devs.
func Counts(ctx context.Context, c *influx.Client, bucket string, devs []positions.Device, now time.Time) error {
	online, late, silent := Tally(devs)
	var b strings.Builder
	for k := 288; k >= 0; k-- {
		t := now.Add(-time.Duration(k) * 5 * time.Minute)
		dip := k % 96 // a dip every 8 hours, so the plot has a shape
		on, sl := online, silent
		if dip >= 40 && dip < 46 {
			on, sl = online-online/10, silent+online/10
		}
		fmt.Fprintf(&b, "fleet online=%di,late=%di,silent=%di,registered=%di,pointsPerMinute=%g %d\n",
			on, late, sl, len(devs), float64(on)*1.0, t.UnixNano())
	}
	return c.WriteLines(ctx, bucket, []byte(b.String()))
}

// Seed writes n devices' snapshot to t and their counts to bucket.
func Seed(ctx context.Context, t *store.Table, c *influx.Client, bucket string, n int, now time.Time) ([]positions.Device, error) {
	devs := Devices(n, now)
	if err := positions.Write(ctx, t, positions.Snapshot{UpdatedAt: now, Devices: devs}); err != nil {
		return nil, err
	}
	if c != nil {
		if err := Counts(ctx, c, bucket, devs, now); err != nil {
			return nil, err
		}
	}
	return devs, nil
}
