package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/samtpl"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
)

// stateTables are the template's DynamoDB tables on the stand-in (moto's server in a process of its own) or on
// the endpoint AWS_ENDPOINT_URL_DYNAMODB names (DynamoDB Local, for example).
type stateTables struct {
	endpoint string
	moto     *testenv.Moto
}

// prepareTables creates each table of the template, named by its logical id (what `!Ref` of it resolves to
// locally, as under sam local), from its definition in the template: keys, attributes, TTL. An existing table is
// kept.
func prepareTables(ctx context.Context, tpl *samtpl.Template, template string, getenv func(string) string, log *slog.Logger, out io.Writer) (*stateTables, error) {
	st := &stateTables{endpoint: getenv("AWS_ENDPOINT_URL_DYNAMODB")}
	if len(tpl.Tables) == 0 {
		return st, nil
	}
	if st.endpoint == "" {
		m, err := testenv.LaunchMoto(ctx, out)
		if err != nil {
			return nil, err
		}
		st.moto, st.endpoint = m, m.URL
		log.Info("moto DynamoDB server running (stands in for DynamoDB; its tables live as long as this run)", "url", m.URL)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// the functions' region (FunctionEnv): moto keeps tables per region
	db := testenv.DynamoClient(st.endpoint, firstNonEmpty(getenv("AWS_REGION"), samtpl.Region))
	for _, id := range tpl.Tables {
		spec, err := testenv.ReadTableSpec(template, id)
		if err == nil {
			err = testenv.CreateTable(cctx, db, id, spec)
		}
		if err != nil {
			st.stop()
			return nil, fmt.Errorf("DynamoDB table %s at %s: %w", id, st.endpoint, err)
		}
	}
	return st, nil
}

// environ adds the DynamoDB endpoint to the environment the functions' variables are taken from.
func (st *stateTables) environ(environ []string) []string {
	if st.endpoint == "" {
		return environ
	}
	return append(append([]string(nil), environ...), "AWS_ENDPOINT_URL_DYNAMODB="+st.endpoint)
}

func (st *stateTables) stop() { st.moto.Stop() }
