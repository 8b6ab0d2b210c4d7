// Package e2e_test runs the seed's story end to end: the local API (cmd/localapi, as a subprocess: the real
// builds, the real emulator, the real authorizer) in front of a real InfluxDB from influxtest.
package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/devstack"
	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/shared/deviceapi"
)

func TestMain(m *testing.M) {
	code := influxtest.Main(m)
	if api != nil {
		for _, line := range api.Refused() {
			fmt.Fprintln(os.Stderr, "FAIL: a DynamoDB call its function's template policy does not allow:", line)
			code = 1
		}
	}
	stopLocalAPI()
	os.Exit(code)
}

// localAPI is one cmd/localapi process shared by the tests of this binary (it builds every function once).
type localAPI struct {
	*devstack.LocalAPI
	Influx *influxtest.Server
	Bucket string
	dir    string
}

// Output returns what the local API and its functions logged so far.
func (l *localAPI) Output() string { return l.Logs.String() }

var (
	apiOnce sync.Once
	api     *localAPI
	apiErr  error
)

func shared(t *testing.T) *localAPI {
	t.Helper()
	srv := influxtest.Shared(t)
	apiOnce.Do(func() { api, apiErr = start(srv) })
	if apiErr != nil {
		t.Fatalf("starting the local API: %v", apiErr)
	}
	return api
}

func start(srv *influxtest.Server) (*localAPI, error) {
	dir, err := os.MkdirTemp("", "iot-e2e-")
	if err != nil {
		return nil, err
	}
	suffix := influxtest.RandomID(4)
	l := &localAPI{Influx: srv, Bucket: "e2e_data_" + suffix, dir: dir}
	l.LocalAPI, err = devstack.StartLocalAPI(devstack.LocalAPIOptions{Dir: dir, InfluxURL: srv.URL, InfluxToken: srv.Token,
		InfluxOrg: srv.Org, OperatorKey: "op-e2e-" + influxtest.RandomID(12), DeviceKey: "dev-e2e-" + influxtest.RandomID(12),
		Args: []string{"-pool", "2", "-pool-for", "EnvConfigFunction=4", "-parameter-overrides",
			fmt.Sprintf("DeviceWrites=direct InfluxBucket=%s InfluxBucketDownsampled=e2e_1h_%s", l.Bucket, suffix)}})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return l, nil
}

func stopLocalAPI() {
	if api != nil {
		_ = api.Stop()
		_ = os.RemoveAll(api.dir)
	}
}

// response is an answer of the local API.
type response struct{ devstack.Answer }

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.Body, err)
	}
}

// call sends method path to the local API with key as the bearer and body (when not nil) as JSON.
func call(t *testing.T, l *localAPI, method, path, key string, body any) response {
	t.Helper()
	var js []byte
	if body != nil {
		js, _ = json.Marshal(body)
	}
	ans, err := l.Send(method, path, key, string(js))
	if err != nil {
		t.Fatal(err)
	}
	return response{ans}
}

func want(t *testing.T, what string, r response, statuses ...int) {
	t.Helper()
	for _, s := range statuses {
		if r.Status == s {
			return
		}
	}
	t.Fatalf("%s: status %d %s, want %v", what, r.Status, r.Body, statuses)
}

