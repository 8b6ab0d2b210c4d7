package gateway

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/influx"
	"github.com/iot-center/iot-center-serverless/shared/schema"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// sensorLines is one line per sensor name, all of dev-a's tag sets differing in TemperatureSensor.
func sensorLines(t0 time.Time, names ...string) []byte {
	var b strings.Builder
	for i, n := range names {
		fmt.Fprintf(&b, "environment,TemperatureSensor=%s Temperature=%d %d\n", n, i, t0.Add(time.Duration(i)*time.Second).UnixNano())
	}
	return []byte(b.String())
}

// seriesIn counts the distinct tag sets (measurement and every tag, fields aside) per clientId in bucket, as
// InfluxDB stores them.
func seriesIn(t *testing.T, c *influx.Client, bucket string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sets := map[string]map[string]bool{}
	skip := map[string]bool{"_value": true, "_time": true, "_field": true, "_start": true, "_stop": true, "result": true, "table": true}
	err := c.QueryRows(ctx, `from(bucket: b) |> range(start: 0)`, influx.Extern{"b": bucket}, func(v map[string]any) error {
		var parts []string
		for k, x := range v {
			if !skip[k] && x != nil {
				parts = append(parts, fmt.Sprintf("%s=%v", k, x))
			}
		}
		sort.Strings(parts)
		dev, _ := v[schema.TagClientID].(string)
		if sets[dev] == nil {
			sets[dev] = map[string]bool{}
		}
		sets[dev][strings.Join(parts, ",")] = true
		return nil
	})
	if err != nil {
		t.Fatalf("counting series: %v", err)
	}
	out := map[string]int{}
	for d, s := range sets {
		out[d] = len(s)
	}
	return out
}

