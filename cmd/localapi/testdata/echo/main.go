// Command echo is a test-only Lambda function for the local API's tests: it answers API Gateway payload-2.0
// events by echoing the event, runs the authorizer protocol, and can sleep, fail, panic or record invocations.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

type probe struct {
	Version string `json:"version"`
	Type    string `json:"type"`
	RawPath string `json:"rawPath"`
	SleepMs int    `json:"sleepMs"`
	Fail    string `json:"fail"`
	Record  string `json:"record"` // file that gets one line per invocation
}

func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var p probe
	_ = json.Unmarshal(raw, &p)
	if p.Record != "" {
		f, err := os.OpenFile(p.Record, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err == nil {
			_, _ = f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
			f.Close()
		}
	}
	if p.SleepMs > 0 {
		time.Sleep(time.Duration(p.SleepMs) * time.Millisecond)
	}
	if p.Fail != "" {
		return nil, errors.New(p.Fail)
	}
	switch {
	case p.Type == "REQUEST": // authorizer, payload 2.0
		var ev events.APIGatewayV2CustomAuthorizerV2Request
		_ = json.Unmarshal(raw, &ev)
		switch ev.Headers["authorization"] {
		case "Bearer good":
			return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: true, Context: map[string]any{"role": "operator"}}, nil
		case "Bearer boom":
			return nil, errors.New("authorizer failed")
		default:
			return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: false}, nil
		}
	case p.Version == "2.0" && p.RawPath != "":
		var ev events.APIGatewayV2HTTPRequest
		_ = json.Unmarshal(raw, &ev)
		switch ev.RawPath {
		case "/fail":
			return nil, errors.New("handler failed")
		case "/panic":
			panic("boom")
		case "/binary":
			return events.APIGatewayV2HTTPResponse{StatusCode: 200, IsBase64Encoded: true,
				Headers: map[string]string{"Content-Type": "application/octet-stream"},
				Body:    base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255})}, nil
		case "/plain":
			return map[string]string{"hello": "world"}, nil
		case "/echo/credentials": // what a function holds: the local API's credentials (tests sign Invoke calls with them)
			return map[string]string{"id": os.Getenv("AWS_ACCESS_KEY_ID"), "secret": os.Getenv("AWS_SECRET_ACCESS_KEY"),
				"session": os.Getenv("AWS_SESSION_TOKEN")}, nil // not a proxy response: API Gateway answers it as JSON
		}
		status := 200
		if s, err := strconv.Atoi(ev.QueryStringParameters["status"]); err == nil {
			status = s
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: status,
			Headers:           map[string]string{"Content-Type": "application/json", "X-Echo": "yes"},
			MultiValueHeaders: map[string][]string{"X-Multi": {"a", "b"}},
			Cookies:           []string{"c1=v1; Path=/"},
			Body:              string(raw)}, nil
	default:
		env := map[string]string{}
		for _, k := range []string{"AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION", "ECHO_VAR", "INFLUX_URL", "STATE_TABLE", "AWS_ENDPOINT_URL_DYNAMODB"} {
			env[k] = os.Getenv(k)
		}
		return map[string]any{"pid": os.Getpid(), "env": env, "event": raw}, nil
	}
}

func main() { lambda.Start(handle) }
