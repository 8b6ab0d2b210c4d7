package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/localapitest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/deviceapi"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

type lapiAnswer struct {
	code int
	body string
	cfg  deviceapi.EnvConfig
}

// lapiCall sends a request to the local API; a failure to send is reported (t.Errorf: it runs on racing
// goroutines) as code 0.
func lapiCall(t *testing.T, l *localapitest.API, method, path, key string) lapiAnswer {
	t.Helper()
	ans, err := l.Send(method, path, key, "")
	if err != nil {
		t.Error(err)
		return lapiAnswer{}
	}
	a := lapiAnswer{code: ans.Status, body: string(ans.Body)}
	_ = json.Unmarshal(ans.Body, &a.cfg)
	return a
}

func revokeAtEnd(t *testing.T, srv *influxtest.Server, ids ...string) {
	for _, id := range ids {
		srv.RevokeAtCleanup(t, registry.Description(id))
	}
}

// The control plane through the local API (`make run`: the template's routes, the real authorizer and function
// bootstraps under the emulator): 3 ids × 20 racing provisioning calls give exactly one credential per id and no
// 5xx; a key in the URL is refused; with the state table's endpoint stopped, list, env and delete answer 503 JSON
// with Retry-After and nothing is created or revoked in InfluxDB.
func TestControlPlaneThroughLocalAPI(t *testing.T) {
	srv := influxtest.Shared(t)
	l := localapitest.Start(t, srv, localapitest.Options{PoolFor: "EnvConfigFunction=3,AuthorizerFunction=3"})
	admin := srv.Client(t)

	ids := []string{"lrace0-" + influxtest.RandomID(3), "lrace1-" + influxtest.RandomID(3), "lrace2-" + influxtest.RandomID(3)}
	revokeAtEnd(t, srv, ids...)
	const perID = 20
	res := make([]lapiAnswer, len(ids)*perID)
	took := testenv.Together(len(res), func(i int) {
		res[i] = lapiCall(t, l, "GET", "/api/env/"+ids[i%len(ids)], l.DeviceKey)
	})
	codes := map[int]int{}
	for i, id := range ids {
		tokens := 0
		for j := i; j < len(res); j += len(ids) {
			a := res[j]
			codes[a.code]++
			switch {
			case a.code == http.StatusOK && a.cfg.InfluxToken != "":
				tokens++
			case a.code == http.StatusForbidden && !strings.Contains(a.body, "influx_token"):
			default:
				t.Errorf("%s: got %d %.200s, want 200 with a credential or 403 without", id, a.code, a.body)
			}
		}
		as, err := admin.FindAuthorizations(context.Background(), registry.Description(id))
		if err != nil {
			t.Fatal(err)
		}
		// gateway mode (the template's default): the credential is no InfluxDB authorization
		if tokens != 1 || len(as) != 0 {
			t.Errorf("%s: %d callers got a credential, %d authorizations; want 1 and 0", id, tokens, len(as))
		}
	}
	t.Logf("local API: %d ids × %d provisioning calls: answers %v in %s", len(ids), perID, codes, took.Round(time.Millisecond))

	// keys only in the Authorization header
	qid := "lq-" + influxtest.RandomID(3)
	revokeAtEnd(t, srv, qid)
	for _, path := range []string{"/api/env/" + qid + "?key=" + l.DeviceKey, "/api/devices?key=" + l.OperatorKey} {
		if a := lapiCall(t, l, "GET", path, ""); a.code != http.StatusBadRequest || !strings.Contains(a.body, "Authorization header") {
			t.Errorf("GET %s: got %d %s, want 400 naming the Authorization header", path, a.code, a.body)
		}
	}
	if as, _ := admin.FindAuthorizations(context.Background(), registry.Description(qid)); len(as) != 0 {
		t.Errorf("?key= registered the device: %d authorizations", len(as))
	}

	// the state table's endpoint stopped: 503 with Retry-After, nothing registered or revoked
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before, err := admin.ListAuthorizations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l.Dynamo.Stop()
	fresh := "lfc-" + influxtest.RandomID(3)
	revokeAtEnd(t, srv, fresh)
	for _, c := range []struct{ method, path, key string }{
		{"GET", "/api/devices", l.OperatorKey},
		{"GET", "/api/env/" + ids[0], l.OperatorKey},
		{"GET", "/api/env/" + fresh, l.DeviceKey},
		{"GET", "/api/env/" + fresh, l.OperatorKey},
		{"DELETE", "/api/devices/" + ids[1], l.OperatorKey},
	} {
		ans, err := l.Send(c.method, c.path, c.key, "")
		if err != nil {
			t.Fatal(err)
		}
		if ans.Status != http.StatusServiceUnavailable || ans.Header.Get("Retry-After") == "" || !json.Valid(ans.Body) ||
			strings.Contains(string(ans.Body), "influx_token") {
			t.Errorf("%s %s with the store stopped: got %d %s, want 503 JSON with Retry-After", c.method, c.path, ans.Status, ans.Body)
		}
	}
	after, err := admin.ListAuthorizations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("authorizations: %d before, %d after the store stopped; want nothing revoked or created", len(before), len(after))
	}
}