// setDeviceBudget is what an operator does to give one device another budget.
func setDeviceBudget(t *testing.T, tb *store.Table, device string, budget int) {
	t.Helper()
	_, err := tb.DB.UpdateItem(t.Context(), &dynamodb.UpdateItemInput{TableName: &tb.Name, Key: SeriesKey(device),
		UpdateExpression: aws.String("SET budget = :b"), ExpressionAttributeValues: map[string]types.AttributeValue{":b": store.N(int64(budget))}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSeriesBudgetPerDevice(t *testing.T) {
	d := testenv.StartDynamo(t)
	c := &clock{t: time.Now()}
	f := newFixture(t, Options{Series: d.Table, SeriesBudget: 3, Rate: -1, PointRate: -1, Now: c.now})
	t0 := at()
	steps := []struct {
		name       string
		body       []byte
		wantStatus int
		wantMsg    string
		wantSeries int
	}{
		{"three new tag sets in one request", sensorLines(t0, "s1", "s2", "s3"), 204, "", 3},
		{"the same tag sets again", sensorLines(t0.Add(time.Minute), "s3", "s1", "s2", "s1"), 204, "", 3},
		{"one more", sensorLines(t0.Add(2*time.Minute), "s1", "s4"), 403, "series budget exceeded: device dev-a has 3 tag sets in measurement environment and this request adds 1, its budget is 3", 3},
		{"the 20,000-values shape, within the point cap", sensorLines(t0.Add(3*time.Minute), manyNames(1000)...), 403, "this request adds 1000", 3},
	}
	for _, st := range steps {
		status, _, body := f.post(req{body: st.body, gzip: true})
		if status != st.wantStatus || (st.wantMsg != "" && !strings.Contains(str(body["message"]), st.wantMsg)) {
			t.Fatalf("%s: %d %v, want %d %q", st.name, status, body, st.wantStatus, st.wantMsg)
		}
		if status == 403 && body["code"] != "forbidden" {
			t.Errorf("%s: code %v, want forbidden", st.name, body["code"])
		}
		if got := seriesIn(t, f.admin, f.bucket)[devA]; got != st.wantSeries {
			t.Fatalf("%s: %d tag sets in InfluxDB, want %d", st.name, got, st.wantSeries)
		}
	}
	if got := len(f.points()); got != 7 {
		t.Errorf("%d points stored, want 7 (nothing of the refused requests)", got)
	}
	// an operator raises this device's budget: read when the next new tag set comes
	setDeviceBudget(t, d.Table, devA, 4)
	if status, _, body := f.post(req{body: sensorLines(t0.Add(4*time.Minute), "s4")}); status != 204 {
		t.Fatalf("after raising the device's budget to 4: %d %v", status, body)
	}
	if status, _, body := f.post(req{body: sensorLines(t0.Add(5*time.Minute), "s5")}); status != 403 {
		t.Fatalf("a fifth tag set with a budget of 4: %d %v, want 403", status, body)
	}
	if got := seriesIn(t, f.admin, f.bucket)[devA]; got != 4 {
		t.Errorf("%d tag sets in InfluxDB, want 4", got)
	}
}

func manyNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("s%06d", i)
	}
	return out
}

// TestSeriesBudgetPerMeasurement: the device budget counts per measurement (a SchemaExtension measurement has its
// own), and the fleet's budget caps every device together.
func TestSeriesBudgetPerMeasurementAndFleet(t *testing.T) {
	d := testenv.StartDynamo(t)
	s, err := schema.Load(`{"measurements":[{"name":"power","tags":["Room"],"fields":[{"name":"Watts","type":"float"}]}]}`)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Options{Series: d.Table, SeriesBudget: 2, FleetSeriesBudget: 5, Schema: s, Rate: -1, PointRate: -1})
	f.creds.set("cred-b", "dev-b")
	t0 := at()
	power := func(rooms ...string) []byte {
		var b strings.Builder
		for i, r := range rooms {
			fmt.Fprintf(&b, "power,Room=%s Watts=1 %d\n", r, t0.Add(time.Duration(i)*time.Second).UnixNano())
		}
		return []byte(b.String())
	}
	steps := []struct {
		name, auth string
		body       []byte
		wantStatus int
		wantMsg    string
	}{
		{"dev-a: 2 in environment", "", sensorLines(t0, "a1", "a2"), 204, ""},
		{"dev-a: 2 in power", "", power("r1", "r2"), 204, ""},
		{"dev-a: a third in power", "", power("r3"), 403, "in measurement power"},
		{"dev-b: 2 more would make 6 of 5", "Token cred-b", sensorLines(t0, "b1", "b2"), 403, "the fleet's budget of 5 tag sets is used up, this request adds 2"},
		{"dev-b: 1 more makes 5", "Token cred-b", sensorLines(t0, "b1"), 204, ""},
		{"dev-b: a sixth", "Token cred-b", power("r1"), 403, "fleet's budget of 5"},
	}
	for _, st := range steps {
		status, _, body := f.post(req{body: st.body, auth: st.auth})
		if status != st.wantStatus || (st.wantMsg != "" && !strings.Contains(str(body["message"]), st.wantMsg)) {
			t.Fatalf("%s: %d %v, want %d %q", st.name, status, body, st.wantStatus, st.wantMsg)
		}
	}
	got := seriesIn(t, f.admin, f.bucket)
	if got[devA] != 4 || got["dev-b"] != 1 {
		t.Errorf("tag sets in InfluxDB = %v, want dev-a 4, dev-b 1", got)
	}
}

// TestSeriesBudgetAcrossInstances: gateways sharing the table (Lambda instances) race to add new tag sets; the
// conditional update lets the device's set grow only within its budget.
func TestSeriesBudgetAcrossInstances(t *testing.T) {
	d := testenv.StartDynamo(t)
	f := newFixture(t, Options{Series: d.Table, SeriesBudget: 3, Rate: -1, PointRate: -1})
	const instances = 4
	gws := []http.Handler{f.h}
	for range instances - 1 {
		g, err := NewService(f.creds, nil, f.admin, Options{Org: f.srv.Org, Bucket: f.bucket, Series: d.Table, SeriesBudget: 3, Rate: -1, PointRate: -1})
		if err != nil {
			t.Fatal(err)
		}
		gws = append(gws, g.Routes())
	}
	t0 := at()
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i, h := range gws {
		for j := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fi := &fixture{t: t, srv: f.srv, bucket: f.bucket, h: h}
				status, _, _ := fi.post(req{body: sensorLines(t0.Add(time.Duration(i*2+j)*time.Minute), fmt.Sprintf("i%dr%d", i, j))})
				mu.Lock()
				statuses[status]++
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	if got := seriesIn(t, f.admin, f.bucket)[devA]; got > 3 || got != statuses[204] {
		t.Errorf("%d tag sets in InfluxDB after answers %v, want at most 3 and one per 204", got, statuses)
	}
	for s := range statuses {
		if s != 204 && s != 403 && s != 503 {
			t.Errorf("answers %v: want only 204, 403 or 503", statuses)
		}
	}
}
