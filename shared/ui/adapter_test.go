package ui_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/iot-center/iot-center-serverless/shared/api"
)

// TestThroughAPIGatewayAdapter runs the handler the way the ui function does (payload 2.0 adapter): the
// {proxy+} path reaches the handler, and a gzip body comes back base64-encoded as API Gateway requires.
func TestThroughAPIGatewayAdapter(t *testing.T) {
	fsys := testFS()
	adapter := httpadapter.NewV2(api.Handler(newHandler(t, fsys)))
	tests := []struct {
		name, path, acceptEncoding string
		wantStatus                 int
		wantGzip                   bool
		wantBody                   []byte
	}{
		{"index", "/", "", http.StatusOK, false, fsys["index.html"].Data},
		{"asset gzip", "/assets/" + hashedJS, "gzip, deflate", http.StatusOK, true, fsys["assets/"+hashedJS].Data},
		{"asset plain", "/assets/" + hashedCSS, "", http.StatusOK, false, fsys["assets/"+hashedCSS].Data},
		{"gzip in the second value", "/assets/" + hashedJS, "deflate, gzip", http.StatusOK, true, fsys["assets/"+hashedJS].Data},
		{"gzip refused by q", "/assets/" + hashedJS, "deflate, gzip;q=0, *", http.StatusOK, false, fsys["assets/"+hashedJS].Data},
		{"neither", "/assets/" + hashedJS, "deflate, br", http.StatusOK, false, fsys["assets/"+hashedJS].Data},
		{"nested asset", "/assets/img/icon-ZZZZ9999.png", "gzip", http.StatusOK, false, fsys["assets/img/icon-ZZZZ9999.png"].Data},
		{"unknown", "/assets/nope.js", "gzip", http.StatusNotFound, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := events.APIGatewayV2HTTPRequest{
				Version:  "2.0",
				RawPath:  tc.path,
				Headers:  map[string]string{"accept-encoding": tc.acceptEncoding},
				RouteKey: "GET " + tc.path,
				RequestContext: events.APIGatewayV2HTTPRequestContext{
					RequestID: "req-1",
					HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: http.MethodGet, Path: tc.path},
				},
			}
			res, err := adapter.ProxyWithContext(context.Background(), req)
			if err != nil {
				t.Fatalf("ProxyWithContext: %v", err)
			}
			if res.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", res.StatusCode, tc.wantStatus, res.Body)
			}
			if tc.wantBody == nil {
				return
			}
			body := []byte(res.Body)
			if res.IsBase64Encoded {
				if body, err = base64.StdEncoding.DecodeString(res.Body); err != nil {
					t.Fatalf("base64: %v", err)
				}
			}
			if gotGzip := res.Headers["Content-Encoding"] == "gzip"; gotGzip != tc.wantGzip {
				t.Fatalf("Content-Encoding = %q, want gzip %v", res.Headers["Content-Encoding"], tc.wantGzip)
			}
			if tc.wantGzip {
				if !res.IsBase64Encoded {
					t.Fatal("gzip body not base64-encoded: API Gateway would corrupt it")
				}
				body = gunzip(t, body)
			}
			if string(body) != string(tc.wantBody) {
				t.Errorf("body differs: got %d bytes, want %d", len(body), len(tc.wantBody))
			}
		})
	}
}

// TestIfNoneMatchListThroughAdapter: an If-None-Match list (split into values by the proxy) answers 304 when any
// entry is the current ETag, 200 when none is.
func TestIfNoneMatchListThroughAdapter(t *testing.T) {
	adapter := httpadapter.NewV2(api.Handler(newHandler(t, testFS())))
	get := func(headers map[string]string) events.APIGatewayV2HTTPResponse {
		t.Helper()
		res, err := adapter.ProxyWithContext(context.Background(), events.APIGatewayV2HTTPRequest{Version: "2.0", RawPath: "/",
			Headers: headers, RouteKey: "GET /", RequestContext: events.APIGatewayV2HTTPRequestContext{RequestID: "req-1",
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: http.MethodGet, Path: "/"}}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	etag := get(map[string]string{"accept-encoding": "gzip"}).Headers["Etag"] // http.Header's canonical key
	if etag == "" {
		t.Fatal("no ETag")
	}
	for _, tc := range []struct {
		inm  string
		want int
	}{
		{`"stale", ` + etag, http.StatusNotModified},
		{etag + `, "stale"`, http.StatusNotModified},
		{`"stale", "older"`, http.StatusOK},
	} {
		if got := get(map[string]string{"accept-encoding": "br, gzip", "if-none-match": tc.inm}).StatusCode; got != tc.want {
			t.Errorf("If-None-Match %s: status %d, want %d", tc.inm, got, tc.want)
		}
	}
}
