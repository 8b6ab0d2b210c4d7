package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/localapitest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

// TestFirstRegistrationRaceThroughLocalAPI: 50 simultaneous first GET /api/env/{id} through the local API (the
// template's routes and authorizer, EnvConfigFunction in a pool of 4 emulator processes) end with exactly one
// authorization, and every caller holds its token. Direct mode: an operator reads a device's InfluxDB token again,
// while a gateway credential exists only as a hash (TestProvisioningRace covers gateway mode).
func TestFirstRegistrationRaceThroughLocalAPI(t *testing.T) {
	srv := influxtest.Shared(t)
	l := localapitest.Start(t, srv, localapitest.Options{PoolFor: "EnvConfigFunction=4", Params: "DeviceWrites=direct"})
	admin := srv.Client(t)
	id := "lapi-" + influxtest.RandomID(4)
	revokeAtEnd(t, srv, id)
	const n = 50
	res := make([]lapiAnswer, n)
	testenv.Together(n, func(i int) { res[i] = lapiCall(t, l, "GET", "/api/env/"+id, l.OperatorKey) })
	tokens, newly := map[string]int{}, 0
	for i, r := range res {
		if r.code != http.StatusOK || r.cfg.InfluxToken == "" {
			t.Errorf("caller %d: got %d, want 200 with a token", i, r.code)
			continue
		}
		tokens[r.cfg.InfluxToken]++
		if r.cfg.NewlyRegistered {
			newly++
		}
	}
	as, err := admin.FindAuthorizations(context.Background(), registry.Description(id))
	if err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 1 || newly != 1 || len(as) != 1 {
		t.Errorf("distinct tokens %d, newlyRegistered %d, live authorizations %d; want 1, 1, 1", len(tokens), newly, len(as))
	}
}
