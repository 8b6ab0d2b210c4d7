package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/testfn"
	"github.com/iot-center/iot-center-serverless/internal/devstack"
	"github.com/iot-center/iot-center-serverless/internal/influxtest"
	"github.com/iot-center/iot-center-serverless/internal/syncbuf"
)

const runTemplate = `
Transform: AWS::Serverless-2016-10-31
Parameters:
  InfluxUrl:
    Type: String
  InfluxOrg:
    Type: String
Globals:
  Function:
    Timeout: 5
    Environment:
      Variables:
        INFLUX_URL: !Ref InfluxUrl
        INFLUX_ORG: !Ref InfluxOrg
Resources:
  StateTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
      TimeToLiveSpecification: {AttributeName: expiresAt, Enabled: true}
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          ECHO_VAR: from-template
          STATE_TABLE: !Ref StateTable
      Policies:
        - Statement:
            - Effect: Allow
              Action: [dynamodb:DescribeTimeToLive, dynamodb:GetItem]
              Resource: !GetAtt StateTable.Arn
      Events:
        Get:
          Type: HttpApi
          Properties:
            Method: GET
            Path: /echo/{id}
  BrokenFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Get:
          Type: HttpApi
          Properties:
            Method: GET
            Path: /broken
`

// TestRunServesAndStopsCleanly runs the whole local API in-process on a two-function template (one builds, one
// does not) against the real InfluxDB, then cancels it and checks that no process it started is left.
func TestRunServesAndStopsCleanly(t *testing.T) {
	srv := influxtest.Shared(t)
	root := t.TempDir()
	echo, err := testfn.BuildEcho(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mk := fmt.Sprintf("build-EchoFunction:\n\tmkdir -p $(ARTIFACTS_DIR) && cp %s $(ARTIFACTS_DIR)/bootstrap\n"+
		"build-BrokenFunction:\n\t@echo 'broken on purpose' && exit 1\n", echo)
	for name, body := range map[string]string{"Makefile": mk, "template.yaml": runTemplate} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncbuf.Buffer
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	environ := []string{"INFLUX_URL=" + srv.URL, "INFLUX_TOKEN=" + srv.Token, "INFLUX_ORG=" + srv.Org}
	go func() {
		done <- Run(ctx, Options{Root: root, Addr: fmt.Sprintf("127.0.0.1:%d", port), State: filepath.Join(root, ".local"),
			Pool: 2, GOARCH: "amd64", SkipSetup: true, Environ: environ, Stdout: &stdout, Stderr: &stderr, Ready: ready})
	}()
	var base string
	select {
	case base = <-ready:
	case err := <-done:
		t.Fatalf("Run returned early: %v\n%s", err, stderr.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("not ready in 2 minutes:\n%s", stderr.String())
	}

	// The Invoke API: unsigned or through a foreign Host name 403; signed with the functions' credentials 200.
	invokeURL := base + "/2015-03-31/functions/EchoFunction/invocations"
	resp, err := http.Post(invokeURL, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned Invoke = %d, want 403", resp.StatusCode)
	}
	foreign, _ := http.NewRequest("GET", base+"/echo/1", nil)
	foreign.Host = "rebound.example.com"
	if resp, err := http.DefaultClient.Do(foreign); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign Host = %v %v, want 403", resp, err)
	} else {
		resp.Body.Close()
	}
	var creds map[string]string
	if resp, err := http.Get(base + "/echo/credentials"); err != nil {
		t.Fatal(err)
	} else {
		_ = json.NewDecoder(resp.Body).Decode(&creds)
		resp.Body.Close()
	}
	client := awslambda.New(awslambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(base),
		Credentials: credentials.NewStaticCredentialsProvider(creds["id"], creds["secret"], creds["session"])})
	ictx, icancel := context.WithTimeout(ctx, time.Minute)
	defer icancel()
	inv, err := client.Invoke(ictx, &awslambda.InvokeInput{FunctionName: aws.String("EchoFunction"), Payload: []byte(`{}`)})
	if err != nil {
		t.Fatalf("signed Invoke: %v", err)
	}
	var out struct {
		Env map[string]string `json:"env"`
	}
	if err := json.Unmarshal(inv.Payload, &out); err != nil || inv.StatusCode != 200 {
		t.Fatalf("invoke = %d %s (%v)", inv.StatusCode, inv.Payload, err)
	}
	for k, want := range map[string]string{"ECHO_VAR": "from-template", "INFLUX_URL": srv.URL, "AWS_LAMBDA_FUNCTION_NAME": "EchoFunction",
		"AWS_REGION": "us-east-1", "STATE_TABLE": "StateTable"} {
		if out.Env[k] != want {
			t.Errorf("function env %s = %q, want %q", k, out.Env[k], want)
		}
	}
	// The template's table exists on the DynamoDB stand-in the function is pointed at, with the template's TTL.
	if ep := out.Env["AWS_ENDPOINT_URL_DYNAMODB"]; !strings.HasPrefix(ep, "http://127.0.0.1:") {
		t.Errorf("function env AWS_ENDPOINT_URL_DYNAMODB = %q, want the local stand-in", ep)
	} else if ttl, err := devstack.DynamoClient(ep, "us-east-1").DescribeTimeToLive(ictx,
		&dynamodb.DescribeTimeToLiveInput{TableName: aws.String("StateTable")}); err != nil || aws.ToString(ttl.TimeToLiveDescription.AttributeName) != "expiresAt" {
		t.Errorf("StateTable at %s: %+v %v, want it with TTL on expiresAt", ep, ttl, err)
	} else if _, err := devstack.DynamoClient(ep, "us-east-1").PutItem(ictx, &dynamodb.PutItemInput{TableName: aws.String("StateTable"),
		Item: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}, "sk": &types.AttributeValueMemberS{Value: "b"}}}); !isAccessDenied(err) {
		// the function's endpoint is the IAM stand-in: its policy grants no PutItem
		t.Errorf("PutItem through %s: err = %v, want AccessDeniedException", ep, err)
	} else if !strings.Contains(stderr.String(), devstack.RefusalMark) {
		t.Errorf("the refusal is not logged with %q (tests find refusals by it):\n%s", devstack.RefusalMark, devstack.Tail(stderr.String(), 2000))
	}
	for path, status := range map[string]int{"/echo/1": 200, "/broken": 502, "/nope": 404} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, status)
		}
	}
	for _, want := range []string{"IOT_OPERATOR_KEY=", "NOT BUILT (their routes answer 502): BrokenFunction", "curl"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "[EchoFunction]") || !strings.Contains(stderr.String(), "broken on purpose") {
		t.Errorf("function output not prefixed or build failure not shown:\n%s", stderr.String())
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of cancel")
	}
	if _, err := os.Stat(filepath.Join(root, ".local", "dynamodb-StateTable.json")); err != nil {
		t.Errorf("the state table was not saved at stop: %v", err)
	}
	if left := processesMentioning(t, root); len(left) > 0 {
		t.Errorf("processes left after stop: %v", left)
	}
}

// processesMentioning lists processes whose command line contains s.
func processesMentioning(t *testing.T, s string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, s) {
			out = append(out, e.Name()+": "+cmd)
		}
	}
	return out
}

func isAccessDenied(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "AccessDeniedException"
}
