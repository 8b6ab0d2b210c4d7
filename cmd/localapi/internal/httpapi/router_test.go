package httpapi

import (
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/cmd/localapi/internal/samtpl"
)

func routesOf(keys ...string) []samtpl.Route {
	var out []samtpl.Route
	for _, k := range keys {
		m, p, _ := strings.Cut(k, " ")
		out = append(out, samtpl.Route{Method: m, Path: p, Function: k})
	}
	return out
}

func TestRouterMatch(t *testing.T) {
	rt := NewRouter(routesOf(
		"GET /", "GET /assets/{proxy+}", "GET /api/devices", "GET /api/devices/{deviceId}/summary",
		"POST /api/devices/{deviceId}", "DELETE /api/devices/{deviceId}", "GET /api/devices/special",
		"ANY /any/{x}", "POST /any/{x}", "GET /files/{a}/{proxy+}", "GET /files/{proxy+}",
	))
	for _, tc := range []struct {
		method, path, want string
		params             map[string]string
	}{
		{"GET", "/", "GET /", nil},
		{"GET", "/api/devices", "GET /api/devices", nil},
		{"GET", "/api/devices/special", "GET /api/devices/special", nil}, // literal beats a parameter
		{"POST", "/api/devices/special", "POST /api/devices/{deviceId}", map[string]string{"deviceId": "special"}},
		{"DELETE", "/api/devices/d%2D1", "DELETE /api/devices/{deviceId}", map[string]string{"deviceId": "d-1"}},
		{"GET", "/api/devices/dev1/summary", "GET /api/devices/{deviceId}/summary", map[string]string{"deviceId": "dev1"}},
		{"GET", "/assets/js/app.js", "GET /assets/{proxy+}", map[string]string{"proxy": "js/app.js"}},
		{"GET", "/assets/x", "GET /assets/{proxy+}", map[string]string{"proxy": "x"}},
		{"POST", "/any/1", "POST /any/{x}", map[string]string{"x": "1"}}, // exact method beats ANY
		{"PATCH", "/any/1", "ANY /any/{x}", map[string]string{"x": "1"}},
		{"GET", "/files/a/b/c", "GET /files/{a}/{proxy+}", map[string]string{"a": "a", "proxy": "b/c"}},
		{"GET", "/files/a", "GET /files/{proxy+}", map[string]string{"proxy": "a"}},
		// No match: API Gateway answers 404 for unknown paths and undeclared methods alike.
		{"GET", "/assets", "", nil},
		{"GET", "/assets/", "", nil},
		{"PUT", "/api/devices", "", nil},
		{"GET", "/api/devices/", "", nil},
		{"GET", "/api/devices/x/summary/more", "", nil},
		{"GET", "/nope", "", nil},
	} {
		r, params, ok := rt.Match(tc.method, tc.path)
		got := ""
		if ok {
			got = r.Function
		}
		if got != tc.want {
			t.Errorf("%s %s matched %q, want %q", tc.method, tc.path, got, tc.want)
			continue
		}
		for k, v := range tc.params {
			if params[k] != v {
				t.Errorf("%s %s param %s = %q, want %q", tc.method, tc.path, k, params[k], v)
			}
		}
		if ok && len(params) != len(tc.params) {
			t.Errorf("%s %s params = %v, want %v", tc.method, tc.path, params, tc.params)
		}
	}
}

func TestBuildHTTPEvent(t *testing.T) {
	now := time.Unix(1700000000, 0)
	rt := samtpl.Route{Method: "POST", Path: "/api/devices/{deviceId}"}
	for _, tc := range []struct {
		name, contentType string
		body              []byte
		wantBody          string
		wantB64           bool
	}{
		{"json", "application/json", []byte(`{"a":1}`), `{"a":1}`, false},
		{"text", "text/plain; charset=utf-8", []byte("hi"), "hi", false},
		{"binary", "application/octet-stream", []byte{0, 1, 255}, base64.StdEncoding.EncodeToString([]byte{0, 1, 255}), true},
		{"invalid utf-8 text", "text/plain", []byte{0xff, 0xfe}, base64.StdEncoding.EncodeToString([]byte{0xff, 0xfe}), true},
		{"empty", "", nil, "", false},
		{"gzip labelled text", "text/plain; charset=utf-8\x00gzip", []byte("hi"), "aGk=", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "http://127.0.0.1:3000/api/devices/d1?x=1&x=2&y=", strings.NewReader(string(tc.body)))
			ct, enc, _ := strings.Cut(tc.contentType, "\x00") // "type\x00encoding"
			r.Header.Set("Content-Type", ct)
			if enc != "" {
				r.Header.Set("Content-Encoding", enc)
			}
			r.Header.Set("X-Custom-Header", "v")
			r.Header.Add("Cookie", "a=1; b=2")
			r.Header.Set("User-Agent", "test-agent")
			ev := BuildHTTPEvent(r, tc.body, rt, map[string]string{"deviceId": "d1"}, "rid", now)
			if ev.Body != tc.wantBody || ev.IsBase64Encoded != tc.wantB64 {
				t.Errorf("body = %q b64 %v, want %q b64 %v", ev.Body, ev.IsBase64Encoded, tc.wantBody, tc.wantB64)
			}
			checks := map[string][2]string{
				"version":      {ev.Version, "2.0"},
				"routeKey":     {ev.RouteKey, "POST /api/devices/{deviceId}"},
				"rawPath":      {ev.RawPath, "/api/devices/d1"},
				"rawQuery":     {ev.RawQueryString, "x=1&x=2&y="},
				"query x":      {ev.QueryStringParameters["x"], "1,2"},
				"path param":   {ev.PathParameters["deviceId"], "d1"},
				"header":       {ev.Headers["x-custom-header"], "v"},
				"cookie hdr":   {ev.Headers["cookie"], ""},
				"stage":        {ev.RequestContext.Stage, "$default"},
				"method":       {ev.RequestContext.HTTP.Method, "POST"},
				"ctx path":     {ev.RequestContext.HTTP.Path, "/api/devices/d1"},
				"user agent":   {ev.RequestContext.HTTP.UserAgent, "test-agent"},
				"source ip":    {ev.RequestContext.HTTP.SourceIP, "192.0.2.1"},
				"request id":   {ev.RequestContext.RequestID, "rid"},
				"ctx routeKey": {ev.RequestContext.RouteKey, "POST /api/devices/{deviceId}"},
			}
			for name, c := range checks {
				if c[0] != c[1] {
					t.Errorf("%s = %q, want %q", name, c[0], c[1])
				}
			}
			if len(ev.Cookies) != 2 || ev.Cookies[0] != "a=1" || ev.Cookies[1] != "b=2" {
				t.Errorf("cookies = %v, want [a=1 b=2]", ev.Cookies)
			}
			if ev.RequestContext.TimeEpoch != now.UnixMilli() {
				t.Errorf("timeEpoch = %d, want %d", ev.RequestContext.TimeEpoch, now.UnixMilli())
			}
		})
	}
}

