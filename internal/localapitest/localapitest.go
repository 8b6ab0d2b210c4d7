// Package localapitest runs the project's local API (cmd/localapi: every function's real bootstrap under the local
// API's Lambda Runtime API, the template's authorizer, the queues and schedules, and the IAM stand-in on the
// functions' DynamoDB calls) for tests and benchmarks, over a given real InfluxDB.
package localapitest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/devstack"
	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/syncbuf"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// API is a running local API.
type API struct {
	*devstack.LocalAPI
	Influx *influxtest.Server
	// Table is the local API's state table, on a DynamoDB stand-in of its own (tests write items into it directly,
	// or stop Dynamo to see the API answer without it).
	Table  *store.Table
	Dynamo *devstack.Moto
}

// Options tune Start.
type Options struct {
	// PoolFor sets emulator processes per function (e.g. "BackfillWorkerFunction=4"); others get one.
	PoolFor string
	// Params are template parameter overrides ("WorkerMaxConcurrency=4 JobTimeoutMinutes=5").
	Params string
}

// Start builds and starts cmd/localapi over srv (its default buckets), waits until it is healthy, and stops it at
// the end of the test.
func Start(t testing.TB, srv *influxtest.Server, o Options) *API {
	t.Helper()
	args := []string{"-pool", "1"}
	if o.PoolFor != "" {
		args = append(args, "-pool-for", o.PoolFor)
	}
	if o.Params != "" {
		args = append(args, "-parameter-overrides", o.Params)
	}
	var dynOut syncbuf.Buffer
	dyn, err := devstack.LaunchDynamoDB(context.Background(), &dynOut)
	if err != nil {
		t.Fatalf("DynamoDB stand-in: %v: %s", err, dynOut.String())
	}
	t.Cleanup(dyn.Stop) // after the local API's stop (cleanups run last first)
	// the local API creates its tables there, named by logical id, in the functions' region
	la, err := devstack.StartLocalAPI(devstack.LocalAPIOptions{Dir: t.TempDir(), InfluxURL: srv.URL,
		InfluxToken: srv.Token, InfluxOrg: srv.Org, Args: args, Env: []string{"AWS_ENDPOINT_URL_DYNAMODB=" + dyn.URL, "AWS_REGION=us-east-1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := la.Stop(); err != nil {
			t.Error(err)
		}
		// a call AWS would refuse (AccessDenied) fails the test even when the function survived its error
		for _, line := range la.Refused() {
			t.Errorf("a DynamoDB call its function's template policy does not allow: %s", line)
		}
		if t.Failed() {
			t.Logf("local API output:\n%s", la.Logs.Tail(4000))
		}
	})
	return &API{LocalAPI: la, Influx: srv, Dynamo: dyn, Table: &store.Table{DB: devstack.DynamoClient(dyn.URL, "us-east-1"), Name: devstack.StateTableID}}
}

// Call sends a request with the operator key and decodes the JSON object it answers.
func (a *API) Call(t testing.TB, method, path, body string) (int, map[string]any) {
	t.Helper()
	ans, err := a.Send(method, path, a.OperatorKey, body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(ans.Body, &out); err != nil {
		t.Fatalf("%s %s: %d %.300q is not a JSON object", method, path, ans.Status, ans.Body)
	}
	return ans.Status, out
}