// TestRefusedBeforeAnyFunctionRuns: without a key the authorizer refuses and the route's function never starts.
func TestRefusedBeforeAnyFunctionRuns(t *testing.T) {
	l := shared(t)
	// Only output produced from here on counts: other tests may have started these functions already (an
	// invocation always logs START/END lines, a refused request adds none).
	before := len(l.Output())
	for _, tc := range []struct{ method, path, key string }{
		{"GET", "/api/devices", ""},
		{"GET", "/api/devices", "wrong-key"},
		{"DELETE", "/api/devices/nobody", ""},
	} {
		r := call(t, l, tc.method, tc.path, tc.key, nil)
		if r.Status != http.StatusForbidden && r.Status != http.StatusUnauthorized {
			t.Errorf("%s %s with key %q = %d %s, want 401/403", tc.method, tc.path, tc.key, r.Status, r.Body)
		}
		if !strings.Contains(string(r.Body), `"message"`) {
			t.Errorf("%s %s body = %s, want API Gateway's {\"message\": ...}", tc.method, tc.path, r.Body)
		}
	}
	out := l.Output()[before:]
	for _, fn := range []string{"[DevicesFunction]", "[DeleteFunction]"} {
		if strings.Contains(out, fn) {
			t.Errorf("%s produced output: it ran for a refused request", fn)
		}
	}
	if !strings.Contains(out, "[AuthorizerFunction]") {
		t.Errorf("the authorizer never ran")
	}
	if r := call(t, l, "GET", "/api/health", "", nil); r.Status != http.StatusOK {
		t.Errorf("public /api/health = %d %s, want 200", r.Status, r.Body)
	}
	if r := call(t, l, "GET", "/api/nothing-here", l.OperatorKey, nil); r.Status != http.StatusNotFound || string(bytes.TrimSpace(r.Body)) != `{"message":"Not Found"}` {
		t.Errorf("unknown route = %d %s, want 404 {\"message\":\"Not Found\"}", r.Status, r.Body)
	}
}

// envConfig is the configuration the API answers (the registry's contract type, decoded as a device would).
type envConfig = deviceapi.EnvConfig

