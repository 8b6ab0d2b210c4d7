package config_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/config"
)

// startMoto runs moto's server (a stand-in for AWS SSM, which cannot run here) on a free loopback port and points
// the AWS SDK at it with fake credentials. A moto that does not start fails the test.
func startMoto(t *testing.T) string {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting moto: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("moto exited at start: %s", out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto not listening after 60s: %s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Setenv("AWS_ENDPOINT_URL_SSM", url)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return url
}

func putSecureString(t *testing.T, ctx context.Context, c *ssm.Client, name, value string) {
	t.Helper()
	_, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value),
		Type: types.ParameterTypeSecureString, Overwrite: aws.Bool(true)})
	if err != nil {
		t.Fatalf("putting %s: %v", name, err)
	}
}

func TestSecretsFromSSMSecureStrings(t *testing.T) {
	startMoto(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := ssm.NewFromConfig(awsCfg)
	putSecureString(t, ctx, client, "/iot-center/influx-token", "admin-token-from-ssm")
	putSecureString(t, ctx, client, "/iot-center/operator-key", "operator-key-from-ssm")

	vars := map[string]string{"INFLUX_URL": "http://127.0.0.1:8086", "INFLUX_ORG": "org",
		"INFLUX_TOKEN_PARAMETER": "/iot-center/influx-token", "OPERATOR_KEY_PARAMETER": "/iot-center/operator-key",
		"DEVICE_KEY_PARAMETER": "/iot-center/missing"}

	// store nil: config builds its own client from the default AWS configuration, as the functions do
	c, err := config.Load(ctx, env(vars), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := c.Token.Reveal(); got != "admin-token-from-ssm" {
		t.Errorf("admin token: got %q, want the SecureString's value", got)
	}
	if s := fmt.Sprintf("%v %+v", c, c); strings.Contains(s, "admin-token-from-ssm") {
		t.Errorf("the loaded config prints its token: %s", s)
	}

	tests := []struct {
		name, valueVar, paramVar string
		extra                    map[string]string
		want                     string
		wantErr                  bool
	}{
		{"operator key from SSM", "IOT_OPERATOR_KEY", "OPERATOR_KEY_PARAMETER", nil, "operator-key-from-ssm", false},
		{"environment wins over SSM", "IOT_OPERATOR_KEY", "OPERATOR_KEY_PARAMETER", map[string]string{"IOT_OPERATOR_KEY": "local-key"}, "local-key", false},
		{"no parameter configured", "IOT_DEVICE_KEY", "UNSET_PARAMETER", nil, "", false},
		{"missing parameter", "IOT_DEVICE_KEY", "DEVICE_KEY_PARAMETER", nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range vars {
				m[k] = v
			}
			for k, v := range tt.extra {
				m[k] = v
			}
			got, err := config.LoadSecret(ctx, env(m), client, tt.valueVar, tt.paramVar)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "/iot-center/missing") {
					t.Fatalf("got %v, want an error naming the parameter", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Reveal() != tt.want {
				t.Errorf("got %q, want %q", got.Reveal(), tt.want)
			}
		})
	}
}
