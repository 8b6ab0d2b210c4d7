package setup

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
)

// BenchmarkSetupRun measures a deploy's custom resource work on a fresh InfluxDB organisation's buckets: the first
// run (creates everything) and a second one (finds everything: the cost of every later stack update).
func BenchmarkSetupRun(b *testing.B) {
	srv := influxtest.Shared(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var first, second time.Duration
	for i := 0; i < b.N; i++ {
		o := benchOptions(b, srv)
		start := time.Now()
		if _, err := Run(ctx, srv.Client(b), o); err != nil {
			b.Fatal(err)
		}
		first += time.Since(start)
		start = time.Now()
		res, err := Run(ctx, srv.Client(b), o)
		if err != nil {
			b.Fatal(err)
		}
		second += time.Since(start)
		if len(res.Created) != 0 {
			b.Fatalf("second run created %v", res.Created)
		}
	}
	b.ReportMetric(float64(first.Milliseconds())/float64(b.N), "ms/first_run")
	b.ReportMetric(float64(second.Milliseconds())/float64(b.N), "ms/second_run")
}

// BenchmarkDownsampleDay measures re-aggregating one backfilled day (one device, 1,440 minutes, seven fields),
// which a backfill chunk pays on top of its writes.
func BenchmarkDownsampleDay(b *testing.B) {
	srv := influxtest.Shared(b)
	c := srv.Client(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	src, dst := srv.NewBucket(b, "bench_src"), srv.NewBucket(b, "bench_dst")
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-48 * time.Hour)
	var lp strings.Builder
	for m := 0; m < 1440; m++ {
		ts := day.Add(time.Duration(m) * time.Minute)
		fmt.Fprintf(&lp, "environment,clientId=bench,TemperatureSensor=virtual_TemperatureSensor Temperature=%d.5,Humidity=%d.1,Pressure=1000.2,Lat=50.1,Lon=14.4,CO2=%di,TVOC=%di %d\n",
			m%40, m%99, 400+m, 250+m, ts.UnixNano())
	}
	if err := c.WriteLines(ctx, src, []byte(lp.String())); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var took time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := Downsample(ctx, c, src, dst, day, day.Add(24*time.Hour)); err != nil {
			b.Fatal(err)
		}
		took += time.Since(start)
	}
	b.ReportMetric(float64(took.Milliseconds())/float64(b.N), "ms/day")
}

func benchOptions(b *testing.B, srv *influxtest.Server) Options {
	b.Helper()
	id := influxtest.RandomID(4)
	o := Options{Bucket: "bdata_" + id, BucketDownsampled: "bds_" + id}
	b.Cleanup(func() {
		c := srv.Client(b)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		full, _ := o.withDefaults()
		if tasks, err := findTasks(ctx, c, srv.OrgID, full.TaskName); err == nil {
			for _, tk := range tasks {
				_ = c.JSON(ctx, "DELETE", "/api/v2/tasks/"+tk.ID, nil, nil, nil)
			}
		}
		if d, err := findDashboard(ctx, c, srv.OrgID, full.DashboardName); err == nil && d != "" {
			_ = c.JSON(ctx, "DELETE", "/api/v2/dashboards/"+d, nil, nil, nil)
		}
		for _, name := range []string{o.Bucket, o.BucketDownsampled} {
			_ = c.DeleteBucket(ctx, name)
		}
	})
	return o
}
