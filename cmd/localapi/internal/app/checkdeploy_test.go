package app

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
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
			err := CheckDeploy(ctx, CheckOptions{Template: filepath.Join(testfn.Root(), "template.yaml"), Params: tc.params,
				Region: "eu-west-1", SSM: sc, Stdout: &out})
			if (err == nil) != (tc.wantFail == "") || (tc.wantFail != "" && !strings.Contains(out.String(), tc.wantFail)) {
				t.Errorf("got %v, want failure %q:\n%s", err, tc.wantFail, out.String())
			}
			if strings.Contains(out.String(), srv.Token) {
				t.Errorf("the output holds the admin token")
			}
		})
	}
}

// TestDeployRegion: check-deploy checks the region sam deploy uses: samconfig.toml's, which wins over AWS_REGION.
func TestDeployRegion(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, samconfig, fallback, want, wantFrom string
		wantErr                                   bool
	}{
		{"global", "[default.global.parameters]\nregion = \"eu-central-1\"\n", "", "eu-central-1", "[default.global.parameters]", false},
		{"deploy wins", "[default.global.parameters]\nregion = \"eu-central-1\"\n[default.deploy.parameters]\nregion = \"us-east-2\"\n", "", "us-east-2", "[default.deploy.parameters]", false},
		{"samconfig over AWS_REGION", "[default.global.parameters]\nregion = \"eu-central-1\"\n", "us-west-2", "eu-central-1", "ignores AWS_REGION/the profile's us-west-2", false},
		{"AWS_REGION", "[default.deploy.parameters]\ncapabilities = \"CAPABILITY_IAM\"\n", "us-west-2", "us-west-2", "AWS_REGION", false},
		{"none", "", "", "(none)", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, from, err := deployRegion(write(strings.ReplaceAll(tc.name, " ", "_")+".toml", tc.samconfig), tc.fallback)
			if got != tc.want || !strings.Contains(from, tc.wantFrom) || (err != nil) != tc.wantErr {
				t.Errorf("got %q from %q (%v), want %q from %q (error %v)", got, from, err, tc.want, tc.wantFrom, tc.wantErr)
			}
		})
	}
	// the shipped samconfig.toml names one region for every command
	got, _, err := deployRegion(filepath.Join(testfn.Root(), "samconfig.toml"), "")
	if err != nil || got != "eu-central-1" {
		t.Errorf("samconfig.toml: region %q (%v), want eu-central-1", got, err)
	}
	readme, err := os.ReadFile(filepath.Join(testfn.Root(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	regions := regexp.MustCompile(`(?:AWS_REGION=|--region )([a-z0-9-]+)`).FindAllStringSubmatch(string(readme), -1)
	if len(regions) == 0 {
		t.Errorf("README names no region for its aws commands")
	}
	for _, m := range regions {
		if m[1] != got {
			t.Errorf("README uses region %s, samconfig.toml %s", m[1], got)
		}
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
