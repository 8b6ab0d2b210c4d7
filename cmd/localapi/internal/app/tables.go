package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

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
	for _, id := range tpl.Tables {
		spec, err := devstack.ReadTableSpec(template, id)
		if err == nil {
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
	return st, nil
}

func (st *stateTables) file(table string) string {
	return filepath.Join(st.state, "dynamodb-"+table+".json")
}

// environ adds the DynamoDB endpoint to the environment the functions' variables are taken from.
func (st *stateTables) environ(environ []string) []string {
	if st.endpoint == "" {
		return environ
	}
	return append(append([]string(nil), environ...), "AWS_ENDPOINT_URL_DYNAMODB="+st.endpoint)
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
	st.moto.Stop()
}