// writeAsDevice writes line protocol to InfluxDB with the device's own token, as an iot-center-v2 device does.
func writeAsDevice(t *testing.T, cfg envConfig, lp string) int {
	t.Helper()
	u := cfg.InfluxURL + "/api/v2/write?" + url.Values{"org": {cfg.InfluxOrg}, "bucket": {cfg.InfluxBucket}, "precision": {"s"}}.Encode()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(lp))
	req.Header.Set("Authorization", "Token "+cfg.InfluxToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSeedStory: register a device, get its config, write with its own token, write missing data until coverage is
// 100%, query the dashboard data, delete the device (its token stops working).
func TestSeedStory(t *testing.T) {
	l := shared(t)
	id := "e2e-dev-" + influxtest.RandomID(3)

	r := call(t, l, "POST", "/api/devices/"+id, l.OperatorKey, nil)
	want(t, "register", r, http.StatusOK, http.StatusCreated)
	var reg envConfig
	r.json(t, &reg)
	if reg.InfluxToken == "" || reg.ID != id || reg.InfluxBucket != l.Bucket {
		t.Fatalf("registration = %s", r.Body)
	}

	r = call(t, l, "GET", "/api/env/"+id, l.OperatorKey, nil)
	want(t, "config", r, http.StatusOK)
	var cfg envConfig
	r.json(t, &cfg)
	if cfg.InfluxToken != reg.InfluxToken || cfg.InfluxURL != l.Influx.URL {
		t.Fatalf("config token/url differ from the registration: %s", r.Body)
	}
	// The device itself, with its own token as the bearer, may read its configuration.
	r = call(t, l, "GET", "/api/env/"+id, cfg.InfluxToken, nil)
	want(t, "config with the device token", r, http.StatusOK)

	now := time.Now().Unix()
	lp := fmt.Sprintf("environment,clientId=%s Temperature=21.5,Humidity=40 %d\nenvironment,clientId=%s Temperature=22.0,Humidity=41 %d\n", id, now-120, id, now-60)
	if got := writeAsDevice(t, cfg, lp); got != http.StatusNoContent {
		t.Fatalf("device write with its own token = %d, want 204", got)
	}

	r = call(t, l, "POST", "/api/devices/"+id+"/write-missing", l.OperatorKey, map[string]int{"days": 1})
	want(t, "write missing", r, http.StatusAccepted, http.StatusOK)
	var plan struct {
		From, To time.Time
		Chunks   int
	}
	r.json(t, &plan)
	q := url.Values{"from": {plan.From.Format(time.RFC3339)}, "to": {plan.To.Format(time.RFC3339)}}.Encode()
	var cov struct {
		Percent  float64 `json:"percent"`
		Missing  int64   `json:"missing"`
		Expected int64   `json:"expected"`
	}
	for i := 0; i < 120; i++ { // bounded: 120 polls, 1 s apart
		r = call(t, l, "GET", "/api/devices/"+id+"/write-missing?"+q, l.OperatorKey, nil)
		want(t, "coverage", r, http.StatusOK)
		r.json(t, &cov)
		if cov.Percent == 100 {
			break
		}
		time.Sleep(time.Second)
	}
	if cov.Percent != 100 || cov.Missing != 0 || cov.Expected == 0 {
		t.Fatalf("coverage after write-missing = %+v, want 100%%", cov)
	}

	r = call(t, l, "GET", "/api/devices/"+id+"/measurements", l.OperatorKey, nil)
	want(t, "measurements", r, http.StatusOK)
	var m struct {
		Time   []any            `json:"time"`
		Values map[string][]any `json:"values"`
	}
	r.json(t, &m)
	if len(m.Time) == 0 || len(m.Values["Temperature"]) == 0 {
		t.Fatalf("measurements after backfill hold no points: %.300s", r.Body)
	}
	r = call(t, l, "GET", "/api/devices/"+id+"/summary", l.OperatorKey, nil)
	want(t, "summary", r, http.StatusOK)

	r = call(t, l, "GET", "/api/devices", l.OperatorKey, nil)
	want(t, "list", r, http.StatusOK)
	if !strings.Contains(string(r.Body), `"`+id+`"`) || strings.Contains(string(r.Body), reg.InfluxToken) {
		t.Fatalf("device list = %s, want the device and no token", r.Body)
	}

	r = call(t, l, "DELETE", "/api/devices/"+id, l.OperatorKey, nil)
	want(t, "delete", r, http.StatusNoContent, http.StatusOK)
	r = call(t, l, "GET", "/api/devices", l.OperatorKey, nil)
	want(t, "list after delete", r, http.StatusOK)
	if strings.Contains(string(r.Body), `"`+id+`"`) {
		t.Errorf("deleted device still listed: %s", r.Body)
	}
	if got := writeAsDevice(t, cfg, lp); got != http.StatusUnauthorized {
		t.Errorf("write with the deleted device's token = %d, want 401", got)
	}
}

// TestConcurrentRequestsToOneFunction: 12 requests at once to EnvConfigFunction (pool of 4 emulators) all answer.
func TestConcurrentRequestsToOneFunction(t *testing.T) {
	l := shared(t)
	id := "e2e-conc-" + influxtest.RandomID(3)
	want(t, "register", call(t, l, "POST", "/api/devices/"+id, l.OperatorKey, nil), http.StatusOK, http.StatusCreated)
	const n = 12
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ans, err := l.Send("GET", "/api/env/"+id, l.OperatorKey, "")
			if err != nil {
				statuses <- -1
				return
			}
			statuses <- ans.Status
		}()
	}
	wg.Wait()
	close(statuses)
	ok := 0
	for s := range statuses {
		if s == http.StatusOK {
			ok++
		} else {
			t.Errorf("concurrent GET /api/env = %d, want 200", s)
		}
	}
	if ok != n {
		t.Errorf("%d of %d concurrent requests answered 200", ok, n)
	}
	want(t, "cleanup", call(t, l, "DELETE", "/api/devices/"+id, l.OperatorKey, nil), http.StatusNoContent, http.StatusOK)
}

