package gateway

import (
	"bytes"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/api"
	"github.com/iot-center/iot-center-serverless/shared/registry"
	"github.com/iot-center/iot-center-serverless/shared/store"
)

// clock is a settable time for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// at is the tests' point time: a whole second an hour ago (inside every bucket's retention, not in the future).
func at() time.Time { return time.Now().Add(-time.Hour).Truncate(time.Second).UTC() }

const seedTags = "CO2Sensor=virtual_CO2Sensor,GPSSensor=virtual_GPSSensor,HumiditySensor=virtual_HumiditySensor," +
	"PressureSensor=virtual_PressureSensor,TVOCSensor=virtual_TVOCSensor,TemperatureSensor=virtual_TemperatureSensor"

// seedLine is a point as the seed's clients write it.
func seedLine(client string, t time.Time) string {
	tags := seedTags
	if client != "" {
		tags += ",clientId=" + client
	}
	return fmt.Sprintf("environment,%s CO2=400i,Humidity=40.5,Lat=50.1,Lon=14.4,Pressure=1000.5,TVOC=300i,Temperature=21.5 %d",
		tags, t.UnixNano())
}

func TestWriteAccepted(t *testing.T) {
	t0 := at()
	ts := t0.Format(time.RFC3339Nano)
	seedPoints := func(ts string) []string {
		var out []string
		for _, f := range []string{"CO2 400", "Humidity 40.5", "Lat 50.1", "Lon 14.4", "Pressure 1000.5", "TVOC 300", "Temperature 21.5"} {
			out = append(out, "environment dev-a "+f+" "+ts)
		}
		return out
	}
	tests := []struct {
		name string
		r    func(f *fixture) req
		want []string
	}{
		{"seed line with its clientId", func(*fixture) req { return req{body: []byte(seedLine(devA, t0))} }, seedPoints(ts)},
		{"clientId added when missing", func(*fixture) req { return req{body: []byte(seedLine("", t0))} }, seedPoints(ts)},
		{"gzip body, Bearer scheme", func(*fixture) req {
			return req{body: []byte(seedLine(devA, t0)), gzip: true, auth: "Bearer " + credA}
		}, seedPoints(ts)},
		{"precision s", func(f *fixture) req {
			return req{query: f.q("precision=s"), body: []byte(fmt.Sprintf("environment Temperature=1.5 %d", t0.Unix()))}
		}, []string{"environment dev-a Temperature 1.5 " + ts}},
		{"precision ms", func(f *fixture) req {
			return req{query: f.q("precision=ms"), body: []byte(fmt.Sprintf("environment CO2=5i %d", t0.UnixMilli()))}
		}, []string{"environment dev-a CO2 5 " + ts}},
		{"precision us", func(f *fixture) req {
			return req{query: f.q("precision=us"), body: []byte(fmt.Sprintf("environment TVOC=7i %d", t0.UnixMicro()))}
		}, []string{"environment dev-a TVOC 7 " + ts}},
		{"no timestamp: the gateway's time", func(*fixture) req { return req{body: []byte("environment Lat=1")} },
			[]string{"environment dev-a Lat 1 " + t0.Add(time.Minute).Format(time.RFC3339Nano)}},
		{"unsorted tags, blank lines, a comment, CRLF", func(*fixture) req {
			return req{body: []byte(fmt.Sprintf("\n# a comment\r\nenvironment,clientId=dev-a,CO2Sensor=x Humidity=2 %d\r\n\n", t0.UnixNano()))}
		}, []string{"environment dev-a Humidity 2 " + ts}},
		{"real sensor names as tag values", func(*fixture) req {
			return req{body: []byte(fmt.Sprintf("environment,TemperatureSensor=BME280,GPSSensor=NEO-6M,CO2Sensor=sht3x.0 Humidity=2 %d", t0.UnixNano()))}
		}, []string{"environment dev-a Humidity 2 " + ts}},
		{"bucket named by id, org by id", func(f *fixture) req {
			id, err := f.admin.BucketID(t.Context(), f.bucket)
			if err != nil {
				t.Fatal(err)
			}
			return req{query: "orgID=" + f.srv.OrgID + "&bucket=" + id, body: []byte(fmt.Sprintf("environment Lon=3 %d", t0.UnixNano()))}
		}, []string{"environment dev-a Lon 3 " + ts}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: t0.Add(time.Minute)}
			f := newFixture(t, Options{Now: c.now})
			status, _, body := f.post(tc.r(f))
			if status != http.StatusNoContent {
				t.Fatalf("status %d %v, want 204", status, body)
			}
			if got := f.points(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("points\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// q is the fixture's org and bucket plus extra query parameters.
func (f *fixture) q(extra string) string {
	return "org=" + f.srv.Org + "&bucket=" + f.bucket + "&" + extra
}

func TestWriteRefusedWritesNothing(t *testing.T) {
	t0 := at()
	line := func(fields string) []byte { return []byte(fmt.Sprintf("environment %s %d", fields, t0.UnixNano())) }
	good := seedLine(devA, t0)
	bomb := make([]byte, MaxDecodedBody+1)
	tests := []struct {
		name       string
		r          func(f *fixture) req
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{"no token", func(*fixture) req { return req{auth: "-", body: []byte(good)} }, 401, "unauthorized", "unauthorized access"},
		{"unknown token", func(*fixture) req { return req{auth: "Token nope", body: []byte(good)} }, 401, "unauthorized", "unauthorized access"},
		{"other scheme", func(*fixture) req { return req{auth: "Basic " + credA, body: []byte(good)} }, 401, "unauthorized", "unauthorized access"},
		{"forged clientId", func(*fixture) req { return req{body: []byte(seedLine("dev-b", t0))} }, 403, "forbidden",
			`line 1: clientId "dev-b" is not the authenticated device's id`},
		{"clientId twice", func(*fixture) req {
			return req{body: []byte(fmt.Sprintf("environment,clientId=dev-a,clientId=dev-b Temperature=1 %d", t0.UnixNano()))}
		}, 400, "invalid", "line 1: tag clientId given twice"},
		{"another measurement", func(*fixture) req {
			return req{body: []byte(fmt.Sprintf("environment_1h,clientId=dev-a Temperature=1 %d", t0.UnixNano()))}
		}, 400, "invalid", `line 1: measurement "environment_1h" is not in the schema`},
		{"unknown field", func(*fixture) req { return req{body: line("Temp=1")} }, 400, "invalid",
			`line 1: field "Temp" is not in the schema of measurement environment`},
		{"unknown tag", func(*fixture) req {
			return req{body: []byte(fmt.Sprintf("environment,room=1 Temperature=1 %d", t0.UnixNano()))}
		}, 400, "invalid", `line 1: tag "room" is not in the schema of measurement environment`},
		{"the generated tag (write-missing's mark)", func(*fixture) req {
			return req{body: []byte(fmt.Sprintf("environment,generated=true Temperature=1 %d", t0.UnixNano()))}
		}, 400, "invalid", `line 1: tag "generated" is not in the schema of measurement environment`},
		{"tag value longer than the schema allows", func(*fixture) req {
			return req{body: []byte(fmt.Sprintf("environment,TemperatureSensor=%s Temperature=1 %d", strings.Repeat("a", 33), t0.UnixNano()))}
		}, 400, "invalid", `line 1: tag TemperatureSensor value "aaaa`},
		{"tag value with an escaped space", func(*fixture) req {
			return req{body: []byte(fmt.Sprintf(`environment,TemperatureSensor=BME\ 280 Temperature=1 %d`, t0.UnixNano()))}
		}, 400, "invalid", `line 1: tag TemperatureSensor value "BME 280" does not match ^(?:[A-Za-z0-9][A-Za-z0-9_.-]*)$`},
		{"tag value outside the pattern on line 3, same tag valid before", func(*fixture) req {
			return req{body: []byte(good + "\n" + good + "\n" + strings.Replace(good, "virtual_CO2Sensor", "_x", 1))}
		}, 400, "invalid", `line 3: tag CO2Sensor value "_x" does not match`},
		{"Temperature as string", func(*fixture) req { return req{body: line(`Temperature="hot"`)} }, 400, "invalid",
			"line 1: field Temperature of measurement environment must be float, got string"},
		{"Humidity as integer", func(*fixture) req { return req{body: line("Humidity=40i")} }, 400, "invalid",
			"line 1: field Humidity of measurement environment must be float, got integer"},
		{"Pressure as boolean", func(*fixture) req { return req{body: line("Pressure=true")} }, 400, "invalid",
			"line 1: field Pressure of measurement environment must be float, got boolean"},
		{"Lat as unsigned", func(*fixture) req { return req{body: line("Lat=50u")} }, 400, "invalid",
			"line 1: field Lat of measurement environment must be float, got unsigned"},
		{"Lon as string", func(*fixture) req { return req{body: line(`Lon="14"`)} }, 400, "invalid",
			"line 1: field Lon of measurement environment must be float, got string"},
		{"CO2 as float", func(*fixture) req { return req{body: line("CO2=400")} }, 400, "invalid",
			"line 1: field CO2 of measurement environment must be integer, got float"},
		{"TVOC as string", func(*fixture) req { return req{body: line(`TVOC="300"`)} }, 400, "invalid",
			"line 1: field TVOC of measurement environment must be integer, got string"},
		{"field twice", func(*fixture) req { return req{body: line("CO2=1i,CO2=2i")} }, 400, "invalid", "line 1: field CO2 given twice"},
		{"future timestamp", func(*fixture) req {
			return req{body: []byte(fmt.Sprintf("environment Temperature=1 %d", time.Now().Add(11*time.Minute).UnixNano()))}
		}, 400, "invalid", "is more than 10m0s in the future"},
		{"broken line protocol", func(*fixture) req { return req{body: []byte("environment Temperature=")} }, 400, "invalid", "line 1, column"},
		{"one bad line in a good batch", func(*fixture) req {
			return req{body: []byte(good + "\n" + good + "\n" + seedLine(devA, t0)[:40] + "\n" + good + "\n")}
		}, 400, "invalid", "line 3, column"},
		{"one bad line in a good gzip batch", func(*fixture) req {
			return req{gzip: true, body: []byte(good + "\n" + string(line("CO2=1.5")) + "\n" + good)}
		}, 400, "invalid", "line 2: field CO2 of measurement environment must be integer, got float"},
		{"another bucket", func(f *fixture) req { return req{query: "org=" + f.srv.Org + "&bucket=other", body: []byte(good)} },
			404, "not found", `bucket "other" not found`},
		{"another org", func(f *fixture) req { return req{query: "org=other&bucket=" + f.bucket, body: []byte(good)} },
			404, "not found", `organization name "other" not found`},
		{"another org id", func(f *fixture) req {
			return req{query: "orgID=0123456789abcdef&bucket=" + f.bucket, body: []byte(good)}
		},
			404, "not found", `organization "0123456789abcdef" not found`},
		{"no org", func(f *fixture) req { return req{query: "bucket=" + f.bucket, body: []byte(good)} }, 400, "invalid", "org"},
		{"bad precision", func(f *fixture) req { return req{query: f.q("precision=m"), body: []byte(good)} }, 400, "invalid", "invalid precision"},
		{"empty body", func(*fixture) req { return req{body: nil} }, 400, "invalid", "writing requires points"},
		{"oversize body", func(*fixture) req { return req{body: []byte(strings.Repeat(good+"\n", MaxBody/len(good)+1))} },
			413, "request too large", "request body is larger than 4194304 bytes"},
		{"zip bomb", func(*fixture) req { return req{body: bomb, gzip: true} }, 413, "request too large",
			"decompressed request body is larger than"},
		{"not gzip", func(*fixture) req {
			return req{body: []byte(good), headers: map[string]string{"Content-Encoding": "gzip"}}
		}, 400, "invalid", "not valid gzip"},
		{"other encoding", func(*fixture) req {
			return req{body: []byte(good), headers: map[string]string{"Content-Encoding": "br"}}
		}, 400, "invalid", "Content-Encoding"},
	}
	f := newFixture(t, Options{Rate: -1})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			status, _, body := f.post(tc.r(f))
			if status != tc.wantStatus || body["code"] != tc.wantCode || !strings.Contains(str(body["message"]), tc.wantMsg) {
				t.Errorf("got %d %v, want %d code %q message containing %q", status, body, tc.wantStatus, tc.wantCode, tc.wantMsg)
			}
			if got := f.points(); len(got) != 0 {
				t.Errorf("a refused write wrote %d values: %q", len(got), got)
			}
		})
	}
}

// TestTooOldForRetention: a point older than the bucket's retention is refused whole (InfluxDB itself would drop
// it and write the rest of the batch).
func TestTooOldForRetention(t *testing.T) {
	srv := influxtest.Shared(t)
	bucket := newRetentionBucket(t, srv, time.Hour)
	f := newFixture(t, Options{Bucket: bucket})
	old := time.Now().Add(-2 * time.Hour)
	status, _, body := f.post(req{body: []byte(seedLine(devA, at().Add(59*time.Minute)) + "\n" + seedLine(devA, old))})
	if status != 400 || !strings.Contains(str(body["message"]), "line 2: timestamp") || !strings.Contains(str(body["message"]), "retention") {
		t.Errorf("got %d %v, want 400 naming line 2's timestamp and the retention", status, body)
	}
	if got := f.points(); len(got) != 0 {
		t.Errorf("wrote %q", got)
	}
}

// TestTypeConflictPassesInfluxDB422: a field already stored with another type is a conflict only InfluxDB sees; its
// 422 reaches the client as InfluxDB wrote it.
func TestTypeConflictPassesInfluxDB422(t *testing.T) {
	f := newFixture(t, Options{})
	t0 := at()
	if err := f.admin.WriteLines(t.Context(), f.bucket, []byte(fmt.Sprintf("environment,clientId=dev-a Temperature=\"warm\" %d\n", t0.UnixNano()))); err != nil {
		t.Fatal(err)
	}
	status, _, body := f.post(req{body: []byte(fmt.Sprintf("environment Temperature=21.5 %d", t0.Add(time.Second).UnixNano()))})
	if status != http.StatusUnprocessableEntity || body["code"] != "unprocessable entity" || !strings.Contains(str(body["message"]), "field type conflict") {
		t.Errorf("got %d %v, want InfluxDB's 422 field type conflict", status, body)
	}
}

func TestRateLimitPerDevice(t *testing.T) {
	c := &clock{t: time.Now()}
	f := newFixture(t, Options{Rate: 1, Burst: 2, Now: c.now})
	f.creds.set("cred-b", "dev-b")
	body := []byte("environment Temperature=1")
	for i := 0; i < 2; i++ {
		if status, _, b := f.post(req{body: body}); status != 204 {
			t.Fatalf("write %d within the burst: %d %v", i, status, b)
		}
	}
	status, h, b := f.post(req{body: body})
	if status != 429 || b["code"] != "too many requests" || h.Get("Retry-After") != "1" {
		t.Errorf("third write: %d Retry-After %q %v, want 429 with Retry-After 1", status, h.Get("Retry-After"), b)
	}
	if status, _, b := f.post(req{body: body, auth: "Token cred-b"}); status != 204 {
		t.Errorf("another device is not limited by dev-a's writes: %d %v", status, b)
	}
	c.t = c.t.Add(time.Second)
	if status, _, b := f.post(req{body: body}); status != 204 {
		t.Errorf("a second later: %d %v, want 204", status, b)
	}
}

// revoke records a credential change of the device at t as the registry does (the minute's revocation item).
func revoke(t *testing.T, table *store.Table, id string, at time.Time) {
	t.Helper()
	_, err := table.DB.UpdateItem(t.Context(), &dynamodb.UpdateItemInput{TableName: &table.Name,
		Key: registry.RevocationKey(at), UpdateExpression: aws.String("ADD ids :id"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":id": &types.AttributeValueMemberSS{Value: []string{id}}}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCredentialCache: an accepted credential costs one registry lookup for the cache's TTL, minutes of writes
// included; a rotation or deletion (the registry's revocation item, then the change) is refused at the first
// write after the next revocation check, and the new credential works; a registry outage is a 503 with Retry-After
// and is not cached; after a gap longer than the revocation items are read for, the cache starts afresh.
func TestCredentialCache(t *testing.T) {
	c := &clock{t: time.Now()}
	table := testenv.StateTable(t, nil)
	f := newFixtureWith(t, table, Options{Rate: -1, PointRate: -1, Now: c.now})
	write := func(cred string) int {
		t.Helper()
		status, _, _ := f.post(req{auth: "Token " + cred, body: []byte("environment Temperature=1")})
		return status
	}
	for i := 0; i < 10; i++ { // a device writing once a minute
		if status := write(credA); status != 204 {
			t.Fatalf("write %d: %d", i, status)
		}
		c.add(time.Minute)
	}
	if status := write(credA); status != 204 { // reads the revocations of the last minute: none
		t.Fatalf("write after 10 minutes: %d", status)
	}
	if got := f.creds.lookups(); got != 1 {
		t.Errorf("registry lookups for 11 writes over 10 minutes = %d, want 1", got)
	}
	// a rotation: the revocation item first, then the device's new credential
	revoke(t, table, devA, c.now())
	f.creds.set(credA, "")
	f.creds.set("cred-a-new", devA)
	if status := write(credA); status != 204 {
		t.Errorf("right after the rotation: %d, want 204 (revocations read every %s)", status, DefaultRevocationCheck)
	}
	c.add(DefaultRevocationCheck)
	if status := write(credA); status != 401 {
		t.Errorf("after the revocation check: %d, want 401", status)
	}
	if status := write("cred-a-new"); status != 204 {
		t.Errorf("the new credential: %d, want 204", status)
	}
	// registry down: not cached
	f.creds.err = apiUnavailable()
	status, h, b := f.post(req{auth: "Token cred-other", body: []byte("environment Temperature=1")})
	if status != 503 || h.Get("Retry-After") == "" || b["code"] != "unavailable" {
		t.Errorf("registry down: %d Retry-After %q %v, want 503 with Retry-After", status, h.Get("Retry-After"), b)
	}
	f.creds.err = nil
	f.creds.set("cred-other", "dev-other")
	if status := write("cred-other"); status != 204 {
		t.Errorf("registry back: %d, want 204 (outages are not cached)", status)
	}
	// a long freeze: the revocation items of the gap are not read, the cache is dropped
	before := f.creds.lookups()
	c.add(maxRevocationGap + time.Minute)
	if status := write("cred-a-new"); status != 204 || f.creds.lookups() != before+1 {
		t.Errorf("after a long gap: %d, %d lookups, want 204 and one more lookup", status, f.creds.lookups()-before)
	}
}

// TestCredentialCacheStoreDown: with the state table unreachable, a credential verified within the revocation
// window is still accepted; one verified earlier is checked again (503 when the registry cannot be read either).
func TestCredentialCacheStoreDown(t *testing.T) {
	c := &clock{t: time.Now()}
	var down atomic.Bool
	f := newFixtureWith(t, testenv.StateTable(t, &down), Options{Rate: -1, PointRate: -1, Now: c.now})
	write := func() int {
		t.Helper()
		status, _, _ := f.post(req{body: []byte("environment Temperature=1")})
		return status
	}
	if status := write(); status != 204 {
		t.Fatalf("first write: %d", status)
	}
	down.Store(true)
	f.creds.err = apiUnavailable() // the registry reads the same table
	c.add(RevocationWindow - time.Second)
	if status := write(); status != 204 {
		t.Errorf("store down, verified %s ago: %d, want 204", RevocationWindow-time.Second, status)
	}
	c.add(2 * time.Second)
	if status := write(); status != 503 {
		t.Errorf("store down, verified %s ago: %d, want 503", RevocationWindow+time.Second, status)
	}
	down.Store(false)
	f.creds.err = nil
	if status := write(); status != 204 {
		t.Errorf("store back: %d, want 204", status)
	}
}

func TestTTLBound(t *testing.T) {
	c := newAuthCache(nil, 5*time.Hour, time.Second, 10, time.Now)
	if c.ttl != MaxAuthCacheTTL {
		t.Errorf("ttl = %s, want it capped at %s", c.ttl, MaxAuthCacheTTL)
	}
	// without revocation items, an accepted credential is reused for the revocation window only
	clk := &clock{t: time.Now()}
	creds := &staticCredentials{ids: map[string]string{credA: devA}}
	c = newAuthCache(nil, time.Hour, time.Second, 10, clk.now)
	for _, step := range []time.Duration{0, RevocationWindow - time.Second, 2 * time.Second} {
		clk.add(step)
		if _, err := c.authenticate(t.Context(), creds, credA); err != nil {
			t.Fatal(err)
		}
	}
	if got := creds.lookups(); got != 2 {
		t.Errorf("%d lookups, want 2 (the second past the window)", got)
	}
}

func TestCredentialHeader(t *testing.T) {
	tests := []struct {
		header string
		want   string
		ok     bool
	}{
		{"Token abc", "abc", true}, {"Bearer abc", "abc", true}, {"token  abc ", "abc", true}, {"BEARER abc", "abc", true},
		{"Basic abc", "", false}, {"Token", "", false}, {"Token ", "", false}, {"", "", false}, {"abc", "", false},
		{"Token " + strings.Repeat("a", maxCredential+1), "", false},
	}
	for _, tc := range tests {
		r, _ := http.NewRequest("POST", "/", nil)
		r.Header.Set("Authorization", tc.header)
		got, ok := credential(r)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("credential(%q) = %q, %v; want %q, %v", tc.header, got, ok, tc.want, tc.ok)
		}
	}
}

func TestLimiterForgetsIdleDevicesWhenFull(t *testing.T) {
	c := &clock{t: time.Now()}
	l := newLimiter(1, 1, 3, c.now)
	for i := 0; i < 3; i++ {
		if ok, _ := l.take(strconv.Itoa(i), 1); !ok {
			t.Fatalf("device %d refused its first write", i)
		}
	}
	c.t = c.t.Add(2 * time.Second) // every bucket refilled: all idle
	if ok, _ := l.take("new", 1); !ok || len(l.m) != 1 {
		t.Errorf("after the idle ones were forgotten: ok %v, tracked %d, want true, 1", ok, len(l.m))
	}
	if ok, wait := l.take("new", 1); ok || wait <= 0 || wait > time.Second {
		t.Errorf("second write within the second: ok %v wait %s, want refused with 0 < wait <= 1s", ok, wait)
	}
}

// TestInfluxDBDownIs503: with InfluxDB stopped, a write is 503 with Retry-After (the client libraries retry), and
// works again once InfluxDB is back.
func TestInfluxDBDownIs503(t *testing.T) {
	srv := influxtest.Start(t)
	admin := srv.Client(t)
	bucket := srv.NewBucket(t, "down")
	g, err := NewService(&staticCredentials{ids: map[string]string{credA: devA}}, nil, admin, Options{Org: srv.Org, Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, srv: srv, admin: admin, bucket: bucket, g: g, h: api.Handler(g.Routes())}
	body := []byte("environment Temperature=1")
	if status, _, b := f.post(req{body: body}); status != 204 {
		t.Fatalf("before the outage: %d %v", status, b)
	}
	srv.Stop(t)
	status, h, b := f.post(req{body: body})
	if status != 503 || h.Get("Retry-After") == "" || b["code"] != "unavailable" {
		t.Errorf("InfluxDB down: %d Retry-After %q %v, want 503 with Retry-After", status, h.Get("Retry-After"), b)
	}
	srv.Restart(t)
	if status, _, b := f.post(req{body: body}); status != 204 {
		t.Errorf("InfluxDB back: %d %v, want 204", status, b)
	}
}

// TestMetrics: one EMF line per answer, by status, never naming the device.
func TestMetrics(t *testing.T) {
	var buf bytes.Buffer
	f := newFixture(t, Options{Metrics: &buf})
	f.post(req{body: []byte("environment Temperature=1\nenvironment Humidity=2")})
	f.post(req{auth: "-", body: []byte("environment Temperature=1")})
	out := buf.String()
	for _, want := range []string{`"GatewayPointsWritten":2`, `"Status":"204"`, `"GatewayWritesRefused":1`, `"Status":"401"`} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics %s lack %s", out, want)
		}
	}
	if strings.Contains(out, devA) {
		t.Errorf("metrics name the device: %s", out)
	}
}
