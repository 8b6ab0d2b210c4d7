package testenv

import (
	"github.com/iot-center/iot-center-serverless/internal/devstack"

	"context"
	"path/filepath"
	"testing"

	"github.com/iot-center/iot-center-serverless/internal/syncbuf"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// Dynamo is a test's DynamoDB stand-in with the state table in it.
type Dynamo struct {
	*devstack.Moto
	Table *store.Table
}

// Env is what a function process needs to use the table: its endpoint and name, a region and fake credentials.
func (d *Dynamo) Env() []string {
	return []string{"AWS_ENDPOINT_URL_DYNAMODB=" + d.URL, store.EnvTable + "=" + d.Table.Name, "AWS_REGION=eu-west-1",
		"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_EC2_METADATA_DISABLED=true"}
}

// StartDynamo launches the DynamoDB stand-in with the template's state table for this test (stopped at its end),
// and points the test's environment at it (AWS_ENDPOINT_URL_DYNAMODB, STATE_TABLE, fake credentials, a region),
// so functions started by the test find it too.
func StartDynamo(t testing.TB) *Dynamo {
	t.Helper()
	root, err := devstack.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	var out syncbuf.Buffer
	name := "state-" + devstack.RandomHex(4)
	m, err := devstack.LaunchDynamo(context.Background(), &out, filepath.Join(root, "template.yaml"), name, "eu-west-1")
	if err != nil {
		t.Fatalf("%v: %s", err, devstack.Tail(out.String(), 2000))
	}
	t.Cleanup(m.Stop)
	for k, v := range map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": m.URL, store.EnvTable: name, "AWS_ACCESS_KEY_ID": "testing",
		"AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "", "AWS_REGION": "eu-west-1", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true"} {
		t.Setenv(k, v)
	}
	return &Dynamo{Moto: m, Table: &store.Table{DB: devstack.DynamoClient(m.URL, "eu-west-1"), Name: name}}
}
