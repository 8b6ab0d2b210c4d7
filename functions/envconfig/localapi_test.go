package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

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
	t.Cleanup(func() {
		as, _ := admin.FindAuthorizations(context.Background(), registry.Description(id))
		for _, a := range as {
			_ = admin.DeleteAuthorization(context.Background(), a.ID)
		}
	})
	const n = 50
	type result struct {
		status int
		cfg    registry.EnvConfig
	}
	res := make([]result, n)
	client := &http.Client{Timeout: 2 * time.Minute}
	testenv.Together(n, func(i int) {
		req, _ := http.NewRequest("GET", l.URL+"/api/env/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+l.OperatorKey)
		resp, err := client.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		res[i].status = resp.StatusCode
		_ = json.Unmarshal(b, &res[i].cfg)
	})
	tokens, newly := map[string]int{}, 0
	for i, r := range res {
		if r.status != http.StatusOK || r.cfg.InfluxToken == "" {
			t.Errorf("caller %d: got %d, want 200 with a token", i, r.status)
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
