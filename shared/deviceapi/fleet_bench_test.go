package deviceapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/registry"
)

// timingProxy sits between the registry and influxd and adds up the time of each kind of request, so the
// benchmark can say where a registration's time goes. Queries are told apart by their Flux text.
type timingProxy struct {
	mu    sync.Mutex
	total map[string]time.Duration
	count map[string]int
}

// kind names a request: method and path.
func (p *timingProxy) kind(r *http.Request) string {
	path := r.URL.Path
	if strings.HasPrefix(path, "/api/v2/authorizations/") {
		path = "/api/v2/authorizations/{id}"
	}
	return r.Method + " " + path
}

func (p *timingProxy) start(b *testing.B, target *url.URL) *httptest.Server {
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := p.kind(r)
		t0 := time.Now()
		rp.ServeHTTP(w, r)
		p.mu.Lock()
		p.total[k] += time.Since(t0)
		p.count[k]++
		p.mu.Unlock()
	}))
	b.Cleanup(proxy.Close)
	return proxy
}

// BenchmarkRegistration1000 registers 1,000 devices from 8 concurrent clients (Register, the code behind
// POST /api/devices/{id}) in each device-writes mode and reports the total time, InfluxDB requests per
// registration and the InfluxDB time per kind of request (its share of all InfluxDB time, and its mean).
func BenchmarkRegistration1000(b *testing.B) {
	for _, mode := range []string{config.WritesGateway, config.WritesDirect} {
		b.Run(mode, func(b *testing.B) { benchRegistration(b, mode) })
	}
}

func benchRegistration(b *testing.B, mode string) {
	const devices, clients = 1000, 8
	srv := influxtest.Shared(b)
	target, _ := url.Parse(srv.URL)
	p := &timingProxy{total: map[string]time.Duration{}, count: map[string]int{}}
	proxy := p.start(b, target)
	cfg := srv.Config(srv.NewBucket(b, "rdata"))
	cfg.InfluxURL, cfg.MaxDevices, cfg.DeviceWrites = proxy.URL, 10000, mode
	c := influx.New(proxy.URL, srv.Token, srv.Org, influx.Options{})
	b.Cleanup(c.Close)
	reg := registry.New(c, cfg, influxtest.StateTable(b))
	prefix := "reg-" + influxtest.RandomID(3)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		as, _ := c.ListAuthorizations(ctx)
		for _, a := range as {
			if strings.HasPrefix(a.Description, registry.Description(prefix)) {
				_ = c.DeleteAuthorization(ctx, a.ID)
			}
		}
	})
	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		el, err := testenv.Pool(devices, clients, func(i int) error {
			id := fmt.Sprintf("%s-%04d", prefix, i)
			if _, created, err := reg.Register(ctx, id); err != nil || !created {
				return fmt.Errorf("%s: created %v, %v", id, created, err)
			}
			return nil
		})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(el.Seconds(), "s/1000_registrations")
		type row struct {
			k string
			d time.Duration
		}
		var rows []row
		var sum time.Duration
		requests := 0
		for k, d := range p.total {
			rows = append(rows, row{k, d})
			sum += d
			requests += p.count[k]
		}
		b.ReportMetric(float64(requests)/devices, "influx_requests/registration")
		sort.Slice(rows, func(i, j int) bool { return rows[i].d > rows[j].d })
		for _, r := range rows {
			name := strings.NewReplacer("/api/v2/", "", "/", "_", " ", "_", "{", "", "}", "").Replace(r.k)
			b.ReportMetric(r.d.Seconds()*1000/float64(p.count[r.k]), name+"_ms/request")
			b.ReportMetric(100*float64(r.d)/float64(sum), name+"_%_of_influx_time")
		}
		b.ReportMetric(sum.Seconds()/clients/el.Seconds()*100, "%_of_wall_time_in_influx")
		if mode == config.WritesGateway {
			continue // gateway credentials are no InfluxDB authorizations
		}
		// one winner each: exactly one authorization per device is left
		as, err := c.ListAuthorizations(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		per := map[string]int{}
		for _, a := range as {
			if strings.HasPrefix(a.Description, registry.Description(prefix)) {
				per[a.Description]++
			}
		}
		for d, n := range per {
			if n != 1 {
				b.Fatalf("%s: %d authorizations, want 1", d, n)
			}
		}
		if len(per) != devices {
			b.Fatalf("authorizations for %d devices, want %d", len(per), devices)
		}
	}
}
