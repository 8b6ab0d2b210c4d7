package deviceapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

// benchSamples is how many requests each benchmark times per run (make bench runs each benchmark once).
const benchSamples = 40

// benchRegistry builds a registry over fresh buckets on the shared server, with admin cleanup of its devices.
func benchRegistry(b *testing.B) (*registry.Registry, http.Handler, func(id string)) {
	b.Helper()
	srv := influxtest.Shared(b)
	reg := registry.New(srv.Client(b), srv.Config(srv.NewBucket(b, "bdata")), influxtest.StateTable(b))
	cleanup := func(id string) { srv.RevokeAtCleanup(b, registry.Description(id)) }
	return reg, asOperator(NewService(reg).Routes()), cleanup
}

func quantile(ds []time.Duration, q float64) float64 {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return float64(ds[int(q*float64(len(ds)-1))].Microseconds()) / 1000
}

// BenchmarkEnvRegisteredDevice times GET /api/env/{id} for a registered device (record read + authorization check).
func BenchmarkEnvRegisteredDevice(b *testing.B) {
	_, h, cleanup := benchRegistry(b)
	id := "bench-" + influxtest.RandomID(4)
	cleanup(id)
	b.ResetTimer()
	for range b.N {
		var ds []time.Duration
		for i := 0; i < benchSamples+1; i++ {
			t0 := time.Now()
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", "/api/env/"+id, nil))
			if w.Code != http.StatusOK {
				b.Fatalf("got %d %s", w.Code, w.Body.String())
			}
			if i > 0 { // the first request registers the device
				ds = append(ds, time.Since(t0))
			}
		}
		b.ReportMetric(quantile(ds, 0.5), "ms/median")
		b.ReportMetric(quantile(ds, 0.95), "ms/p95")
	}
}

// BenchmarkGet times registry.Registry.Get, the authorizer's per-request registry read.
func BenchmarkGet(b *testing.B) {
	reg, _, cleanup := benchRegistry(b)
	id := "bget-" + influxtest.RandomID(4)
	cleanup(id)
	ctx := context.Background()
	if _, _, err := reg.Register(ctx, id); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		var ds []time.Duration
		for range benchSamples {
			t0 := time.Now()
			if _, err := reg.Get(ctx, id); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(t0))
		}
		b.ReportMetric(quantile(ds, 0.5), "ms/median")
	}
}

// BenchmarkConcurrentFirstRegistration times 50 simultaneous first registrations of one id through 5 independent
// instances until every caller has the one surviving token.
func BenchmarkConcurrentFirstRegistration(b *testing.B) {
	srv := influxtest.Shared(b)
	for range b.N {
		cfg, table, admin := srv.Config(srv.NewBucket(b, "bdata")), influxtest.StateTable(b), srv.Client(b)
		id := "brace-" + influxtest.RandomID(4)
		srv.RevokeAtCleanup(b, registry.Description(id))
		regs := make([]*registry.Registry, 5)
		for i := range regs {
			c := influx.New(srv.URL, srv.Token, srv.Org, influx.Options{})
			b.Cleanup(c.Close)
			regs[i] = registry.New(c, cfg, table)
		}
		var wg sync.WaitGroup
		tokens := make([]string, 50)
		t0 := time.Now()
		for i := range tokens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, _, err := regs[i%len(regs)].Register(context.Background(), id)
				if err == nil {
					tokens[i] = d.Token.Reveal()
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(time.Since(t0).Microseconds())/1000, "ms/50_registrations")
		distinct := map[string]bool{}
		for _, tok := range tokens {
			distinct[tok] = true
		}
		b.ReportMetric(float64(len(distinct)), "distinct_tokens")
		as, err := admin.FindAuthorizations(context.Background(), registry.Description(id))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(as)), "live_authorizations")
	}
}
