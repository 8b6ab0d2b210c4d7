package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/localapitest"
	"github.com/iot-center/iot-center-serverless/shared/deviceapi"
	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// hostile is one body of the corpus and what the gateway answers it, as documented in the README.
type hostile struct {
	name   string
	body   []byte
	gzip   bool
	want   int      // status
	sets   []string // the tag sets a valid body writes (want 204 or 403 is then decided by the budget)
	points int      // rows (point × field) a valid body writes
}

// corpusBudget is the series budget the corpus runs under (small, so explosions are cheap to send).
const corpusBudget = 8

// TestHostileBodiesThroughLocalAPI sends a corpus of more than 200 hostile line-protocol bodies (tag-value
// explosions, escapes, huge counts, bombs, mixed valid and invalid lines) from several devices through `make run`
// with a series budget of 8. Each answer is the documented one; afterwards InfluxDB holds, for every device, at
// most 8 tag sets and exactly the rows of the accepted bodies (nothing of a refused one). Then one device sends
// 20,000 distinct tag values in one request: refused, no new series.
func TestHostileBodiesThroughLocalAPI(t *testing.T) {
	srv := influxtest.Shared(t)
	l := localapitest.Start(t, srv, localapitest.Options{Params: fmt.Sprintf("DeviceWrites=gateway SeriesBudget=%d WritePointRate=-1", corpusBudget)})
	admin := srv.Client(t)
	const devices = 6
	envs := make([]deviceapi.EnvConfig, devices)
	for i := range envs {
		envs[i] = register(t, l, fmt.Sprintf("hostile%d-%s", i, influxtest.RandomID(3)))
	}
	bucket := envs[0].InfluxBucket
	corpus := hostileCorpus(time.Now().Add(-time.Hour))
	if len(corpus) < 200 {
		t.Fatalf("corpus has %d bodies, want at least 200", len(corpus))
	}
	known := make([]map[string]bool, devices) // the model of each device's tag sets
	rows := make([]int, devices)
	for i := range known {
		known[i] = map[string]bool{}
	}
	for i, h := range corpus {
		d := i % devices
		want := h.want
		if want == http.StatusNoContent {
			var add []string
			for _, s := range h.sets {
				if !known[d][s] && !contains(add, s) {
					add = append(add, s)
				}
			}
			if len(known[d])+len(add) > corpusBudget {
				want = http.StatusForbidden
			} else {
				for _, s := range add {
					known[d][s] = true
				}
				rows[d] += h.points
			}
		}
		body, header := h.body, map[string]string{}
		if h.gzip {
			body, header["Content-Encoding"] = gzBytes(h.body), "gzip"
		}
		status, ans := rawWrite(t, l.URL, envs[d].InfluxOrg, bucket, envs[d].InfluxToken, body, header)
		if status != want {
			t.Errorf("body %d (%s) from device %d: %d %v, want %d", i, h.name, d, status, ans, want)
		}
	}
	series := seriesOfDevices(t, admin, bucket)
	for d, env := range envs {
		if got := series[env.ID]; got.sets > corpusBudget || got.sets != len(known[d]) || got.rows != rows[d] {
			t.Errorf("device %s in InfluxDB: %d tag sets, %d rows; want %d tag sets (budget %d) and %d rows",
				env.ID, got.sets, got.rows, len(known[d]), corpusBudget, rows[d])
		}
	}

	// 20,000 distinct tag values in one request, and 5,000 (at the point cap): refused, no new series
	before := seriesOfDevices(t, admin, bucket)[envs[0].ID]
	t0 := time.Now().Add(-30 * time.Minute)
	for _, n := range []int{20_000, 5_000} {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "environment,TemperatureSensor=s%06d Temperature=1 %d\n", i, t0.Add(time.Duration(i)*time.Millisecond).UnixNano())
		}
		status, ans := rawWrite(t, l.URL, envs[0].InfluxOrg, bucket, envs[0].InfluxToken, gzBytes([]byte(b.String())), map[string]string{"Content-Encoding": "gzip"})
		if status != http.StatusRequestEntityTooLarge && status != http.StatusForbidden {
			t.Errorf("%d distinct tag values: %d %v, want refused (413 or 403)", n, status, ans)
		}
		if after := seriesOfDevices(t, admin, bucket)[envs[0].ID]; after != before {
			t.Errorf("%d distinct tag values: %+v in InfluxDB after, %+v before", n, after, before)
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func gzBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

type deviceSeries struct{ sets, rows int }

// seriesOfDevices counts per clientId the distinct tag sets and the rows in bucket, over every measurement. count()
// runs in storage (one row per series), so the answer stays small however many points the corpus wrote.
func seriesOfDevices(t *testing.T, c *influx.Client, bucket string) map[string]deviceSeries {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sets := map[string]map[string]bool{}
	rows := map[string]int{}
	skip := map[string]bool{"_value": true, "_time": true, "_field": true, "_start": true, "_stop": true, "result": true, "table": true}
	err := c.QueryRows(ctx, `from(bucket: b) |> range(start: 0) |> count()`, influx.Extern{"b": bucket}, func(v map[string]any) error {
		var parts []string
		for k, x := range v {
			if !skip[k] && x != nil {
				parts = append(parts, fmt.Sprintf("%s=%v", k, x))
			}
		}
		sortStrings(parts)
		dev, _ := v["clientId"].(string)
		if sets[dev] == nil {
			sets[dev] = map[string]bool{}
		}
		sets[dev][strings.Join(parts, ",")] = true
		n, _ := v["_value"].(int64)
		rows[dev] += int(n)
		return nil
	})
	if err != nil {
		t.Fatalf("counting series: %v", err)
	}
	out := map[string]deviceSeries{}
	for d, s := range sets {
		out[d] = deviceSeries{sets: len(s), rows: rows[d]}
	}
	return out
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// hostileCorpus builds the bodies (deterministic: a fixed seed). Valid bodies use a few tag values each, so some
// fit a device's budget and some do not; the rest are refused for what they are.
func hostileCorpus(t0 time.Time) []hostile {
	r := rand.New(rand.NewPCG(21, 2026))
	var out []hostile
	ts := t0.UnixNano()
	next := func() int64 { ts += int64(time.Millisecond); return ts }
	valid := func(name string, values []string, gz bool) hostile {
		var b strings.Builder
		var sets []string
		for _, v := range values {
			fmt.Fprintf(&b, "environment,TemperatureSensor=%s Temperature=%d,CO2=%di %d\n", v, r.IntN(40), r.IntN(2000), next())
			if !contains(sets, v) {
				sets = append(sets, v)
			}
		}
		return hostile{name: name, body: []byte(b.String()), gzip: gz, want: http.StatusNoContent, sets: sets, points: 2 * len(values)}
	}
	refused := func(name string, want int, body string, gz bool) hostile {
		return hostile{name: name, body: []byte(body), gzip: gz, want: want}
	}
	line := func(tags, fields string) string {
		return fmt.Sprintf("environment%s %s %d", tags, fields, next())
	}
	// valid bodies: 1-4 values out of a pool of 12 real-looking sensor names (a device ends past its budget of 8)
	pool := []string{"BME280", "SHT31", "SCD30", "virtual_TemperatureSensor", "DHT22", "BMP180", "HTU21D", "SI7021",
		"NEO-6M", "sht3x.0", "AHT20", "MCP9808"}
	for i := range 60 {
		n := 1 + r.IntN(4)
		vals := make([]string, n)
		for j := range vals {
			vals[j] = pool[r.IntN(len(pool))]
		}
		out = append(out, valid(fmt.Sprintf("valid %d", i), vals, i%2 == 0))
	}
	// tag-value explosions: more distinct values than any budget, in one body
	for i, n := range []int{9, 10, 16, 32, 33, 100, 500, 1000, 2000, 4999, 5000} {
		vals := make([]string, n)
		for j := range vals {
			vals[j] = fmt.Sprintf("x%d_%05d", i, j)
		}
		h := valid(fmt.Sprintf("explosion %d", n), vals, true)
		h.want = http.StatusForbidden
		h.sets = nil
		out = append(out, h)
	}
	for i := range 20 { // random-length explosions with random values
		n := corpusBudget + 1 + r.IntN(300)
		vals := make([]string, n)
		for j := range vals {
			vals[j] = fmt.Sprintf("r%08x", r.Uint32())
		}
		h := valid(fmt.Sprintf("random explosion %d (%d values)", i, n), vals, i%2 == 1)
		h.want = http.StatusForbidden
		h.sets = nil
		out = append(out, h)
	}
	// escapes and values outside the tag pattern: 400
	for _, v := range []string{`BME\ 280`, `a\,b`, `a\=b`, `"quoted"`, `tab\	x`, `_hidden`, `-dash`, `.dot`, `é`, `ü280`,
		`a/b`, `a:b`, `a+b`, `a@b`, `a#b`, `a$b`, `a%b`, `a*b`, `日本`, `x` + strings.Repeat("y", 32),
		strings.Repeat("z", 200), `a\\b`, `\`, `a\ `, `{json}`, `a;b`, `a|b`, `a~b`, `a'b`, "a\x01b"} {
		out = append(out, refused("tag value "+v, http.StatusBadRequest, line(",TemperatureSensor="+v, "Temperature=1"), false))
	}
	// unknown or forged names: 400, a forged clientId 403
	out = append(out,
		refused("unknown tag", 400, line(",Room=kitchen", "Temperature=1"), false),
		refused("unknown measurement", 400, fmt.Sprintf("cpu,host=a usage=1 %d", next()), false),
		refused("downsampled measurement", 400, fmt.Sprintf("environment_1h,agg=mean Temperature=1 %d", next()), false),
		refused("unknown field", 400, line("", "Temp=1"), false),
		refused("agg tag", 400, line(",agg=mean", "Temperature=1"), false),
		refused("generated tag", 400, line(",generated=true", "Temperature=1"), false),
		refused("forged clientId", 403, line(",clientId=someone-else", "Temperature=1"), false),
		refused("clientId twice, neither the device's", 403, line(",clientId=a,clientId=b", "Temperature=1"), false),
		refused("escaped measurement", 400, fmt.Sprintf(`environ\ ment Temperature=1 %d`, next()), false),
	)
	// huge counts and numbers
	out = append(out,
		refused("5,001 points", 413, strings.Repeat(line("", "Temperature=1")+"\n", 1)+manyLines(5001, next), true),
		refused("20,000 points", 413, manyLines(20_000, next), true),
		refused("integer overflow", 400, line("", "CO2=99999999999999999999i"), false),
		refused("float overflow", 400, line("", "Temperature=1e999"), false),
		refused("timestamp overflow", 400, "environment Temperature=1 99999999999999999999", false),
		refused("timestamp far future", 400, fmt.Sprintf("environment Temperature=1 %d", time.Now().Add(24*time.Hour).UnixNano()), false),
		refused("negative timestamp", 400, "environment Temperature=1 -1", false),
		refused("string into float", 400, line("", `Temperature="hot"`), false),
		refused("huge string", 400, line("", `Temperature="`+strings.Repeat("a", 100_000)+`"`), false),
		refused("10,000 fields", 400, line("", strings.Repeat("Temperature=1,", 9_999)+"Temperature=1"), false),
	)
	// bombs: 413 past the decompressed cap, 400 for what is not gzip or not line protocol
	out = append(out,
		refused("zeros bomb", 413, string(make([]byte, 40<<20)), true),
		refused("comment bomb", 413, "#"+strings.Repeat("x", 8<<20), true),
		refused("newline bomb", 413, strings.Repeat("\n", 8<<20), true),
		refused("gzip in gzip", 400, string(gzBytes([]byte(line("", "Temperature=1")))), true),
		refused("binary", 400, string([]byte{0, 1, 2, 3, 255, 254}), false),
		refused("empty", 400, "", false),
		refused("only blank lines", 400, "\n\n\r\n", false),
		refused("only a comment", 400, "# nothing", false),
	)
	// mixed valid and invalid lines: the whole body refused
	for i := range 40 {
		good := make([]string, 1+r.IntN(20))
		for j := range good {
			good[j] = line(",TemperatureSensor="+pool[r.IntN(3)], "Temperature=2")
		}
		bad := []string{line(",TemperatureSensor=bad value", "Temperature=1"), line("", "CO2=1.5"), line("", "Nope=1"),
			fmt.Sprintf("environment Temperature= %d", next()), line(",TemperatureSensor="+strings.Repeat("q", 40), "Temperature=1")}[i%5]
		at := r.IntN(len(good) + 1)
		lines := append(append(append([]string{}, good[:at]...), bad), good[at:]...)
		out = append(out, refused(fmt.Sprintf("mixed %d (bad line %d)", i, at+1), 400, strings.Join(lines, "\n"), i%3 == 0))
	}
	// valid bodies interleaved at the end again: a device past its budget keeps writing its known tag sets
	for i := range 40 {
		out = append(out, valid(fmt.Sprintf("valid late %d", i), []string{pool[r.IntN(len(pool))]}, i%2 == 0))
	}
	return out
}

func manyLines(n int, next func() int64) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "environment,TemperatureSensor=m%06d Temperature=1 %d\n", i, next())
	}
	return b.String()
}

