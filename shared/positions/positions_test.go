package positions_test

import (
	"context"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/iot-center/iot-center-serverless/internal/overviewtest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/positions"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0).UTC()
	devs := overviewtest.Devices(1000, now)
	devs[3].Lat, devs[3].Lon = math.NaN(), math.NaN()
	b, err := positions.Encode(positions.Snapshot{UpdatedAt: now, Devices: devs})
	if err != nil {
		t.Fatal(err)
	}
	z, err := positions.Gunzip(positions.Gzip(b))
	if err != nil {
		t.Fatal(err)
	}
	got, err := positions.Decode(z)
	if err != nil {
		t.Fatal(err)
	}
	if !got.UpdatedAt.Equal(now) || len(got.Devices) != len(devs) {
		t.Fatalf("decoded %v with %d devices, want %v with %d", got.UpdatedAt, len(got.Devices), now, len(devs))
	}
	for i, d := range got.Devices {
		w := devs[i]
		if d.ID != w.ID || d.Status != w.Status || !d.LastSeen.Equal(w.LastSeen.Truncate(time.Second)) ||
			!near(d.Lat, w.Lat) || !near(d.Lon, w.Lon) {
			t.Fatalf("device %d = %+v, want %+v", i, d, w)
		}
	}
}

func near(a, b float64) bool {
	if math.IsNaN(b) {
		return math.IsNaN(a)
	}
	return math.Abs(a-b) < 1e-4
}

// Decode refuses what is not a whole snapshot: damaged bytes never decode to a wrong fleet or a huge allocation.
func TestDecodeRefusesDamaged(t *testing.T) {
	good, err := positions.Encode(positions.Snapshot{Devices: []positions.Device{{ID: "a"}, {ID: "bb"}}})
	if err != nil {
		t.Fatal(err)
	}
	huge := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(huge[4:], math.MaxUint32)
	zeroID := append([]byte(nil), good...)
	zeroID[len(good)-3] = 0
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"bad magic", append([]byte("POS2"), good[4:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing bytes", append(append([]byte(nil), good...), 'x')},
		{"huge count", huge},
		{"zero-length id", zeroID},
	} {
		if _, err := positions.Decode(tc.b); err == nil {
			t.Errorf("%s: decoded without error", tc.name)
		}
	}
	if _, err := positions.Encode(positions.Snapshot{Devices: []positions.Device{{ID: ""}}}); err == nil {
		t.Error("Encode accepted an empty id")
	}
}

// A snapshot of several parts reads back whole; a smaller one written after it hides the leftover parts.
func TestWriteReadParts(t *testing.T) {
	d := testenv.StartDynamo(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	if s, err := positions.Read(ctx, d.Table); err != nil || len(s.Devices) != 0 || !s.UpdatedAt.IsZero() {
		t.Fatalf("empty table: %d devices at %v, %v; want none", len(s.Devices), s.UpdatedAt, err)
	}
	for _, n := range []int{2*positions.PartDevices + 7, 5} {
		devs := overviewtest.Devices(n, now)
		if err := positions.Write(ctx, d.Table, positions.Snapshot{UpdatedAt: now, Devices: devs}); err != nil {
			t.Fatal(err)
		}
		got, err := positions.Read(ctx, d.Table)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Devices) != n || got.Devices[n-1].ID != devs[n-1].ID || !got.UpdatedAt.Equal(now) {
			t.Fatalf("read %d devices (last %q) at %v, want %d (last %q) at %v", len(got.Devices),
				got.Devices[len(got.Devices)-1].ID, got.UpdatedAt, n, devs[n-1].ID, now)
		}
	}
	// META naming a part that is not there is an error, not a silently smaller fleet
	if _, err := d.Table.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &d.Table.Name,
		Key: store.Key(positions.PK, positions.PartSK(0))}); err != nil {
		t.Fatal(err)
	}
	if _, err := positions.Read(ctx, d.Table); err == nil {
		t.Error("Read with a missing part: no error")
	}
}