func TestMapResponse(t *testing.T) {
	for _, tc := range []struct {
		name, payload string
		status        int
		body          string
		header        [2]string
		invalid       bool
	}{
		{"structured", `{"statusCode":201,"headers":{"X-A":"1"},"body":"made"}`, 201, "made", [2]string{"X-A", "1"}, false},
		{"base64", `{"statusCode":200,"isBase64Encoded":true,"body":"AAH/"}`, 200, "\x00\x01\xff", [2]string{}, false},
		{"cookies", `{"statusCode":200,"cookies":["a=1"],"body":""}`, 200, "", [2]string{"Set-Cookie", "a=1"}, false},
		{"multi", `{"statusCode":200,"multiValueHeaders":{"X-M":["a","b"]},"body":""}`, 200, "", [2]string{"X-M", "a"}, false},
		{"plain JSON", `{"hello":"world"}`, 200, `{"hello":"world"}`, [2]string{"Content-Type", "application/json"}, false},
		{"string", `"text"`, 200, `"text"`, [2]string{}, false},
		{"bad status", `{"statusCode":0}`, 0, "", [2]string{}, true},
		{"bad base64", `{"statusCode":200,"isBase64Encoded":true,"body":"!!"}`, 0, "", [2]string{}, true},
		{"not JSON", `oops`, 0, "", [2]string{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := MapResponse([]byte(tc.payload))
			if got.Invalid != tc.invalid {
				t.Fatalf("invalid = %v, want %v", got.Invalid, tc.invalid)
			}
			if tc.invalid {
				return
			}
			if got.Status != tc.status || string(got.Body) != tc.body {
				t.Errorf("got %d %q, want %d %q", got.Status, got.Body, tc.status, tc.body)
			}
			if tc.header[0] != "" && got.Header.Get(tc.header[0]) != tc.header[1] {
				t.Errorf("header %s = %q, want %q", tc.header[0], got.Header.Get(tc.header[0]), tc.header[1])
			}
		})
	}
	if h := MapResponse([]byte(`{"statusCode":200,"multiValueHeaders":{"X-M":["a","b"]}}`)).Header; len(h.Values("X-M")) != 2 {
		t.Errorf("multi-value header values = %v, want 2", h.Values("X-M"))
	}
}

func TestIdentitySources(t *testing.T) {
	ev := BuildHTTPEvent(httptest.NewRequest("GET", "http://127.0.0.1/x?key=k1", nil), nil, samtpl.Route{Method: "GET", Path: "/x"}, nil, "r", time.Now())
	ev.Headers["authorization"] = "Bearer t"
	for _, tc := range []struct {
		sources []string
		ok      bool
		want    string
	}{
		{nil, true, ""},
		{[]string{"$request.header.Authorization"}, true, "Bearer t"},
		{[]string{"$request.querystring.key"}, true, "k1"},
		{[]string{"$request.header.Authorization", "$request.header.X-Missing"}, false, ""}, // API Gateway: 401, no call
	} {
		got, ok := identityValues(tc.sources, ev)
		if ok != tc.ok || (ok && strings.Join(got, ",") != strings.Join(nonEmpty(tc.want), ",")) {
			t.Errorf("identityValues(%v) = %v %v, want %q %v", tc.sources, got, ok, tc.want, tc.ok)
		}
	}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func TestAuthorizerDecision(t *testing.T) {
	for _, tc := range []struct {
		payload string
		simple  bool
		allowed bool
		err     bool
	}{
		{`{"isAuthorized":true,"context":{"role":"operator"}}`, true, true, false},
		{`{"isAuthorized":false}`, true, false, false},
		{`{}`, true, false, false},
		{`"yes"`, true, false, true},
		{`{"principalId":"p","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":["*"]}]}}`, false, true, false},
		{`{"principalId":"p","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Deny","Resource":["*"]}]}}`, false, false, false},
	} {
		allowed, _, err := authorizerDecision([]byte(tc.payload), tc.simple)
		if allowed != tc.allowed || (err != nil) != tc.err {
			t.Errorf("authorizerDecision(%s, simple=%v) = %v %v, want %v err=%v", tc.payload, tc.simple, allowed, err, tc.allowed, tc.err)
		}
	}
}