// TestDeleteWhileWritingThroughLocalAPI: a device keeps writing with its credential while it is deleted with
// ?data=true (a gateway instance may still accept the credential from its cache). Registering the id again is
// refused until the second data pass has run; then no point of the device is left in any measurement, and the
// device registered again shows no history.
func TestDeleteWhileWritingThroughLocalAPI(t *testing.T) {
	srv := influxtest.Shared(t)
	l := localapitest.Start(t, srv, localapitest.Options{Params: "DeviceWrites=gateway PurgeDelaySeconds=35 WritePointRate=-1"})
	admin := srv.Client(t)
	id := "purgee2e-" + influxtest.RandomID(4)
	env := register(t, l, id)
	count := func() int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n := 0
		err := admin.QueryRows(ctx, `from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r.clientId == id)`,
			influx.Extern{"b": env.InfluxBucket, "id": id}, func(map[string]any) error { n++; return nil })
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	client := &http.Client{Timeout: 30 * time.Second}
	write := func(i int) int {
		body := fmt.Sprintf("environment,TemperatureSensor=BME280 Temperature=%d,CO2=%di %d", i, i, time.Now().Add(-time.Duration(i)*time.Millisecond).UnixNano())
		req, _ := http.NewRequest("POST", l.URL+"/api/v2/write?org="+env.InfluxOrg+"&bucket="+env.InfluxBucket, strings.NewReader(body))
		req.Header.Set("Authorization", "Token "+env.InfluxToken)
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 5 {
		if s := write(i); s != http.StatusNoContent {
			t.Fatalf("write %d before the delete: %d", i, s)
		}
	}
	stop := make(chan struct{})
	done := make(chan map[int]int, 1)
	go func() { // the device keeps writing with its old credential, 10 writes a second at most, bounded
		answers := map[int]int{}
		for i := 5; i < 5+1200; i++ {
			select {
			case <-stop:
				done <- answers
				return
			case <-time.After(100 * time.Millisecond):
			}
			answers[write(i)]++
		}
		done <- answers
	}()
	if status, body := call(t, l, "DELETE", "/api/devices/"+id+"?data=true"); status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", status, body)
	}
	if status, body := call(t, l, "POST", "/api/devices/"+id); status != http.StatusConflict {
		t.Errorf("registering again at once: %d %.200s, want 409 until the second pass", status, body)
	}
	// wait for the second pass (35 s after the delete): registration is refused until it has run
	var again deviceapi.EnvConfig
	for attempt := 0; ; attempt++ {
		if attempt == 60 {
			t.Fatal("the id could not be registered again within 120 s of the delete")
		}
		time.Sleep(2 * time.Second)
		status, body := call(t, l, "POST", "/api/devices/"+id)
		if status == http.StatusCreated {
			if err := json.Unmarshal(body, &again); err != nil {
				t.Fatal(err)
			}
			break
		}
		if status != http.StatusConflict {
			t.Fatalf("registering again: %d %.200s, want 409 then 201", status, body)
		}
	}
	close(stop)
	answers := <-done
	t.Logf("old credential's writes during and after the delete: %v", answers)
	if answers[http.StatusUnauthorized] == 0 {
		t.Errorf("the old credential was never refused: %v", answers)
	}
	if n := count(); n != 0 {
		t.Errorf("%d rows of %s left after the second pass, want 0", n, id)
	}
	status, body := call(t, l, "GET", "/api/devices/"+id+"/measurements")
	var m struct {
		Time []any `json:"time"`
	}
	if err := json.Unmarshal(body, &m); status != http.StatusOK || err != nil || len(m.Time) != 0 {
		t.Errorf("the device registered again: measurements %d %.300s, want no history (no time)", status, body)
	}
}
