package testenv

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/iot-center/iot-center-serverless/internal/syncbuf"
)

// StartMoto runs moto's server (a stand-in for AWS SSM, which cannot run here) on a free loopback port, points the
// AWS SDK of this test at it (AWS_ENDPOINT_URL_SSM, fake credentials, a region, no profile) and stops it at the end
// of the test. It returns moto's URL; a moto that does not start fails the test.
func StartMoto(t testing.TB) string {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	var out syncbuf.Buffer
	cmd := exec.Command("python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Stdout, cmd.Stderr = &out, &out
	p, err := Start(cmd, syscall.SIGKILL)
	if err != nil {
		t.Fatalf("starting moto: %v", err)
	}
	t.Cleanup(func() { p.Stop(syscall.SIGTERM, 5*time.Second) })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := WaitListen(context.Background(), addr, p.Done(), 60*time.Second); err != nil {
		t.Fatalf("moto: %v: %s", err, out.String())
	}
	url := "http://" + addr
	for k, v := range map[string]string{"AWS_ENDPOINT_URL_SSM": url, "AWS_ACCESS_KEY_ID": "testing",
		"AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "", "AWS_REGION": "eu-west-1", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true"} {
		t.Setenv(k, v)
	}
	return url
}

// MotoSSM starts moto (StartMoto) and returns an SSM client pointed at it.
func MotoSSM(t testing.TB) *ssm.Client {
	t.Helper()
	url := StartMoto(t)
	return ssm.NewFromConfig(aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
}
