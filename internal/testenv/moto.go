package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
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
	m, err := LaunchMoto(context.Background(), &out)
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

// Moto is moto's server (python3 -m moto.server), the stand-in for the AWS services that cannot run here (SSM
// for the tests, SQS for the local API and the backfill tests).
type Moto struct {
	URL  string
	proc *Proc
}

// LaunchMoto runs moto's server on a free loopback port, its output going to out, and waits (at most 60 s, and
// while ctx lasts) until it listens.
func LaunchMoto(ctx context.Context, out io.Writer) (*Moto, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command("python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	// not the test's AWS_* variables: an empty AWS_PROFILE (StartMoto sets it) makes the server's botocore fail
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdout, cmd.Stderr = out, out
	p, err := Start(cmd, syscall.SIGKILL)
	if err != nil {
		return nil, fmt.Errorf("starting moto (python3 -m moto.server): %w", err)
	}
	m := &Moto{URL: "http://" + addr, proc: p}
	if err := WaitListen(ctx, addr, p.Done(), 60*time.Second); err != nil {
		m.Stop()
		if errors.Is(err, errExited) {
			return nil, errors.New("moto exited at start (is moto installed? pip install 'moto[server]')")
		}
		return nil, fmt.Errorf("moto: %w", err)
	}
	return m, nil
}

// Stop ends the server: SIGTERM to its process group, SIGKILL after 5 s.
func (m *Moto) Stop() {
	if m != nil {
		m.proc.Stop(syscall.SIGTERM, 5*time.Second)
	}
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
