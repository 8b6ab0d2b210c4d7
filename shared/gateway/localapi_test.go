package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/localapitest"
	"github.com/iot-center/iot-center-serverless/shared/deviceapi"
)

// register registers id through the API with the operator key and returns the configuration it answers.
func register(t testing.TB, l *localapitest.API, id string) deviceapi.EnvConfig {
	t.Helper()
	status, body := call(t, l, "POST", "/api/devices/"+id)
	var env deviceapi.EnvConfig
	if err := json.Unmarshal(body, &env); err != nil || status != http.StatusCreated || env.InfluxToken == "" {
		t.Fatalf("registering %s: %d %.300s", id, status, body)
	}
	return env
}

// call sends an operator request to the local API.
func call(t testing.TB, l *localapitest.API, method, path string) (int, []byte) {
	t.Helper()
	ans, err := l.Send(method, path, l.OperatorKey, "")
	if err != nil {
		t.Fatal(err)
	}
	return ans.Status, ans.Body
}

// rawWrite posts body to url's /api/v2/write with the credential; it returns the status and the JSON body (nil
// for 204).
func rawWrite(t *testing.T, url, org, bucket, cred string, body []byte, header map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/api/v2/write?org="+org+"&bucket="+bucket+"&precision=ns", bytes.NewReader(body))
	req.Header.Set("Authorization", "Token "+cred)
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, decode(t, resp.StatusCode, b)
}

