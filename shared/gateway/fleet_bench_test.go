package gateway

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/config"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/sensors"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// fleet is n devices registered in gateway mode in a fresh state table on the DynamoDB stand-in: their ids and
// credentials, and the registry (over the uncounted table) that registered them.
type fleet struct {
	table *store.Table
	cfg   config.Config
	reg   *registry.Registry
	ids   []string
	creds map[string]string // id -> credential
}

func newFleet(b *testing.B, srv *influxtest.Server, n int, now func() time.Time) *fleet {
	b.Helper()
	cfg := srv.Config(srv.NewBucket(b, "gwfleet"))
	cfg.DeviceWrites, cfg.MaxDevices = config.WritesGateway, n
	f := &fleet{table: testenv.StateTable(b, nil), cfg: cfg, creds: map[string]string{}}
	f.reg = registry.New(srv.Client(b), cfg, f.table)
	if now != nil {
		f.reg.SetClock(now)
	}
	prefix := "gwf-" + influxtest.RandomID(3) + "-"
	for i := 0; i < n; i++ {
		f.ids = append(f.ids, fmt.Sprintf("%s%04d", prefix, i))
	}
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := testenv.Pool(n, 8, func(i int) error {
		d, _, err := f.reg.Register(ctx, f.ids[i])
		if err != nil {
			return err
		}
		mu.Lock()
		f.creds[f.ids[i]] = d.Token.Reveal()
		mu.Unlock()
		return nil
	}); err != nil {
		b.Fatalf("registering %d devices: %v", n, err)
	}
	return f
}

// dynamoCount counts a DynamoDB client's requests by operation and the read capacity they consume by DynamoDB's
// rules for items under 4 KB (every item here): 0.5 unit per item read eventually consistent, 1 per item read
// consistently, a missing item included; the capacity also by the items' sort key (DEVICE: credentials, REVOKED:
// revocations, SERIES: series budgets). Counted at the client: moto reports a fixed capacity per call.
type dynamoCount struct {
	mu       sync.Mutex
	requests map[string]int
	rcu      float64
	rcuOf    map[string]float64 // by sort key
}

// counted is the table reached through a client that counts into c.
func counted(t *store.Table, c *dynamoCount) *store.Table {
	c.requests, c.rcuOf = map[string]int{}, map[string]float64{}
	db := dynamodb.New(t.DB.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("count", func(ctx context.Context,
				in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				c.add(in.Parameters)
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
		})
	})
	return &store.Table{DB: db, Name: t.Name}
}