// TestProvisioningKeyFlow: the provisioning key registers a new id through GET /api/env/{id} but cannot read an
// existing one; the device's own token reads its own config and no other device's.
func TestProvisioningKeyFlow(t *testing.T) {
	l := shared(t)
	a, b := "e2e-prov-a-"+influxtest.RandomID(3), "e2e-prov-b-"+influxtest.RandomID(3)
	r := call(t, l, "GET", "/api/env/"+a, l.DeviceKey, nil)
	want(t, "first registration with the provisioning key", r, http.StatusOK, http.StatusCreated)
	var cfgA envConfig
	r.json(t, &cfgA)
	want(t, "register b", call(t, l, "POST", "/api/devices/"+b, l.OperatorKey, nil), http.StatusOK, http.StatusCreated)

	for _, tc := range []struct {
		name, id, key string
		status        int
	}{
		{"provisioning key on an existing id", a, l.DeviceKey, http.StatusForbidden},
		{"own token on own id", a, cfgA.InfluxToken, http.StatusOK},
		{"own token on another id", b, cfgA.InfluxToken, http.StatusForbidden},
		{"no key", a, "", http.StatusForbidden},
	} {
		if r := call(t, l, "GET", "/api/env/"+tc.id, tc.key, nil); r.Status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.Status, r.Body, tc.status)
		} else if r.Status == http.StatusForbidden && strings.Contains(string(r.Body), "influx_token") {
			t.Errorf("%s: refused but the body carries a token: %s", tc.name, r.Body)
		}
	}
	for _, id := range []string{a, b} {
		want(t, "cleanup", call(t, l, "DELETE", "/api/devices/"+id, l.OperatorKey, nil), http.StatusNoContent, http.StatusOK)
	}
}

// listed is one device of GET /api/devices as the test compares it.
type listed struct {
	Status   string     `json:"status"`
	LastSeen *time.Time `json:"lastSeen"`
}

// statusAt is the status the API gives a device last seen at seen (nil: never) at now: online within 2 measurement
// intervals (60 s), late within 10, silent beyond.
func statusAt(seen *time.Time, now time.Time) string {
	switch {
	case seen == nil || now.Sub(*seen) > 10*time.Minute:
		return "silent"
	case now.Sub(*seen) > 2*time.Minute:
		return "late"
	}
	return "online"
}

// listOf reads GET /api/devices and keeps the devices of ids. Each status must be the one its lastSeen gives at the
// time of the call (checked when that is the same at the call's start and end).
func listOf(t *testing.T, l *localAPI, ids []string) map[string]listed {
	t.Helper()
	t1 := time.Now()
	r := call(t, l, "GET", "/api/devices?limit=1000", l.OperatorKey, nil)
	t2 := time.Now()
	want(t, "list", r, http.StatusOK)
	var devs []struct {
		DeviceID string `json:"deviceId"`
		listed
	}
	r.json(t, &devs)
	out := map[string]listed{}
	for _, d := range devs {
		for _, id := range ids {
			if d.DeviceID == id {
				out[id] = d.listed
			}
		}
	}
	if len(out) != len(ids) {
		t.Fatalf("the list holds %d of the devices %v: %s", len(out), ids, r.Body)
	}
	for id, d := range out {
		if s := statusAt(d.LastSeen, t1); s == statusAt(d.LastSeen, t2) && d.Status != s {
			t.Errorf("%s: status %s with lastSeen %v, want %s", id, d.Status, d.LastSeen, s)
		}
	}
	return out
}

// waitJob starts a write-missing job with POST path and polls it until it is done (bounded: 180 polls, 1 s apart).
func waitJob(t *testing.T, l *localAPI, path string) {
	t.Helper()
	r := call(t, l, "POST", path, l.OperatorKey, map[string]int{"days": 1})
	want(t, "POST "+path, r, http.StatusAccepted, http.StatusOK)
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, "/api/write-missing/jobs/") {
		t.Fatalf("POST %s: Location %q", path, loc)
	}
	var job struct {
		State         string `json:"state"`
		PointsPlanned int64  `json:"pointsPlanned"`
		PointsWritten int64  `json:"pointsWritten"`
	}
	for i := 0; i < 180 && job.State != "done" && job.State != "failed"; i++ {
		time.Sleep(time.Second)
		r = call(t, l, "GET", loc, l.OperatorKey, nil)
		want(t, "GET "+loc, r, http.StatusOK)
		r.json(t, &job)
	}
	if job.State != "done" || job.PointsWritten == 0 || job.PointsWritten > job.PointsPlanned {
		t.Fatalf("job of POST %s: %+v, want done with 0 < points written <= planned", path, job)
	}
}

