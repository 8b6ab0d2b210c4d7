package app

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/testfn"
	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/syncbuf"
	"github.com/iot-center/iot-center-serverless/internal/testenv"
)

// TestCheckDeploy runs `make check-deploy`'s checks against moto (standing in for SSM) and the real InfluxDB.
func TestCheckDeploy(t *testing.T) {
	srv := influxtest.Shared(t)
	sc := testenv.MotoSSM(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for name, value := range map[string]string{"/t/influx-token": srv.Token, "/t/operator-key": "op",
		"/t/device-key": "dev", "/t/bad-token": "not-a-token"} {
		testenv.PutSecureString(t, sc, name, value)
	}
	good := map[string]string{"InfluxUrl": srv.URL, "InfluxOrg": srv.Org, "InfluxTokenParameter": "/t/influx-token",
		"OperatorKeyParameter": "/t/operator-key", "DeviceKeyParameter": "/t/device-key"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name     string
		params   map[string]string
		wantFail string // "" = every check passes
	}{
		{"ready", good, ""},
		{"URL without scheme", with("InfluxUrl", "influxdb.example.com"), "FAIL parameter InfluxUrl"},
		{"no org", with("InfluxOrg", ""), "FAIL parameter InfluxOrg"},
		{"parameter name without /", with("DeviceKeyParameter", "t/device-key"), "FAIL parameter DeviceKeyParameter"},
		{"missing SecureString", with("DeviceKeyParameter", "/t/nope"), "FAIL SSM SecureString /t/nope"},
		{"token refused", with("InfluxTokenParameter", "/t/bad-token"), "FAIL the admin token"},
		{"InfluxDB unreachable", with("InfluxUrl", "http://127.0.0.1:1"), "FAIL InfluxDB reachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out syncbuf.Buffer
			err := CheckDeploy(ctx, CheckOptions{Template: filepath.Join(testfn.Root(), "template.yaml"), Params: tc.params, SSM: sc, Stdout: &out})
			if (err == nil) != (tc.wantFail == "") || (tc.wantFail != "" && !strings.Contains(out.String(), tc.wantFail)) {
				t.Errorf("got %v, want failure %q:\n%s", err, tc.wantFail, out.String())
			}
			if strings.Contains(out.String(), srv.Token) {
				t.Errorf("the output holds the admin token")
			}
		})
	}
}

func TestParseOverrides(t *testing.T) {
	got := ParseOverrides(`InfluxUrl="https://influx.example.org:8086" InfluxOrg="my org" DeviceAuth=key Empty=""`)
	want := map[string]string{"InfluxUrl": "https://influx.example.org:8086", "InfluxOrg": "my org", "DeviceAuth": "key", "Empty": ""}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
