package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/iampolicy"
	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/samtpl"
	"github.com/iot-center/iot-center-serverless/internal/devstack"
)

// stateTables are the template's DynamoDB tables on the stand-in (moto's server in a process of its own) or on
// the endpoint AWS_ENDPOINT_URL_DYNAMODB names (DynamoDB Local, for example).
type stateTables struct {
	endpoint string
	moto     *devstack.Moto
	db       *dynamodb.Client
	tables   []string
	state    string // the folder the stand-in's tables are saved to at stop ("" with an external endpoint)
	guard    *iampolicy.Guard
	log      *slog.Logger
}

// prepareTables creates each table of the template, named by its logical id (what `!Ref` of it resolves to
// locally, as under sam local), from its definition in the template: keys, attributes, TTL. An existing table is
// kept.
func prepareTables(ctx context.Context, tpl *samtpl.Template, template, state string, getenv func(string) string, log *slog.Logger, out io.Writer) (*stateTables, error) {
	st := &stateTables{endpoint: getenv("AWS_ENDPOINT_URL_DYNAMODB"), tables: tpl.Tables, log: log}
	if len(tpl.Tables) == 0 {
		return st, nil
	}
	if st.endpoint == "" {
		m, err := devstack.LaunchDynamoDB(ctx, out)
		if err != nil {
			return nil, err
		}
		st.moto, st.endpoint, st.state = m, m.URL, state
		log.Info("moto DynamoDB server running (stands in for DynamoDB; its tables are saved in the state folder at stop)", "url", m.URL)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// the functions' region (FunctionEnv): moto keeps tables per region
	st.db = devstack.DynamoClient(st.endpoint, firstNonEmpty(getenv("AWS_REGION"), samtpl.Region))
	keys := map[string]iampolicy.Table{}
	for _, id := range tpl.Tables {
		spec, err := devstack.ReadTableSpec(template, id)
		if err == nil {
			keys[id] = policyTable(spec)
			err = devstack.CreateTable(cctx, st.db, id, spec)
		}
		n := 0
		if err == nil && st.state != "" {
			n, err = loadTable(cctx, st.db, id, st.file(id))
		}
		if err != nil {
			st.stop()
			return nil, fmt.Errorf("DynamoDB table %s at %s: %w", id, st.endpoint, err)
		}
		if n > 0 {
			log.Info("state table loaded from the last run", "table", id, "items", n)
		}
	}
	var err error
	if st.guard, err = startGuard(tpl, st.endpoint, keys, log); err != nil {
		st.stop()
		return nil, err
	}
	return st, nil
}

// startGuard puts the IAM stand-in between the functions and the DynamoDB endpoint: each function's calls are
// checked against its template policy, as AWS would check them.
func startGuard(tpl *samtpl.Template, endpoint string, tables map[string]iampolicy.Table, log *slog.Logger) (*iampolicy.Guard, error) {
	policies := map[string]iampolicy.Policy{}
	for id, f := range tpl.Functions {
		p, err := iampolicy.Parse(f.Policies)
		if err != nil {
			return nil, fmt.Errorf("%s's policies: %w", id, err)
		}
		policies[id] = p
	}
	return iampolicy.Start(endpoint, policies, tables, samtpl.ResourceARN, log)
}

// policyTable is the partition key of a table and of its indexes.
func policyTable(spec devstack.TableSpec) iampolicy.Table {
	hash := func(keys []devstack.KeyElement) string {
		for _, k := range keys {
			if k.KeyType == "HASH" {
				return k.AttributeName
			}
		}
		return ""
	}
	t := iampolicy.Table{Hash: hash(spec.KeySchema), Indexes: map[string]string{}}
	for _, ix := range spec.GlobalSecondaryIndexes {
		t.Indexes[ix.IndexName] = hash(ix.KeySchema)
	}
	return t
}

func (st *stateTables) file(table string) string {
	return filepath.Join(st.state, "dynamodb-"+table+".json")
}

// environ adds function id's DynamoDB endpoint (its path on the IAM stand-in) to the environment the function's
// variables are taken from.
func (st *stateTables) environ(id string, environ []string) []string {
	if st.guard == nil {
		return environ
	}
	return append(append([]string(nil), environ...), "AWS_ENDPOINT_URL_DYNAMODB="+st.guard.Endpoint(id))
}

// stop saves the stand-in's tables into the state folder, then stops it.
func (st *stateTables) stop() {
	if st.moto != nil && st.db != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, id := range st.tables {
			if n, err := saveTable(ctx, st.db, id, st.file(id)); err != nil {
				st.log.Error("saving the state table failed: it starts empty next time", "table", id, "error", err.Error())
			} else {
				st.log.Info("state table saved", "table", id, "items", n)
			}
		}
	}
	if st.guard != nil {
		st.guard.Close()
	}
	st.moto.Stop()
}
