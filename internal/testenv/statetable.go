package testenv

import (
	"github.com/iot-center/iot-center-serverless/internal/devstack"

	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/store"
)

// shared is one DynamoDB stand-in (moto's server, a process of its own) per test binary, for StateTable.
var shared struct {
	once sync.Once
	m    *devstack.Moto
	spec devstack.TableSpec
	err  error
}

// StateTable creates a fresh state table (template.yaml's StateTable) on a DynamoDB stand-in the test binary
// shares (started on first use; TestMain stops it with StopStateTables). With down, the table is reached through
// a proxy that drops every connection while *down is true: the endpoint stopped.
func StateTable(t testing.TB, down *atomic.Bool) *store.Table {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		root, err := devstack.ModuleRoot()
		if err == nil {
			shared.spec, err = devstack.ReadTableSpec(filepath.Join(root, "template.yaml"), devstack.StateTableID)
		}
		if err == nil {
			shared.m, err = devstack.LaunchDynamoDB(ctx, io.Discard)
		}
		shared.err = err
	})
	if shared.err != nil {
		t.Fatalf("DynamoDB stand-in: %v", shared.err)
	}
	table := &store.Table{DB: devstack.DynamoClient(shared.m.URL, "eu-west-1"), Name: "state-" + devstack.RandomHex(6)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := devstack.CreateTable(ctx, table.DB, table.Name, shared.spec); err != nil {
		t.Fatal(err)
	}
	if down != nil {
		u, _ := url.Parse(shared.m.URL)
		rp := httputil.NewSingleHostReverseProxy(u)
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if down.Load() {
				if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					conn.Close()
				}
				return
			}
			rp.ServeHTTP(w, r)
		}))
		t.Cleanup(proxy.Close)
		table.DB = devstack.DynamoClient(proxy.URL, "eu-west-1")
	}
	return table
}

// StopStateTables stops the shared DynamoDB stand-in, if StateTable started it.
func StopStateTables() {
	if shared.m != nil {
		shared.m.Stop()
	}
}
