package influxtest

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/devstack"
	"github.com/iot-center/iot-center-serverless/internal/syncbuf"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

var (
	dynamoOnce sync.Once
	dynamo     *devstack.Moto
	dynamoOut  syncbuf.Buffer
	dynamoErr  error
)

// StateTable returns a fresh state table (template.yaml's StateTable definition, a name of its own) on the test
// binary's shared DynamoDB stand-in (moto's server in its own process, started on first use, stopped by Main).
func StateTable(t testing.TB) *store.Table {
	t.Helper()
	root, err := devstack.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	tpl := filepath.Join(root, "template.yaml")
	dynamoOnce.Do(func() {
		dynamo, dynamoErr = devstack.LaunchDynamoDB(context.Background(), &dynamoOut)
	})
	if dynamoErr != nil {
		t.Fatalf("DynamoDB stand-in: %v: %s", dynamoErr, devstack.Tail(dynamoOut.String(), 2000))
	}
	spec, err := devstack.ReadTableSpec(tpl, devstack.StateTableID)
	if err != nil {
		t.Fatal(err)
	}
	name := "state-" + RandomID(6)
	db := devstack.DynamoClient(dynamo.URL, "eu-west-1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := devstack.CreateTable(ctx, db, name, spec); err != nil {
		t.Fatal(err)
	}
	return &store.Table{DB: db, Name: name}
}

// DynamoURL is the shared DynamoDB stand-in's URL ("" before StateTable started it).
func DynamoURL() string {
	if dynamo == nil {
		return ""
	}
	return dynamo.URL
}

func stopDynamo() { dynamo.Stop() }
