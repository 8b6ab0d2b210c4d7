package overview_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/overviewtest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/overview"
)

// BenchmarkOverview times each overview call in process (the handler over a real influxd and the DynamoDB
// stand-in) with 10,000 and 100,000 devices in the positions snapshot and 30 days of fleet counts (one point every
// 5 minutes): the median of 5 calls each, in seconds (an instance keeps the snapshot it read, so the first call to
// read it is reported apart), and the positions answer's size gzipped.
func BenchmarkOverview(b *testing.B) {
	srv := influxtest.Shared(b)
	d := testenv.StartDynamo(b)
	c := srv.Client(b)
	bucket := srv.NewBucket(b, "ovbench")
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	var lp strings.Builder
	for k := 30 * 288; k >= 0; k-- {
		fmt.Fprintf(&lp, "fleet online=%di,late=10i,silent=%di,registered=100000i,pointsPerMinute=%d %d\n", 90000-k%500, 9990+k%500,
			90000-k%500, now.Add(-time.Duration(k)*5*time.Minute).UnixNano())
	}
	if err := c.WriteLines(ctx, bucket, []byte(lp.String())); err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
			if _, err := overviewtest.Seed(ctx, d.Table, nil, bucket, n, now); err != nil {
				b.Fatal(err)
			}
			svc := overview.NewService(c, bucket, d.Table)
			h := api.Handler(svc.Routes())
			call := func(target string) (time.Duration, int) {
				r := httptest.NewRequest(http.MethodGet, target, nil)
				r.Header.Set("Accept-Encoding", "gzip")
				r = r.WithContext(api.WithCaller(r.Context(), api.Caller{Role: api.RoleOperator}))
				w := httptest.NewRecorder()
				t0 := time.Now()
				h.ServeHTTP(w, r)
				el := time.Since(t0)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", target, w.Code, w.Body)
				}
				return el, w.Body.Len()
			}
			for i := 0; i < b.N; i++ {
				for _, tc := range []struct{ name, target string }{
					{"counts-1d", "/api/overview?range=1d"},
					{"counts-7d", "/api/overview?range=7d"},
					{"counts-30d", "/api/overview?range=30d"},
					{"silent-page", "/api/overview/silent?limit=50"},
					{"positions", "/api/overview/positions"},
				} {
					var times []time.Duration
					size := 0
					for round := 0; round < 5; round++ {
						el, n := call(tc.target)
						times = append(times, el)
						size = n
					}
					if tc.name == "silent-page" {
						// the instance's first read of the snapshot's parts (later calls read only META)
						b.ReportMetric(times[0].Seconds(), "s/first-snapshot-read")
					}
					slices.Sort(times)
					b.ReportMetric(times[len(times)/2].Seconds(), "s/"+tc.name)
					if tc.name == "positions" {
						b.ReportMetric(float64(size), "bytes-gzip/positions")
					}
				}
			}
		})
	}
}
