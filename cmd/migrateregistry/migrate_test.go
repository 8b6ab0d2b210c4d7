package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

func TestMain(m *testing.M) { os.Exit(influxtest.Main(m)) }

// oldLine is a record point as the InfluxDB-backed registry wrote it.
func oldLine(id, authID, token, hash string, created, at time.Time) string {
	q := func(s string) string { return `"` + s + `"` }
	return fmt.Sprintf("deviceauth,authId=%s,deviceId=%s authId=%s,token=%s,credHash=%s,createdAt=%s,updatedAt=%s %d\n",
		authID, id, q(authID), q(token), q(hash), q(created.Format(time.RFC3339Nano)), q(at.Format(time.RFC3339Nano)), at.UnixNano())
}

// A stack's registry bucket copied into the table: each device's newest record, gateway hashes and direct tokens
// that still authenticate, a device registered in the table meanwhile left alone, a record without a credential
// skipped, the counter set; a second run copies nothing and changes nothing.
func TestMigrateCopiesOnceAndResumes(t *testing.T) {
	srv := influxtest.Shared(t)
	admin := srv.Client(t)
	bucket := srv.NewBucket(t, "oldreg")
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cred := registry.CredentialPrefix + "gw-1_" + strings.Repeat("ab", 32)
	sum := sha256.Sum256([]byte(cred))
	lp := oldLine("direct-1", "a1", "old-token", "", t0, t0) + // rotated: the newer series wins
		oldLine("direct-1", "a2", "new-token", "", t0, t0.Add(time.Hour)) +
		oldLine("gw-1", "t1", "", hex.EncodeToString(sum[:]), t0, t0) +
		oldLine("taken", "t2", "tok-old", "", t0, t0) +
		oldLine("nocred", "t3", "", "", t0, t0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := admin.WriteLines(ctx, bucket, []byte(lp)); err != nil {
		t.Fatal(err)
	}
	table := influxtest.StateTable(t)
	gw := registry.New(nil, config.Config{DeviceWrites: config.WritesGateway, MaxDevices: 10}, table)
	direct := registry.New(nil, config.Config{DeviceWrites: config.WritesDirect, MaxDevices: 10}, table)
	// registered in the table after the upgrade started: the migration must not overwrite it
	if _, _, err := gw.Register(ctx, "taken"); err != nil {
		t.Fatal(err)
	}
	before, _ := gw.Get(ctx, "taken")

	got, err := migrate(ctx, admin, bucket, table, false, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := (counts{Read: 4, Copied: 2, Present: 1, Skipped: 1}); got != want {
		t.Errorf("first run: %+v, want %+v", got, want)
	}
	d, err := direct.Verify(ctx, "direct-1", "new-token")
	if err != nil || d.AuthorizationID != "a2" || !d.UpdatedAt.Equal(t0.Add(time.Hour)) || !d.CreatedAt.Equal(t0) {
		t.Errorf("direct-1: %+v %v, want the newer record (a2) verifying its token", d, err)
	}
	if _, err := direct.Verify(ctx, "direct-1", "old-token"); !api.IsCode(err, api.Unauthorized) {
		t.Errorf("direct-1 with the rotated-out token: %v, want unauthorized", err)
	}
	if d, err := gw.Authenticate(ctx, cred); err != nil || d.ID != "gw-1" {
		t.Errorf("gw-1's credential after the migration: %+v %v", d, err)
	}
	if after, _ := gw.Get(ctx, "taken"); after.AuthorizationID != before.AuthorizationID || after.CredentialHash != before.CredentialHash {
		t.Errorf("taken: overwritten by the migration")
	}
	if _, err := gw.Get(ctx, "nocred"); !api.IsCode(err, api.NotFound) {
		t.Errorf("nocred: %v, want not found", err)
	}
	if n, err := gw.Count(ctx); err != nil || n != 3 {
		t.Errorf("device counter %d (%v), want 3", n, err)
	}

	again, err := migrate(ctx, admin, bucket, table, false, io.Discard)
	if want := (counts{Read: 4, Present: 3, Skipped: 1}); err != nil || again != want {
		t.Errorf("second run: %+v %v, want %+v", again, err, want)
	}
	if n, _ := gw.Count(ctx); n != 3 {
		t.Errorf("device counter after a rerun: %d, want 3", n)
	}
	if d, err := direct.Get(ctx, "direct-1"); err != nil || d.Generation != 1 {
		t.Errorf("direct-1 after a rerun: generation %d %v, want 1", d.Generation, err)
	}
}

// A dry run writes nothing.
func TestMigrateDryRun(t *testing.T) {
	srv := influxtest.Shared(t)
	admin := srv.Client(t)
	bucket := srv.NewBucket(t, "oldreg")
	t0 := time.Now().UTC()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := admin.WriteLines(ctx, bucket, []byte(oldLine("d1", "a1", "tok", "", t0, t0))); err != nil {
		t.Fatal(err)
	}
	table := influxtest.StateTable(t)
	if n, err := migrate(ctx, admin, bucket, table, true, io.Discard); err != nil || n.Read != 1 || n.Copied != 0 {
		t.Fatalf("dry run: %+v %v", n, err)
	}
	if it, err := table.Get(ctx, registry.Key("d1"), true); err != nil || it != nil {
		t.Errorf("dry run wrote %v (%v)", it, err)
	}
}
