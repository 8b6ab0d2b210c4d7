package config_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/iot-center/iot-center-serverless/internal/testenv"
	"github.com/iot-center/iot-center-serverless/shared/config"
)

func TestSecretsFromSSMSecureStrings(t *testing.T) {
	testenv.StartMoto(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := ssm.NewFromConfig(awsCfg)
	testenv.PutSecureString(t, client, "/iot-center/influx-token", "admin-token-from-ssm")
	testenv.PutSecureString(t, client, "/iot-center/operator-key", "operator-key-from-ssm")

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