func (c *dynamoCount) add(params any) {
	units := func(consistent *bool) float64 {
		if consistent != nil && *consistent {
			return 1
		}
		return 0.5
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	read := func(key store.Item, consistent *bool) {
		c.rcu += units(consistent)
		c.rcuOf[store.Str(key, store.SK)] += units(consistent)
	}
	switch p := params.(type) {
	case *dynamodb.GetItemInput:
		c.requests["GetItem"]++
		read(p.Key, p.ConsistentRead)
	case *dynamodb.BatchGetItemInput:
		c.requests["BatchGetItem"]++
		for _, ka := range p.RequestItems {
			for _, k := range ka.Keys {
				read(k, ka.ConsistentRead)
			}
		}
	case *dynamodb.QueryInput:
		// a device's partition (its item and its series item, under 4 KB together): one read's capacity
		c.requests["Query"]++
		c.rcu += units(p.ConsistentRead)
		c.rcuOf["DEVICE"] += units(p.ConsistentRead)
	default:
		c.requests[strings.TrimPrefix(fmt.Sprintf("%T", params), "*dynamodb.")]++
	}
}

func (c *dynamoCount) total() (requests int, rcu float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.requests {
		requests += n
	}
	return requests, c.rcu
}

// BenchmarkGatewayRevocations is one gateway instance, configured as the function (series budgets on), in front of
// 1,000 devices that each write once a minute for 10 simulated minutes (a clock the gateway and the registry share),
// while a device's credential is rotated and another device deleted in the sixth minute; after each, the old
// credential is tried every simulated second until refused. Reported: DynamoDB requests and read capacity units per
// device write (the probes' included): all of them, and those of the credential checks (device items and revocation
// items) alone; and how long after the rotation and the deletion the old credential was refused.
func BenchmarkGatewayRevocations(b *testing.B) {
	const devices, minutes = 1000, 10
	srv := influxtest.Shared(b)
	clk := &clock{t: time.Now().Truncate(time.Minute)}
	f := newFleet(b, srv, devices, clk.now)
	admin := srv.Client(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var count dynamoCount
		tbl := counted(f.table, &count)
		reg := registry.New(admin, f.cfg, tbl)
		g, err := NewService(reg, tbl, admin, Options{Org: f.cfg.Org, Bucket: f.cfg.Bucket, Rate: -1, PointRate: -1, Now: clk.now,
			Series: tbl})
		if err != nil {
			b.Fatal(err)
		}
		h := api.Handler(g.Routes())
		write := func(cred string, at time.Time) int {
			clk.set(at)
			req := httptest.NewRequest("POST", "/api/v2/write?org="+f.cfg.Org+"&bucket="+f.cfg.Bucket, strings.NewReader("environment Temperature=21.5"))
			req.Header.Set("Authorization", "Token "+cred)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req.WithContext(ctx))
			return rec.Code
		}
		creds := map[string]string{}
		for id, c := range f.creds {
			creds[id] = c
		}
		start := clk.now()
		// the events: a rotation and a deletion in the sixth minute, each probed until its old credential is refused
		type event struct {
			at, probe, refused time.Time
			id, old            string
			run                func() string // returns the device's new credential ("" when deleted)
		}
		rotated, deleted := f.ids[123], f.ids[456]
		events := []*event{
			{at: start.Add(5*time.Minute + 500*time.Millisecond), id: rotated, run: func() string {
				d, _, err := f.reg.Rotate(ctx, rotated)
				if err != nil {
					b.Fatal(err)
				}
				return d.Token.Reveal()
			}},
			{at: start.Add(5*time.Minute + 20*time.Second), id: deleted, run: func() string {
				if err := f.reg.Delete(ctx, deleted, false); err != nil {
					b.Fatal(err)
				}
				return ""
			}},
		}
		gone := map[string]bool{}
		writes := 0
		for m := 0; m < minutes; m++ {
			for d, id := range f.ids {
				at := start.Add(time.Duration(m)*time.Minute + time.Duration(d)*time.Minute/devices)
				for _, e := range events {
					if e.old == "" && !at.Before(e.at) {
						clk.set(e.at)
						e.old, e.probe = creds[e.id], e.at
						if creds[e.id] = e.run(); creds[e.id] == "" {
							gone[e.id] = true
						}
					}
					for e.old != "" && e.refused.IsZero() && !e.probe.After(at) {
						if write(e.old, e.probe) == http.StatusUnauthorized {
							e.refused = e.probe
						}
						e.probe = e.probe.Add(time.Second)
					}
				}
				if gone[id] {
					continue
				}
				if status := write(creds[id], at); status != http.StatusNoContent {
					b.Fatalf("minute %d, device %s: %d", m, id, status)
				}
				writes++
			}
		}
		for _, e := range events {
			if e.refused.IsZero() {
				b.Fatalf("the old credential of %s was never refused", e.id)
			}
		}
		requests, rcu := count.total()
		b.ReportMetric(float64(writes), "writes")
		b.ReportMetric(float64(requests)/float64(writes), "dynamodb_requests/write")
		b.ReportMetric(rcu/float64(writes), "dynamodb_RCU/write")
		b.ReportMetric((count.rcuOf["DEVICE"]+count.rcuOf["REVOKED"])/float64(writes), "credential_RCU/write")
		b.ReportMetric(count.rcuOf["SERIES"]/float64(writes), "series_budget_RCU/write")
		b.ReportMetric(float64(count.requests["GetItem"])/float64(writes), "GetItem/write")
		b.ReportMetric(float64(count.requests["BatchGetItem"])/float64(writes), "BatchGetItem/write")
		b.ReportMetric(events[0].refused.Sub(events[0].at).Seconds(), "rotated_refused_after_s")
		b.ReportMetric(events[1].refused.Sub(events[1].at).Seconds(), "deleted_refused_after_s")
	}
}

// cpuPerWrite writes every device's one point (its own line, clientId set) to url with conc writers, the i-th write
// starting no sooner than i × interval after the first, and returns influxd's CPU time per write and the round's
// wall time.
func cpuPerWrite(b *testing.B, srv *influxtest.Server, url, org, bucket string, bodies []benchBatch, conc int,
	interval time.Duration, token func(string) string) (time.Duration, time.Duration) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	c0, err := srv.CPUTime()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	wall, failed := testenv.Pool(len(bodies), conc, func(i int) error {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		req, _ := http.NewRequestWithContext(ctx, "POST", url+"/api/v2/write?org="+org+"&bucket="+bucket+"&precision=ns",
			bytes.NewReader(bodies[i].body))
		req.Header.Set("Authorization", "Token "+token(bodies[i].device))
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	if failed != nil {
		b.Fatalf("write: %v", failed)
	}
	c1, err := srv.CPUTime()
	if err != nil {
		b.Fatal(err)
	}
	return (c1 - c0) / time.Duration(len(bodies)), wall
}

// onePointEach is each device's single point, a minute ago.
func onePointEach(ids []string) []benchBatch {
	gen := sensors.Generator{Lat: 50.0873254, Lon: 14.4071543}
	at := time.Now().Add(-time.Minute).UnixMilli()
	out := make([]benchBatch, len(ids))
	for i, id := range ids {
		out[i] = benchBatch{device: id, body: sensors.NewLine(gen, id).Append(nil, at)}
	}
	return out
}
