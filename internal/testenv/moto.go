package testenv

import (
	"github.com/iot-center/iot-center-serverless/internal/devstack"

	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/iot-center/iot-center-serverless/internal/syncbuf"
)

// StartMoto runs moto's server (a stand-in for AWS SSM, which cannot run here) on a free loopback port, points the
// AWS SDK of this test at it (AWS_ENDPOINT_URL_SSM, fake credentials, a region, no profile) and stops it at the end
// of the test. It returns moto's URL; a moto that does not start fails the test.
func StartMoto(t testing.TB) string {
	t.Helper()
	var out syncbuf.Buffer
	m, err := devstack.LaunchMoto(context.Background(), &out)
	if err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	t.Cleanup(m.Stop)
	url := m.URL
	for k, v := range map[string]string{"AWS_ENDPOINT_URL_SSM": url, "AWS_ACCESS_KEY_ID": "testing",
		"AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "", "AWS_REGION": "eu-west-1", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true"} {
		t.Setenv(k, v)
	}
	return url
}

// PutSecureString stores value as the SecureString parameter name in c, overwriting it: what an operator does
// with `aws ssm put-parameter --type SecureString` before a deploy.
func PutSecureString(t testing.TB, c *ssm.Client, name, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value),
		Type: types.ParameterTypeSecureString, Overwrite: aws.Bool(true)}); err != nil {
		t.Fatalf("putting %s: %v", name, err)
	}
}

// MotoSSM starts moto (StartMoto) and returns an SSM client pointed at it.
func MotoSSM(t testing.TB) *ssm.Client {
	t.Helper()
	url := StartMoto(t)
	return ssm.NewFromConfig(aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
}