// TestBackfillKeepsStatus: write-missing for a silent device, then for the whole fleet, leaves every device's
// lastSeen as it was, and so its status (listOf checks each status against its lastSeen and the clock: an online
// device ages into late by itself while the jobs run): a device that never wrote stays silent with no lastSeen, one
// that wrote 3 hours ago stays silent with that time (generated minutes after it would have made it online), online
// ones keep their points' times; a device writing only CO2 and TVOC is online. The generated points are readable
// apart (origin=generated) and never as the device's (origin=device).
func TestBackfillKeepsStatus(t *testing.T) {
	l := shared(t)
	sfx := influxtest.RandomID(3)
	never, online, co2, old := "e2e-never-"+sfx, "e2e-online-"+sfx, "e2e-co2-"+sfx, "e2e-old-"+sfx
	ids := []string{never, online, co2, old}
	cfgs := map[string]envConfig{}
	for _, id := range ids {
		r := call(t, l, "POST", "/api/devices/"+id, l.OperatorKey, nil)
		want(t, "register "+id, r, http.StatusOK, http.StatusCreated)
		var c envConfig
		r.json(t, &c)
		cfgs[id] = c
	}
	defer func() {
		for _, id := range ids {
			call(t, l, "DELETE", "/api/devices/"+id+"?data=true", l.OperatorKey, nil)
		}
	}()
	now := time.Now().Unix()
	for id, lp := range map[string]string{
		online: fmt.Sprintf("environment,clientId=%s Temperature=21.5 %d\n", online, now-5),
		co2:    fmt.Sprintf("environment,clientId=%s CO2=600i,TVOC=300i %d\n", co2, now-5),
		old:    fmt.Sprintf("environment,clientId=%s Temperature=20 %d\n", old, now-3*3600),
	} {
		if got := writeAsDevice(t, cfgs[id], lp); got != http.StatusNoContent {
			t.Fatalf("write as %s = %d, want 204", id, got)
		}
	}
	before := listOf(t, l, ids)
	wantStatus := map[string]string{never: "silent", online: "online", co2: "online", old: "silent"}
	for id, s := range wantStatus {
		if before[id].Status != s || (before[id].LastSeen == nil) != (id == never) {
			t.Fatalf("before any backfill: %s %+v, want %s (lastSeen null only for the device that never wrote)", id, before[id], s)
		}
	}
	same := func(when string) {
		t.Helper()
		after := listOf(t, l, ids)
		for _, id := range ids {
			b, a := before[id], after[id]
			if (a.LastSeen == nil) != (b.LastSeen == nil) || (a.LastSeen != nil && !a.LastSeen.Equal(*b.LastSeen)) {
				t.Errorf("%s: %s is %s (lastSeen %v), was %s (lastSeen %v)", when, id, a.Status, a.LastSeen, b.Status, b.LastSeen)
			}
		}
	}
	waitJob(t, l, "/api/devices/"+never+"/write-missing")
	same("after backfilling the silent device")
	waitJob(t, l, "/api/write-missing")
	same("after backfilling the fleet")

	count := func(id, origin string) int {
		r := call(t, l, "GET", "/api/devices/"+id+"/measurements?start=-1d&fields=Temperature&origin="+origin, l.OperatorKey, nil)
		want(t, "measurements origin="+origin, r, http.StatusOK)
		var m struct {
			Values map[string][]*float64 `json:"values"`
		}
		r.json(t, &m)
		n := 0
		for _, v := range m.Values["Temperature"] {
			if v != nil {
				n++
			}
		}
		return n
	}
	if n := count(never, "generated"); n == 0 {
		t.Errorf("the silent device's generated points: none readable with origin=generated")
	}
	if n := count(never, "device"); n != 0 {
		t.Errorf("the silent device's own points (origin=device): %d windows, want none", n)
	}
}