// TestGatewayThroughLocalAPI is the device's story through `make run` (the real bootstraps under the emulator, the
// template's routes): devices registered in gateway mode write with the npm client and influxdb-client-go configured
// only from their /api/env answer; refusals over raw HTTP write nothing; InfluxDB itself refuses the credential;
// a rotated or deleted credential gets 401 within 60 s.
func TestGatewayThroughLocalAPI(t *testing.T) {
	srv := influxtest.Shared(t)
	l := localapitest.Start(t, srv, localapitest.Options{Params: "DeviceWrites=gateway"})
	admin := srv.Client(t)
	js, go1 := "gwjs-"+influxtest.RandomID(4), "gwgo-"+influxtest.RandomID(4)
	envJS, envGo := register(t, l, js), register(t, l, go1)
	if envJS.InfluxURL != l.URL || envJS.ID != js {
		t.Errorf("gateway mode: influx_url %q id %q, want the API's URL %q and %q", envJS.InfluxURL, envJS.ID, l.URL, js)
	}
	const points = 12_000
	if stderr, err := writeWithNPM(t, envJS, points); err != nil {
		t.Errorf("npm client: %v: %s", err, stderr)
	}
	if err := writeWithGo(t, envGo, points); err != nil {
		t.Errorf("influxdb-client-go: %v", err)
	}
	for _, id := range []string{js, go1} {
		if got := countOf(t, admin, envJS.InfluxBucket, id); got != points {
			t.Errorf("%s: %d Temperature points, want %d", id, got, points)
		}
	}

	t.Run("refusals over raw HTTP write nothing", func(t *testing.T) {
		victim := "gwv-" + influxtest.RandomID(4)
		now := time.Now().Add(-time.Minute)
		good := []byte(seedLine("", now))
		bigLine := seedLine("", now) + "\n"
		tests := []struct {
			name       string
			body       []byte
			header     map[string]string
			cred       string
			wantStatus int
			wantCode   string
		}{
			{"forged clientId", []byte(seedLine(victim, now)), nil, envJS.InfluxToken, 403, "forbidden"},
			{"another measurement", []byte(fmt.Sprintf("environment_1h,clientId=%s Temperature=1 %d", js, now.UnixNano())), nil, envJS.InfluxToken, 400, "invalid"},
			{"type conflict", []byte(fmt.Sprintf("environment CO2=1.5 %d", now.UnixNano())), nil, envJS.InfluxToken, 400, "invalid"},
			{"no token", good, nil, "", 401, "unauthorized"},
			{"InfluxDB token is not a device credential", good, nil, srv.Token, 401, "unauthorized"},
			{"body over 4 MiB", []byte(strings.Repeat(bigLine, MaxBody/len(bigLine)+1)), nil, envJS.InfluxToken, 413, "request too large"},
			{"zip bomb", gz(t, make([]byte, MaxDecodedBody+1)), map[string]string{"Content-Encoding": "gzip"}, envJS.InfluxToken, 413, "request too large"},
		}
		for _, tc := range tests {
			status, body := rawWrite(t, l.URL, envJS.InfluxOrg, envJS.InfluxBucket, tc.cred, tc.body, tc.header)
			if status != tc.wantStatus || body["code"] != tc.wantCode || str(body["message"]) == "" {
				t.Errorf("%s: %d %v, want %d code %q with a message", tc.name, status, body, tc.wantStatus, tc.wantCode)
			}
		}
		if got := countOf(t, admin, envJS.InfluxBucket, victim); got != 0 {
			t.Errorf("the forged clientId wrote %d points", got)
		}
		if got := countOf(t, admin, envJS.InfluxBucket, js); got != points {
			t.Errorf("refused writes changed %s's points: %d, want %d", js, got, points)
		}
		// gzip labelled text/plain, as the npm client sends it, travels base64 through the local API and is accepted
		status, body := rawWrite(t, l.URL, envJS.InfluxOrg, envJS.InfluxBucket, envJS.InfluxToken, gz(t, good), map[string]string{"Content-Encoding": "gzip"})
		if status != 204 {
			t.Errorf("gzip text/plain: %d %v, want 204", status, body)
		}
	})

	t.Run("InfluxDB refuses the device credential", func(t *testing.T) {
		for _, p := range []struct{ path, body string }{
			{"/api/v2/write?org=" + srv.Org + "&bucket=" + envJS.InfluxBucket, seedLine(js, time.Now())},
			{"/api/v2/delete?org=" + srv.Org + "&bucket=" + envJS.InfluxBucket,
				`{"start":"1970-01-01T00:00:00Z","stop":"2100-01-01T00:00:00Z","predicate":"clientId=\"` + go1 + `\""}`},
			{"/api/v2/query?org=" + srv.Org, `{"query":"from(bucket: \"` + envJS.InfluxBucket + `\") |> range(start: -1d)","type":"flux"}`},
		} {
			req, _ := http.NewRequest("POST", srv.URL+p.path, strings.NewReader(p.body))
			req.Header.Set("Authorization", "Token "+envJS.InfluxToken)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("InfluxDB %s with the device credential: %d, want 401", strings.SplitN(p.path, "?", 2)[0], resp.StatusCode)
			}
		}
		if got := countOf(t, admin, envJS.InfluxBucket, go1); got != points {
			t.Errorf("after the refused delete %s has %d points, want %d", go1, got, points)
		}
	})

	t.Run("rotated and deleted credentials stop within 60 s", func(t *testing.T) {
		w := func(cred string) int {
			status, _ := rawWrite(t, l.URL, envGo.InfluxOrg, envGo.InfluxBucket, cred, []byte("environment Temperature=1"), nil)
			return status
		}
		// the gateway reads the registry's revocation items at the first request DefaultRevocationCheck after its
		// last read: the first write that long after the change is refused, whatever the cache holds
		settle := func() { time.Sleep(DefaultRevocationCheck + 500*time.Millisecond) }
		if s := w(envGo.InfluxToken); s != 204 {
			t.Fatalf("before rotation: %d", s) // and now the gateway has cached the credential
		}
		status, body := call(t, l, "POST", "/api/devices/"+go1+"/rotate")
		var rotated deviceapi.EnvConfig
		if err := json.Unmarshal(body, &rotated); err != nil || status != 200 || rotated.InfluxToken == envGo.InfluxToken {
			t.Fatalf("rotate: %d %.300s", status, body)
		}
		settle()
		if s := w(envGo.InfluxToken); s != 401 {
			t.Errorf("the rotated-out credential %s after the rotation: %d, want 401", DefaultRevocationCheck, s)
		}
		if s := w(rotated.InfluxToken); s != 204 {
			t.Errorf("the new credential: %d, want 204", s)
		}
		if status, body := call(t, l, "DELETE", "/api/devices/"+go1); status != 204 {
			t.Fatalf("delete: %d %.300s", status, body)
		}
		settle()
		if s := w(rotated.InfluxToken); s != 401 {
			t.Errorf("the deleted device's credential %s after the delete: %d, want 401", DefaultRevocationCheck, s)
		}
	})
}
